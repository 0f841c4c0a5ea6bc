"""EPICS pvAccess on loopback: frames from pvapy's areaDetector simulator server (started here) through
`cdinn run --source pva://...`, reconstructions published with --publish and read back by a pvapy client."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from cdinn.host.pva import loopback_environment

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


@pytest.fixture
def loopback(monkeypatch):
    for key, value in loopback_environment().items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def _sim_server(frames_npy: Path, channel: str, env: dict, fps: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "pvapy-ad-sim-server"),
            "-cn",
            channel,
            "-if",
            str(frames_npy),
            "-fps",
            str(fps),
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


def test_run_from_an_ntndarray_channel_and_publish_the_reconstructions(tmp_path, patterns, loopback):
    import pvaccess as pva
    from pvapy.utility.adImageUtility import AdImageUtility

    frames = np.round(patterns.diffraction.astype(np.float64) ** 2 * 50).astype(np.uint16)
    frames[::2, 15:18, 15:18] = np.iinfo(np.uint16).max  # a beamstop (the sentinel) on every other frame
    np.save(tmp_path / "frames.npy", frames)
    out = tmp_path / "run.h5"
    run = subprocess.Popen(
        [
            str(BIN / "cdinn"),
            "run",
            "--source",
            "pva://cdinn:sim:image",
            "--out",
            str(out),
            "--net",
            "edge",
            "--idle-timeout",
            "8",
            "--publish",
            "pva://cdinn:rec",
            "--quiet",
            "--allow-partial",
        ],
        env=loopback,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not out.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the output exists once the runner monitors the channel and serves its own
    server = _sim_server(tmp_path / "frames.npy", "cdinn:sim:image", loopback, fps=50, seconds=4)
    published: dict[str, list] = {"amplitude": [], "unconstrained": []}
    finished = threading.Event()

    def watch(field):  # a viewer: monitor a published channel until the run ends
        channel = pva.Channel(f"cdinn:rec:{field}", pva.PVA)
        channel.monitor(lambda pv: published[field].append(AdImageUtility.reshapeNtNdArray(pv)[:2]), "field()")
        finished.wait(120)
        channel.stopMonitor()

    viewers = [threading.Thread(target=watch, args=(field,)) for field in published]
    for viewer in viewers:
        viewer.start()
    try:
        stdout, stderr = run.communicate(timeout=120)
    finally:
        finished.set()
        for viewer in viewers:
            viewer.join()
    server.wait(timeout=30)
    assert run.returncode == 0, stderr
    with h5py.File(out) as fh:
        numbers = fh["frame_number"][()]
        counts = __import__("json").loads(fh.attrs["counts"])
        assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"]
        assert counts["written"] >= 50 and fh["amplitude"].shape[1:] == (32, 32)
        assert not fh.attrs["complete"]  # an NTNDArray channel has no end of series: the run ended by its timeout
    # frame numbers are the arrays' uniqueIds: increasing, and a gap would be counted as missed
    assert (np.diff(numbers) > 0).all() and counts["missed"] == int(numbers[-1] - numbers[0] + 1 - len(numbers))
    assert f"missed {counts['missed']}" in stdout
    channels = "cdinn:rec:amplitude, cdinn:rec:phase, cdinn:rec:fit, cdinn:rec:unconstrained"
    assert f"{channels} on 127.0.0.1" in stderr  # where it serves
    images = [(n, img) for n, img in published["amplitude"] if img is not None and img.shape == (32, 32)]
    assert len(images) >= 10 and {n for n, _ in images} <= set(numbers.tolist()) | {0}
    figures = [(n, img) for n, img in published["unconstrained"] if img is not None and img.shape == (1, 1) and n]
    with h5py.File(out) as fh:
        index = {int(n): i for i, n in enumerate(fh["frame_number"][()])}
        n, img = images[-1]
        assert np.allclose(img, fh["amplitude"][index[n]], atol=1e-6)
        written = fh["unconstrained"][()]
    assert (written > 0).any() and (written == 0).any()  # the beamstop frames and the others
    assert len(figures) >= 10 and all(img[0, 0] == written[index[n]] for n, img in figures)


def test_the_publisher_serves_on_loopback_unless_epics_is_configured(monkeypatch):
    from cdinn.host.pva import EPICS_SETTINGS, serving_interfaces, use_loopback_unless_configured

    for name in EPICS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert "every interface" in serving_interfaces()
    assert use_loopback_unless_configured() and serving_interfaces() == "127.0.0.1"
    assert os.environ["EPICS_PVAS_BEACON_ADDR_LIST"] == "127.0.0.1"
    monkeypatch.setenv("EPICS_PVAS_INTF_ADDR_LIST", "10.1.2.3")  # the user's own configuration stands
    assert not use_loopback_unless_configured() and serving_interfaces() == "10.1.2.3"


def test_the_publisher_in_a_network_namespace_with_loopback_only(tmp_path, patterns):
    """No network but loopback (a new network namespace, as a locked-down readout node has): the publisher serves
    on 127.0.0.1 once loopback is up; with no interface up at all it refuses in one line (no C++ backtrace)."""
    import shutil

    if shutil.which("ip") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a network namespace here (needs root and iproute2)")
    np.save(tmp_path / "f.npy", patterns.diffraction[:8].astype(np.float32) ** 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_")}

    def run(out: str, prologue: str) -> subprocess.CompletedProcess:
        command = (
            f"{prologue}{BIN / 'cdinn'} run --source {tmp_path / 'f.npy'} --input-kind intensity --net edge "
            f"--out {tmp_path / out} --publish pva://cdinn:netns --quiet"
        )
        return subprocess.run(["unshare", "-n", "sh", "-c", command], env=env, capture_output=True, text=True)

    up = run("up.h5", "ip link set lo up && ")
    assert up.returncode == 0, up.stderr[-2000:]
    assert "on 127.0.0.1" in up.stderr and "written 8" in up.stdout
    down = run("down.h5", "")
    assert down.returncode == 2 and ".cpp" not in down.stderr and "Traceback" not in down.stderr, down.stderr[-2000:]
    last = down.stderr.strip().splitlines()[-1]  # (pvAccess itself prints one line about the interfaces first)
    assert last.startswith("cdinn: error: cannot serve pvAccess on 127.0.0.1: Failed to introspect")
    assert not (tmp_path / "down.h5").exists()


def test_frames_beyond_the_source_queue_are_dropped_and_counted_as_missed(tmp_path, patterns, loopback):
    """A runner that falls behind: the pvAccess source holds at most max_queued_bytes of frames (memory stays
    flat); the frames it had no room for, and those still queued when the run ends, count as missed."""
    from cdinn.host.frames import Frame
    from cdinn.host.pva import PvaSource

    frames = np.round(patterns.diffraction.astype(np.float64) ** 2 * 50).astype(np.uint16)
    frames[::2, 15:18, 15:18] = np.iinfo(np.uint16).max  # a beamstop (the sentinel) on every other frame
    np.save(tmp_path / "frames.npy", frames)
    channel = "cdinn:test:overflow"
    source = PvaSource(f"pva://{channel}", idle_timeout=3, max_queued_bytes=10 * frames[0].nbytes)
    server = _sim_server(tmp_path / "frames.npy", channel, loopback, fps=400, seconds=1)
    server.wait(timeout=60)  # nothing is taken from the source while the simulator sends ~400 frames
    assert source._queued_bytes <= 10 * frames[0].nbytes
    delivered = [item.number for item in source if isinstance(item, Frame)]
    first, newest = source._numbers
    assert len(delivered) == 10 and source.missed > 100
    assert len(delivered) + source.missed == newest - first + 1  # every frame the monitor saw is accounted for
    source.close()
