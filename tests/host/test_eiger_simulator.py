"""DECTRIS stream v1 from the real peer: ALBA's eiger-simulator (REST + ZeroMQ on loopback, started here)
streams an Eiger 9M series built from simulated patterns; `cdinn run` reconstructs it."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from cdinn.api import reconstruct

BIN = Path(sys.executable).parent
ROWS, COLS = 3269, 3110  # the simulator's Eiger 9M (its dimage_d header always states this shape)
CENTRE = (1657, 1534)  # its default beam_center_y, beam_center_x (rounded)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _series(patterns, n: int) -> np.ndarray:
    """(n, 3269, 3110) uint16 frames: each 32x32 pattern's intensity spread over 8x8 pixel blocks, its zero
    frequency at the beam centre."""
    intensity = patterns.diffraction[:n].astype(np.float64) ** 2
    intensity *= 60_000 * 64 / intensity.max(axis=(1, 2), keepdims=True)  # brightest pixel 60,000 counts
    window = np.repeat(np.repeat(intensity / 64, 8, axis=1), 8, axis=2)
    frames = np.zeros((n, ROWS, COLS), np.uint16)
    r0, c0 = CENTRE[0] - 128, CENTRE[1] - 128
    frames[:, r0 : r0 + 256, c0 : c0 + 256] = np.round(np.minimum(window, 65534))
    return frames


def _rest(base: str, path: str, value=None):
    data = None if value is None else json.dumps({"value": value}).encode()
    request = urllib.request.Request(
        f"{base}/{path}", data=data, method="PUT", headers={"Content-Type": "application/json"}
    )
    return urllib.request.urlopen(request, timeout=30).read()


def test_cdinn_run_reconstructs_an_eiger_simulator_series(tmp_path, patterns):
    n = 6
    frames = _series(patterns, n)
    with h5py.File(tmp_path / "series_data_000001.h5", "w") as fh:
        fh.create_dataset("entry/data/data", data=frames, chunks=(1, ROWS, COLS), **hdf5plugin.Bitshuffle(cname="lz4"))
    with h5py.File(tmp_path / "series_master.h5", "w") as fh:
        fh.create_group("entry/data")["data_000001"] = h5py.ExternalLink("series_data_000001.h5", "/entry/data/data")
    http, stream = _free_port(), _free_port()
    sim = subprocess.Popen(
        [
            str(BIN / "eiger-simulator"),
            "--host",
            "127.0.0.1",
            "--port",
            str(http),
            "--zmq",
            f"tcp://127.0.0.1:{stream}",
            "--dataset",
            str(tmp_path / "series_master.h5"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{http}/detector/api/1.6.0"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/detector/api/version/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        _rest(base, "config/nimages", n)
        _rest(base, "config/count_time", 0.05)
        _rest(base, "command/initialize")
        out = tmp_path / "run.h5"
        run = subprocess.Popen(
            [
                str(BIN / "cdinn"),
                "run",
                "--source",
                f"tcp://127.0.0.1:{stream}",
                "--crop",
                "256",
                "--net",
                "edge",
                "--idle-timeout",
                "60",
                "--out",
                str(out),
                "--quiet",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)  # the output is created once the runner's PULL socket is connected
        time.sleep(1)
        _rest(base, "command/arm")
        _rest(base, "command/trigger")
        _rest(base, "command/disarm")
        stdout, stderr = run.communicate(timeout=120)  # ends on dseries_end, not the idle timeout
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    assert run.returncode == 0, stdout + stderr
    assert f"received {n} = written {n} + rejected 0" in stdout
    with h5py.File(out) as fh:
        assert fh["frame_number"][()].tolist() == list(range(n)) and fh.attrs["complete"]
        amplitude = fh["amplitude"][()]
    # the same counts binned here give the same reconstruction: nothing was lost or reordered on the way
    r0, c0 = CENTRE[0] - 128, CENTRE[1] - 128
    binned = frames[:, r0 : r0 + 256, c0 : c0 + 256].reshape(n, 32, 8, 32, 8).sum(axis=(2, 4), dtype=np.float64)
    direct = reconstruct(np.sqrt(binned), net="edge")
    assert np.abs(amplitude - direct.amplitude).max() < 1e-4
