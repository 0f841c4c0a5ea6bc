"""The evaluation patterns every report scores: one seed, one size, the broad distribution, random positions.

Every stage that scores networks (``cdinn evaluate``, the quantization and firmware reports, the studies)
draws its patterns here, so their numbers refer to the same objects.
"""

from __future__ import annotations

from cdinn.model.forward import ExperimentConfig
from cdinn.model.simulate import SimulatedBatch, distribution, simulate_many

TEST_N = 1000
"""Patterns in the standard test set."""
TEST_SEED = 20_181_009
"""Seed of the standard test set (the reference paper's publication date)."""


def test_set(
    n: int = TEST_N,
    seed: int = TEST_SEED,
    data: str = "broad",
    photons: float | None = None,
    family: str = "gratings",
    experiment: ExperimentConfig | None = None,
) -> SimulatedBatch:
    """``n`` patterns of the distribution ``data`` ('broad' or 'paper') with phase family ``family``, objects
    at random positions, with Poisson noise at ``photons`` total counts (None: noiseless) or through the
    forward model ``experiment``; the 2x oversampled pattern is included (for ER/HIO and refinement: the
    effects act on it, and the networks' pattern is its every other pixel). The same ``seed`` gives the same
    objects whatever the effects."""
    sim = distribution(data, position="random", photons=photons, phase_family=family, experiment=experiment)
    return simulate_many(n, seed, sim, oversampled=True)


test_set.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite the name
