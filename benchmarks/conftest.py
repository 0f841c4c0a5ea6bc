"""Shared fixtures for the latency benchmark suite (pytest-benchmark).

Every benchmark records ``extra_info["patterns_per_call"]`` so per-pattern times can be derived, and the
machine description (CPU model, cores, library versions) is added to each saved run, so results from
different readout nodes can be compared honestly. Run with ``make bench``.
"""

import pytest

import cdinn  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from cdinn.model.simulate import broad, simulate


def pytest_benchmark_update_machine_info(config, machine_info):
    from report import machine_info as cdinn_machine_info  # benchmarks/report.py, beside this file

    machine_info["cdinn"] = cdinn_machine_info()


@pytest.fixture(scope="session")
def bench_patterns():
    """64 simulated patterns of the broad distribution (random positions) with their 2x oversampled versions."""
    return simulate(64, seed=2024, config=broad(position="random"), oversampled=True)
