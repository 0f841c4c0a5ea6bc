"""The runner end to end from each source with 256x256 uint16 detector frames: files (an NXmx master with
bitshuffle/LZ4 data files, read block by block), DECTRIS stream v2 and v1 over ZeroMQ on loopback.

Frames per second (the runner's own, first frame to last) are recorded in ``extra_info``, with the ratio to the
networks alone on the same frames measured right after (``ratios``); received == written + rejected is
asserted. The file
benchmark also runs ``cdinn run`` as a process on a >= 1 GB file and records its peak RSS (target: <= 600 MB,
asserted when timing is enabled; with ``--benchmark-disable``, as in CI, the file is 300 frames).
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import psutil
import pytest

from cdinn.host.backends import get_backend
from cdinn.host.front import open_front
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.host.runner import RUNNER_BACKEND, RUNNER_INFERENCE_THREADS, Runner, RunnerConfig
from cdinn.host.sources import SourceConfig
from cdinn.host.writer import RunWriter
from conftest import network_alone_fps  # benchmarks/conftest.py, beside this file

SIDE = 256
FULL_FILE_FRAMES = 8192  # 8192 x 256 x 256 x 2 bytes = 1.07 GB of frames
STREAM_FRAMES = 3000


def _frames(patterns, n: int) -> np.ndarray:
    intensity = patterns.diffraction.astype(np.float64) ** 2
    intensity *= 60_000 * 64 / intensity.max(axis=(1, 2), keepdims=True)
    big = np.round(np.repeat(np.repeat(intensity / 64, 8, axis=1), 8, axis=2)).astype(np.uint16)
    return np.resize(big, (n, SIDE, SIDE))


def _master(folder: Path, frames: np.ndarray, per_file: int = 1000) -> Path:
    with h5py.File(folder / "m_master.h5", "w") as fh:
        data = fh.create_group("entry/data")
        for i, start in enumerate(range(0, len(frames), per_file)):
            name = f"m_data_{i + 1:06d}.h5"
            with h5py.File(folder / name, "w") as dfh:
                d = dfh.create_dataset(
                    "entry/data/data",
                    data=frames[start : start + per_file],
                    chunks=(1, SIDE, SIDE),
                    **hdf5plugin.Bitshuffle(cname="lz4"),
                )
                d.attrs["image_nr_low"] = start + 1
            data[f"data_{i + 1:06d}"] = h5py.ExternalLink(name, "/entry/data/data")
    return folder / "m_master.h5"


def test_file_source_memory_and_rate(benchmark, bench_patterns, tmp_path):
    n = 300 if benchmark.disabled else FULL_FILE_FRAMES
    master = _master(tmp_path, _frames(bench_patterns, n))
    counter = iter(range(1_000_000))

    peaks = []

    def one_run():
        out = tmp_path / f"run{next(counter)}.h5"
        with open(tmp_path / "stdout.txt", "w+") as log:
            child = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("cdinn")),
                    "run",
                    "--source",
                    str(master),
                    "--out",
                    str(out),
                    "--quiet",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            # sample the command's own RSS (the kernel's peak for a child also counts the parent's pages it
            # shared between fork and exec, so it would measure this test process instead)
            proc, peak = psutil.Process(child.pid), 0.0
            while child.poll() is None:
                try:
                    peak = max(peak, proc.memory_info().rss / 2**20)
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.02)
            log.seek(0)
            text = log.read()
        assert child.returncode == 0, text
        peaks.append(peak)
        return text

    benchmark.extra_info.update(
        patterns_per_call=n,
        backend="runner (file, NXmx bslz4)",
        batch="adaptive",
        frame_bytes=SIDE * SIDE * 2,
        file_gb=n * SIDE * SIDE * 2 / 1e9,
    )
    stdout = benchmark.pedantic(one_run, rounds=1)
    assert f"received {n} = written {n} + rejected 0" in stdout
    peak_mb = max(peaks)
    benchmark.extra_info["peak_rss_mb"] = peak_mb
    benchmark.extra_info["runner_summary"] = stdout.strip().splitlines()[-1]
    _record_rate(benchmark, "file", float(re.findall(r"([0-9.]+) frames/s", stdout)[-1]), _frames(bench_patterns, 64))
    if not benchmark.disabled:
        assert peak_mb <= 600, f"peak RSS {peak_mb:.0f} MB for a {n * SIDE * SIDE * 2 / 1e9:.2f} GB file"


@pytest.mark.parametrize("fmt", ["dectris-v2", "dectris-v1"])
def test_dectris_stream_rate(benchmark, bench_patterns, tmp_path, free_tcp_endpoint, fmt):
    from tests.host.dectris_messages import push_process  # the stream tests' encoders, sending from a process

    frames = _frames(bench_patterns, 64).astype(np.uint32)
    centre = (SIDE / 2, SIDE / 2)  # the beam centre the start message records: the frames' middle
    mask = np.zeros((SIDE, SIDE), np.uint32)
    backend = get_backend(RUNNER_BACKEND, threads=RUNNER_INFERENCE_THREADS)
    counter = iter(range(1_000_000))

    def one_run():
        # the detector stand-in in a process of its own: this one measures the runner alone
        sender = push_process(free_tcp_endpoint, fmt, frames, mask, STREAM_FRAMES, centre, tmp_path)
        pre = PreprocessConfig(input_kind="intensity")
        front = open_front(RunnerConfig.front, free_tcp_endpoint, SourceConfig(idle_timeout=30), pre)
        writer = RunWriter(tmp_path / f"run{next(counter)}.h5", backend.provenance(), {})
        summary = Runner(front, backend, writer, progress=False).run()
        assert sender.wait(timeout=60) == 0
        return summary

    benchmark.extra_info.update(patterns_per_call=STREAM_FRAMES, backend=f"runner ({fmt}, 256x256)", batch="adaptive")
    summary = benchmark.pedantic(one_run, rounds=1 if benchmark.disabled else 2)
    assert summary["received"] == STREAM_FRAMES == summary["written"] and summary["rejected"] == 0
    benchmark.extra_info["stage_us_per_frame"] = summary["stage_us_per_frame"]
    _record_rate(benchmark, fmt, summary["frames_per_s"], frames)


def _record_rate(benchmark, source: str, frames_per_s: float, frames: np.ndarray) -> None:
    """The runner's own frames/s (first frame to last; the last round's) and its ratio to the networks alone on
    the same frames, measured now."""
    alone = network_alone_fps(frames)
    benchmark.extra_info.update(frames_per_s=frames_per_s, network_alone_frames_per_s=alone)
    benchmark.extra_info["ratios"] = {f"runner ({source}) / networks alone, frames/s": frames_per_s / alone}


def test_preprocessing_rate(benchmark, bench_patterns):
    """Preprocessing alone (mask, centring, crop, binning to 32x32, amplitudes) of 256x256 uint16 frames with a
    chip gap: one of the runner's stages, beside the network's batched rate (test_bench_inference), to show
    which one bounds the end-to-end rate."""
    frames = _frames(bench_patterns, 64)
    frames[:, 126:130, :] = np.iinfo(np.uint16).max  # a chip gap, read as the masked sentinel
    preprocess = Preprocessor(PreprocessConfig(input_kind="intensity"))

    def run():
        return [preprocess(frame) for frame in frames]

    benchmark.extra_info.update(patterns_per_call=len(frames), backend="preprocessing (256x256 uint16)", batch=1)
    out = benchmark(run)
    assert len(out) == len(frames) and all(o.shape == (32, 32) and np.isfinite(o).all() for o in out)


def test_file_rate_float32_vs_bfloat16(benchmark, bench_patterns, tmp_path):
    """The runner from the NXmx bslz4 file with the networks computed in float32 (``openvino``, the default) and
    in bfloat16 (``openvino-bf16``), alternating in one run: frames/s of each (best of the rounds) and their
    ratio. Both write every frame; their median fits agree within 5 %."""
    from cdinn.host.backends.openvino_backend import bf16_available

    if not bf16_available():
        pytest.skip("this CPU has no bfloat16 arithmetic")
    n = 300 if benchmark.disabled else 8000
    master = _master(tmp_path, _frames(bench_patterns, n))
    engines = {name: get_backend(name, threads=1) for name in ("openvino", "openvino-bf16")}
    rates: dict[str, list[float]] = {name: [] for name in engines}
    fits: dict[str, float] = {}

    def one_run(name: str, round_: int) -> None:
        out = tmp_path / f"{name}{round_}.h5"
        front = open_front(RunnerConfig.front, str(master), SourceConfig(), PreprocessConfig(input_kind="intensity"))
        front.start()
        summary = Runner(front, engines[name], RunWriter(out, engines[name].provenance(), {}), progress=False).run()
        assert summary["written"] == n == summary["received"]
        rates[name].append(summary["frames_per_s"])
        with h5py.File(out) as fh:
            fits[name] = float(np.median(fh["fit"][:]))

    def alternate() -> None:
        for round_ in range(1 if benchmark.disabled else 3):
            for name in engines:
                one_run(name, round_)

    benchmark.extra_info.update(patterns_per_call=2 * n, backend="runner (file), float32 vs bfloat16", batch="adaptive")
    benchmark.pedantic(alternate, rounds=1)
    best = {name: max(r) for name, r in rates.items()}
    benchmark.extra_info.update(
        frames_per_s=rates, median_fit=fits, bf16_over_f32=best["openvino-bf16"] / best["openvino"]
    )
    assert abs(fits["openvino-bf16"] - fits["openvino"]) <= 0.05 * fits["openvino"]
