"""ER/HIO (the paper's 620-iteration recipe) and the floor it is measured against: a bare forward + inverse
FFT pair of the same (B, 64, 64) complex64 arrays, 620 times, in the same run (``benchmarks/report.py`` prints
the per-iteration ratio)."""

import numpy as np
import pytest
import scipy.fft

from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve

ITERATIONS = PhaseRetrievalConfig().iterations


@pytest.mark.parametrize("batch", [1, 64])
def test_er_hio_620_iterations(benchmark, bench_patterns, batch):
    """The paper's recipe on the 2x oversampled pattern: the reference every speed-up is measured against."""
    patterns = bench_patterns.diffraction_oversampled[:batch]
    benchmark.extra_info.update(
        patterns_per_call=batch, backend="ER/HIO", config="620 iterations", batch=batch, iterations_per_call=ITERATIONS
    )
    result = benchmark.pedantic(
        phase_retrieve, args=(patterns, PhaseRetrievalConfig()), rounds=5 if batch == 1 else 2, warmup_rounds=1
    )
    assert result.shape == (batch, 64, 64)


@pytest.mark.parametrize("batch", [1, 64])
def test_fft_pair_floor(benchmark, bench_patterns, batch):
    """620 bare scipy.fft fft2 + ifft2 pairs (one worker, complex64): the cost no ER/HIO can go below."""
    x = bench_patterns.diffraction_oversampled[:batch].astype(np.complex64)

    def pairs():
        for _ in range(ITERATIONS):
            y = scipy.fft.ifft2(scipy.fft.fft2(x, axes=(-2, -1)), axes=(-2, -1))
        return y

    benchmark.extra_info.update(
        patterns_per_call=batch,
        backend="FFT pair floor",
        config="620 pairs",
        batch=batch,
        iterations_per_call=ITERATIONS,
    )
    y = benchmark.pedantic(pairs, rounds=5 if batch == 1 else 2, warmup_rounds=1)
    assert np.allclose(y, x, atol=1e-4)
