import pytest

from cdinn.model.simulate import DISTRIBUTIONS, simulate

N = 5000


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_simulator_throughput(benchmark, distribution):
    """Target: >= 5,000 patterns/s on 2 cores for every named distribution, the broad training one included
    (read patterns_per_s from the saved run)."""
    benchmark.extra_info["patterns_per_call"] = N
    batch = benchmark.pedantic(simulate, args=(N, 1, DISTRIBUTIONS[distribution]), rounds=5, warmup_rounds=1)
    assert batch.diffraction.shape == (N, 32, 32)
    if benchmark.stats:
        benchmark.extra_info["patterns_per_s"] = N / benchmark.stats.stats.median
