"""Shared fixtures for the latency benchmark suite (pytest-benchmark).

Every benchmark records ``extra_info["patterns_per_call"]`` so per-pattern times can be derived, and the
machine description (CPU model, cores, library versions) is added to each saved run, so results from
different readout nodes can be compared honestly. Run with ``make bench``. A benchmark that compares two things
measured side by side in its own run records them as ``extra_info["ratios"]`` (label -> ratio), which the
report lists.
"""

import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

import cdinn  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from cdinn.api import reconstruct
from cdinn.host.runner import RUNNER_BACKEND, RUNNER_INFERENCE_THREADS
from cdinn.model.simulate import broad, simulate


def pytest_benchmark_update_machine_info(config, machine_info):
    from report import machine_info as cdinn_machine_info  # benchmarks/report.py, beside this file

    machine_info["cdinn"] = cdinn_machine_info()


@pytest.fixture(scope="session")
def bench_patterns():
    """64 simulated patterns of the broad distribution (random positions) with their 2x oversampled versions."""
    return simulate(64, seed=2024, config=broad(position="random"), oversampled=True)


def network_alone_fps(
    frames: np.ndarray,
    backend: str = RUNNER_BACKEND,
    threads: int | None = RUNNER_INFERENCE_THREADS,
    rounds: int = 3,
) -> float:
    """Frames/s of the networks alone (``cdinn.reconstruct`` with ``backend`` on ``threads`` inference threads,
    None: the runtime's default; by default the runner's; batch 64, best of ``rounds`` of 4 calls) on (N, 256,
    256) detector frames binned 8x8 to the 32x32 grid: what a runner on these frames cannot beat, measured beside
    it (also by ``experiments/runner_rate.py``)."""
    batch = frames[:64].astype(np.float64)
    binned = np.sqrt(batch.reshape(len(batch), 32, 8, 32, 8).sum(axis=(2, 4))).astype(np.float32)
    options = {"backend": backend, **({"threads": threads} if threads else {})}  # None: not given
    reconstruct(binned, **options)
    best = np.inf
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(4):
            reconstruct(binned, **options)
        best = min(best, (time.perf_counter() - started) / (4 * len(binned)))
    return 1.0 / best


def bslz4_frames(path: Path, frames: np.ndarray, n: int) -> Path:
    """An HDF5 file whose ``/entry/data/data`` holds ``n`` frames, ``frames`` (M, rows, cols) over and over, one
    frame per bitshuffle-LZ4 chunk (as an Eiger writes them)."""
    with h5py.File(path, "w") as fh:
        d = fh.create_dataset(
            "entry/data/data",
            shape=(n, *frames.shape[1:]),
            dtype=frames.dtype,
            chunks=(1, *frames.shape[1:]),
            **hdf5plugin.Bitshuffle(cname="lz4"),
        )
        for start in range(0, n, len(frames)):
            d[start : start + len(frames)] = frames[: min(len(frames), n - start)]
    return path
