"""The path users call first, ``cdinn.reconstruct`` (default network, onnxruntime), against the bare
``session.run`` calls of the same ONNX graphs in the same thread layout (``OnnxBackend.run_graphs``) on the same
(already normalised) input, in the same run."""

import pytest

import cdinn
from cdinn.api import cached_backend
from cdinn.model.conventions import network_input


@pytest.mark.parametrize("views", [1, 8])
@pytest.mark.parametrize("batch", [1, 64])
def test_api_reconstruct(benchmark, bench_patterns, batch, views):
    """With one view the fit is computed when it is read (after the timing); with more it chooses the view."""
    frames = bench_patterns.diffraction[:batch]
    cdinn.reconstruct(frames)  # first call creates the session (cached for every later call)
    label = "cdinn.reconstruct" if views == 1 else f"cdinn.reconstruct, {views} views"  # the report pairs by label
    benchmark.extra_info.update(patterns_per_call=batch, backend=label, config="default", batch=batch, views=views)
    result = benchmark.pedantic(
        cdinn.reconstruct, args=(frames,), kwargs={"views": views}, rounds=300 if batch == 1 else 30, warmup_rounds=5
    )
    assert result.amplitude.shape == (batch, 32, 32) and result.fit.shape == (batch,)


@pytest.mark.parametrize("batch", [1, 64])
def test_bare_session_run(benchmark, bench_patterns, batch):
    engine = cached_backend("onnx", "default")
    x = network_input(bench_patterns.diffraction[:batch], None, engine.channels)
    benchmark.extra_info.update(patterns_per_call=batch, backend="bare session.run", config="default", batch=batch)
    shape, phase = benchmark.pedantic(engine.run_graphs, args=(x,), rounds=300 if batch == 1 else 30, warmup_rounds=5)
    assert shape.shape == phase.shape == (batch, 32, 32, 1)


@pytest.mark.parametrize("unmeasured", ["3x3 beamstop", "5x5 beamstop", "2-pixel gaps"])
def test_unconstrained_figure(benchmark, bench_patterns, unmeasured):
    """The per-frame unconstrained-mode figure (every output's ``unconstrained``) for 64 frames under a shared
    mask, beside ``test_api_reconstruct[64-1]`` (the networks, which it adds to wherever the grid has
    unmeasured pixels)."""
    import numpy as np

    from cdinn.model.constraint import unconstrained

    mask = np.zeros((32, 32), bool)
    if unmeasured == "2-pixel gaps":
        mask[15:17] = mask[:, 15:17] = True
    else:
        half = 1 if unmeasured == "3x3 beamstop" else 2
        mask[16 - half : 17 + half, 16 - half : 17 + half] = True
    amplitude = cdinn.reconstruct(bench_patterns.diffraction[:64], mask=mask).amplitude
    benchmark.extra_info.update(patterns_per_call=64, backend="unconstrained", config=unmeasured, batch=64)
    figure = benchmark.pedantic(unconstrained, args=(amplitude, mask), rounds=30, warmup_rounds=3)
    assert figure.shape == (64,) and (figure > 0).all()
