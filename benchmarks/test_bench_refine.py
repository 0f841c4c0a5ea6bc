import pytest

from cdinn.host.backends import get_backend
from cdinn.model.conventions import subsample_oversampled
from cdinn.model.refine import refine

ITERATIONS = 50


@pytest.mark.parametrize("batch", [1, 64])
def test_network_plus_refinement(benchmark, bench_patterns, batch):
    """onnxruntime (paper networks) seeding 50 ER/HIO iterations on the oversampled pattern."""
    backend = get_backend("onnx", net="paper")
    over = bench_patterns.diffraction_oversampled[:batch]

    def run():
        amplitude, phase = backend.infer(subsample_oversampled(over))
        return refine(amplitude, phase, over, ITERATIONS)

    benchmark.extra_info.update(patterns_per_call=batch, backend=f"onnx + {ITERATIONS} ER/HIO", config="paper",
                                batch=batch)
    amplitude, _ = benchmark.pedantic(run, rounds=5 if batch == 1 else 2, warmup_rounds=1)
    assert amplitude.shape == (batch, 32, 32)
