"""Small shared fixtures: a few simulated patterns (with their oversampled versions), and one firmware build of
the shipped quantized edge networks for every test that needs compiled emulation."""

import numpy as np
import pytest

import cdinn  # noqa: F401  (sets TF_USE_LEGACY_KERAS before anything imports TensorFlow)
from cdinn.model.simulate import SimulationConfig, simulate


@pytest.fixture(scope="session")
def patterns():
    """24 noiseless patterns of objects at random positions, 2x oversampled pattern included."""
    return simulate(24, seed=11, config=SimulationConfig(position="random"), oversampled=True)


@pytest.fixture(scope="session")
def centred_patterns():
    return simulate(64, seed=5)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
