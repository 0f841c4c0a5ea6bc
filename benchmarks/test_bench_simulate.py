import dataclasses

import pytest

from cdinn.model.forward import EXPERIMENTS
from cdinn.model.simulate import DISTRIBUTIONS, simulate

N = 5000


@pytest.mark.parametrize("experiment", [None, "detector"])
@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_simulator_throughput(benchmark, distribution, experiment):
    """Target: >= 5,000 patterns/s on 2 cores for every named distribution, the broad training one included,
    ideal and through the randomised detector forward model the networks train on (read patterns_per_s from
    the saved run)."""
    config = dataclasses.replace(
        DISTRIBUTIONS[distribution], experiment=EXPERIMENTS[experiment] if experiment else None
    )
    benchmark.extra_info["patterns_per_call"] = N
    batch = benchmark.pedantic(simulate, args=(N, 1, config), rounds=5, warmup_rounds=1)
    assert batch.diffraction.shape == (N, 32, 32)
    assert (batch.mask is not None) == (experiment is not None)
    if benchmark.stats:
        benchmark.extra_info["patterns_per_s"] = N / benchmark.stats.stats.median
