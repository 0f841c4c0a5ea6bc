"""The runner from an EPICS pvAccess NTNDArray channel: pvapy's areaDetector simulator serves 256x256 uint16
frames on loopback at a requested rate; recorded are the rate cdinn wrote and the frames the monitor missed
(pvapy's own limit on this machine)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from cdinn.host.pva import loopback_environment

BIN = Path(sys.executable).parent
RATE = 5000  # frames/s asked of the simulator


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
        server = subprocess.Popen(
            [
                str(BIN / "pvapy-ad-sim-server"),
                "-cn",
                channel,
                "-if",
                str(tmp_path / "frames.npy"),
                "-fps",
                str(RATE),
                "-rt",
                str(seconds),
                "-std",
                "2",
                "-shd",
                "1",
                "-rp",
                "0",
                "-dc",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
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
    benchmark.extra_info.update(
        patterns_per_call=counts["written"], received_fps=fps, missed=counts["missed"], written=counts["written"]
    )
