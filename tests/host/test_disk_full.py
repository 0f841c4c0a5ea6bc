"""A full disk under `cdinn run` and `cdinn reconstruct`: a one-line error and a non-zero exit, never a crash;
what `run` wrote before stays readable with its counts; `reconstruct` leaves nothing behind; a disk full from
the start leaves no empty output that would block the rerun. The file system is a real tmpfs of 40 MiB,
mounted by the test (needs root, as on the project's machine and CI)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdinn.host import output
from cdinn.io import RESERVE_BYTES

CDINN = str(Path(sys.executable).with_name("cdinn"))


@pytest.fixture
def small_fs(tmp_path):
    """A 40 MiB tmpfs, nearly filled: the reserve and 3 MiB are left for the output."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        filler = shutil.disk_usage(mount).free - RESERVE_BYTES - (3 << 20)
        with open(mount / "filler", "wb") as fh:
            fh.truncate(0)
            fh.write(b"\0" * filler)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture(scope="module")
def frames(tmp_path_factory, centred_patterns):
    """640 intensity frames: ~5 MiB of output, more than the file system has left."""
    path = tmp_path_factory.mktemp("frames") / "frames.npy"
    np.save(path, np.tile(centred_patterns.diffraction.astype(np.float32) ** 2, (10, 1, 1)))
    return path


def _cdinn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CDINN, *args], capture_output=True, text=True, timeout=300)


def test_run_stops_cleanly_when_the_disk_fills_and_keeps_what_it_wrote(small_fs, frames):
    out = small_fs / "run.h5"
    done = _cdinn("run", "--source", str(frames), "--input-kind", "intensity", "--out", str(out), "--quiet")
    assert done.returncode == 2, done.stderr[-2000:]  # an error, not a crash (SIGSEGV: -11)
    error = done.stderr.strip().splitlines()[-1]
    assert "the file system is full" in error and "written before are kept" in error
    result = output.read(str(out))  # readable, closed, with its counts
    written = len(result["frame_number"])
    assert written > 0 and np.array_equal(result["frame_number"], np.arange(written))
    counts = result["attrs"]["counts"]
    assert counts["written"] == written and counts["received"] > written and result["attrs"]["complete"] is False
    assert np.isfinite(result["fit"]).all()
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler", "run.h5"]  # the reserve is given back


def test_reconstruct_on_a_full_disk_leaves_nothing_behind(small_fs, frames):
    out = small_fs / "rec.h5"
    done = _cdinn("reconstruct", "--input-kind", "intensity", str(frames), str(out))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].endswith("nothing was written")
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler"]


def test_a_disk_full_from_the_start_leaves_no_output_to_block_the_rerun(small_fs, frames):
    (small_fs / "more").write_bytes(b"\0" * (6 << 20))  # now less than the reserve is free
    out = small_fs / "run.h5"
    done = _cdinn("run", "--source", str(frames), "--input-kind", "intensity", "--out", str(out), "--quiet")
    assert done.returncode == 2 and "not enough space" in done.stderr.strip().splitlines()[-1]
    assert not out.exists() and sorted(p.name for p in small_fs.iterdir()) == ["filler", "more"]
    (small_fs / "more").unlink()
    (small_fs / "filler").unlink()
    again = _cdinn("run", "--source", str(frames), "--input-kind", "intensity", "--out", str(out), "--quiet")
    assert again.returncode == 0, again.stderr[-2000:]
    assert output.read(str(out))["attrs"]["counts"]["written"] == 640


def test_a_killed_writer_leaves_its_reserve_to_the_file_system(small_fs):
    """SIGKILL runs no cleanup: the reserve is a file without a name, so the kernel frees it with the process."""
    free = shutil.disk_usage(small_fs).free
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from cdinn.io import SpaceReserve; r = SpaceReserve({str(small_fs / 'run.h5')!r}); "
         "print('held', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert shutil.disk_usage(small_fs).free <= free - RESERVE_BYTES  # the space is held ...
        assert sorted(p.name for p in small_fs.iterdir()) == ["filler"]  # ... by no file a user must remove
    finally:
        holder.kill()
        holder.wait()
    assert shutil.disk_usage(small_fs).free == free
