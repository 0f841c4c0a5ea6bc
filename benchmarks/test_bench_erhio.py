import pytest

from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve


@pytest.mark.parametrize("batch", [1, 64])
def test_er_hio_620_iterations(benchmark, bench_patterns, batch):
    """The paper's recipe on the 2x oversampled pattern: the reference every speed-up is measured against."""
    patterns = bench_patterns.diffraction_oversampled[:batch]
    benchmark.extra_info.update(patterns_per_call=batch, backend="ER/HIO", config="620 iterations", batch=batch)
    result = benchmark.pedantic(phase_retrieve, args=(patterns, PhaseRetrievalConfig()), rounds=3 if batch == 1 else 1)
    assert result.shape == (batch, 64, 64)
