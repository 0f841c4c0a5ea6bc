"""The runner from an EPICS pvAccess NTNDArray channel: pvapy's areaDetector simulator serves 256x256 uint16
frames on loopback at a requested rate; recorded are the rate cdinn wrote and the frames the monitor missed,
beside the ceiling of that source on this machine: the rate a bare pvapy monitor (a Python callback that only
counts the updates and their uniqueId) receives from the same simulator run the same way."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from cdinn.host.pva import loopback_environment
from conftest import network_alone_fps  # benchmarks/conftest.py, beside this file

BIN = Path(sys.executable).parent
RATE = 5000  # frames/s asked of the simulator
BARE_MONITOR = """
import json, sys, time
import pvaccess as pva
stamps, ids = [], []
def update(pv):
    stamps.append(time.time())
    ids.append(pv["uniqueId"])
channel = pva.Channel(sys.argv[1], pva.PVA)
channel.monitor(update, "field()")
print("ready", flush=True)
last, count = time.monotonic(), 0
while time.monotonic() - last < 5:
    time.sleep(0.1)
    if len(stamps) != count:
        last, count = time.monotonic(), len(stamps)
channel.stopMonitor()
seconds = max(stamps[-1] - stamps[0], 1e-9) if stamps else 0.0
missed = ids[-1] - ids[0] + 1 - len(ids) if ids else 0
print(json.dumps({"received": len(stamps), "missed": missed, "fps": len(stamps) / seconds if seconds else 0.0}))
"""


def _serve(channel: str, frames: Path, seconds: int, env: dict) -> subprocess.Popen:
    """pvapy's areaDetector simulator serving ``frames`` on ``channel`` at RATE for ``seconds``."""
    from tests.host.test_pva import _sim_server  # the tests' own launcher of the simulator

    return _sim_server(frames, channel, env, RATE, seconds)


def _bare_pvapy_rate(channel: str, frames: Path, seconds: int, env: dict) -> dict:
    """The ceiling: what a bare pvapy monitor receives from the simulator (received, missed, fps)."""
    monitor = subprocess.Popen(
        [sys.executable, "-c", BARE_MONITOR, channel], env=env, stdout=subprocess.PIPE, text=True
    )
    assert monitor.stdout is not None and monitor.stdout.readline().strip() == "ready"
    server = _serve(channel, frames, seconds, env)
    out, _ = monitor.communicate(timeout=120)
    server.wait(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def test_pva_source_rate(benchmark, bench_patterns, tmp_path):
    seconds = 2 if benchmark.disabled else 6
    intensity = bench_patterns.diffraction.astype(np.float64) ** 2
    intensity *= 60_000 * 64 / intensity.max(axis=(1, 2), keepdims=True)
    frames = np.round(np.repeat(np.repeat(intensity / 64, 8, axis=1), 8, axis=2)).astype(np.uint16)
    np.save(tmp_path / "frames.npy", frames)
    env = dict(os.environ, **loopback_environment())
    counter = iter(range(1000))

    def one_run():
        channel = f"cdinn:bench{next(counter)}:image"
        out = tmp_path / f"{channel.replace(':', '_')}.h5"
        run = subprocess.Popen(
            [
                str(BIN / "cdinn"),
                "run",
                "--source",
                f"pva://{channel}",
                "--out",
                str(out),
                "--idle-timeout",
                "5",
                "--quiet",
                "--allow-partial",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        while not out.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # the runner monitors the channel: now the simulator may start
        server = _serve(channel, tmp_path / "frames.npy", seconds, env)
        _, stderr = run.communicate(timeout=120)
        server.wait(timeout=60)
        assert run.returncode == 0, stderr
        with h5py.File(out) as fh:
            counts = json.loads(fh.attrs["counts"])
            arrival = fh["arrival_time"][()]
        return counts, len(arrival) / max(arrival.max() - arrival.min(), 1e-9)

    benchmark.extra_info.update(backend="runner (pvAccess, 256x256)", batch="adaptive", requested_fps=RATE)
    counts, fps = benchmark.pedantic(one_run, rounds=1)
    assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"] and counts["written"] > 0
    bare = _bare_pvapy_rate(f"cdinn:bare{next(counter)}:image", tmp_path / "frames.npy", seconds, env)
    benchmark.extra_info.update(
        patterns_per_call=counts["written"],
        received_fps=fps,
        missed=counts["missed"],
        written=counts["written"],
        pvapy_alone_fps=bare["fps"],
        pvapy_alone_missed=bare["missed"],
        runner_over_pvapy_alone=fps / bare["fps"] if bare["fps"] else None,
    )
    alone = network_alone_fps(frames)
    benchmark.extra_info["ratios"] = {
        "runner (pvAccess) / networks alone, frames/s": fps / alone,
        **({"runner (pvAccess) / pvapy's own monitor alone, frames/s": fps / bare["fps"]} if bare["fps"] else {}),
    }
