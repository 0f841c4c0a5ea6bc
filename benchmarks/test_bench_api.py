"""The path users call first, ``cdinn.reconstruct`` (default network, onnxruntime), against a bare
``session.run`` of the same ONNX graph on the same (already normalised) input, in the same run."""

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
    benchmark.extra_info.update(
        patterns_per_call=batch, backend="cdinn.reconstruct", config="default", batch=batch, views=views
    )
    result = benchmark.pedantic(
        cdinn.reconstruct, args=(frames,), kwargs={"views": views}, rounds=300 if batch == 1 else 30, warmup_rounds=5
    )
    assert result.amplitude.shape == (batch, 32, 32) and result.fit.shape == (batch,)


@pytest.mark.parametrize("batch", [1, 64])
def test_bare_session_run(benchmark, bench_patterns, batch):
    engine = cached_backend("onnx", "default")
    x = network_input(bench_patterns.diffraction[:batch], None, engine.channels)
    session = engine.session
    benchmark.extra_info.update(patterns_per_call=batch, backend="bare session.run", config="default", batch=batch)
    shape, phase = benchmark.pedantic(
        session.run, args=(None, {"diffraction": x}), rounds=300 if batch == 1 else 30, warmup_rounds=5
    )
    assert shape.shape == phase.shape == (batch, 32, 32, 1)
