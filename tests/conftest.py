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


@pytest.fixture(scope="session")
def edge_firmware(tmp_path_factory):
    """``cdinn firmware --net edge`` built once per session (hls4ml projects, compiled emulation, C simulation):
    the build folder."""
    from cdinn.cli import main

    out = tmp_path_factory.mktemp("firmware") / "edge"
    code = main(
        ["firmware", "--net", "edge", "--out", str(out), "--validate", "40", "--test-n", "40", "--workers", "2"]
    )
    assert code == 0
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
