import pytest

from cdinn.host.backends import get_backend
from cdinn.model.conventions import subsample_oversampled
from cdinn.model.refine import refine

ITERATIONS = 30


@pytest.mark.parametrize("batch", [1, 64])
def test_network_plus_refinement(benchmark, bench_patterns, batch):
    """onnxruntime (default networks) seeding 30 ER/HIO iterations on the oversampled pattern."""
    backend = get_backend("onnx")
    over = bench_patterns.diffraction_oversampled[:batch]

    def run():
        amplitude, phase = backend.infer(subsample_oversampled(over))
        return refine(amplitude, phase, over, ITERATIONS)

    benchmark.extra_info.update(
        patterns_per_call=batch, backend=f"onnx + {ITERATIONS} ER/HIO", config="default", batch=batch
    )
    amplitude, _ = benchmark.pedantic(run, rounds=5 if batch == 1 else 2, warmup_rounds=1)
    assert amplitude.shape == (batch, 32, 32)


@pytest.mark.parametrize("batch", [1, 64])
def test_api_automatic_refinement(benchmark, bench_patterns, batch):
    """cdinn.reconstruct(..., refine='auto') on the oversampled patterns (default networks)."""
    import cdinn

    over = bench_patterns.diffraction_oversampled[:batch]
    cdinn.reconstruct(over[:1], refine="auto")
    benchmark.extra_info.update(
        patterns_per_call=batch, backend="cdinn.reconstruct refine=auto", config="default", batch=batch
    )
    result = benchmark.pedantic(
        cdinn.reconstruct, args=(over,), kwargs={"refine": "auto"}, rounds=5 if batch == 1 else 2, warmup_rounds=1
    )
    benchmark.extra_info["refined_fraction"] = float(result.refined.mean())
    assert result.amplitude.shape == (batch, 32, 32)
