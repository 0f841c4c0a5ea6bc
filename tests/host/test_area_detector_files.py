"""Real EPICS areaDetector NDFileHDF5 files (tests/data/areadetector, their provenance beside them): read as
the detector wrote them, with one-line answers for what cannot be reconstructed, never a traceback."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from cdinn.host.sources import FileSource

DATA = Path(__file__).resolve().parents[1] / "data" / "areadetector"
CDINN = str(Path(sys.executable).with_name("cdinn"))


def _cdinn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CDINN, *args], capture_output=True, text=True, timeout=300)


def test_a_nexus_template_file_reads_its_single_frame_and_per_frame_ndattributes():
    items = list(FileSource(str(DATA / "test2_master_012.h5")))
    assert len(items) == 1 and items[0].number == 0
    frame = items[0]
    assert frame.data.shape == (10, 10) and frame.data.dtype == np.uint8 and frame.kind == "intensity"
    assert frame.source.endswith("test2_master_012.h5:/entry/data/data")  # the NXdata signal, followed
    assert frame.centre == (0.001, 0.001)  # per-frame NDAttribute arrays: the first value, in pixels (no units)


def test_frames_smaller_than_the_grid_get_one_line_from_every_command(tmp_path):
    spec = str(DATA / "test2_master_012.h5")
    batch = _cdinn("reconstruct", spec, str(tmp_path / "b.h5"))
    assert batch.returncode == 2 and batch.stderr.count("\n") == 1 and "has shape (10, 10)" in batch.stderr
    assert not (tmp_path / "b.h5").exists()
    live = _cdinn("run", "--source", spec, "--out", str(tmp_path / "r.h5"), "--quiet")
    assert live.returncode == 2 and "Traceback" not in live.stderr
    assert "smaller than the 32x32 grid" in live.stderr and "received 1 = written 0 + rejected 1" in live.stdout


def test_a_custom_layout_without_a_nexus_default_asks_for_its_dataset(tmp_path):
    bare = _cdinn("reconstruct", str(DATA / "test1_master_011.h5"), str(tmp_path / "x.h5"))
    assert bare.returncode == 2 and "name one as FILE:/path/to/dataset" in bare.stderr
    named = list(FileSource(f"{DATA / 'test1_master_011.h5'}:/example/data_link_to_other_group"))
    assert len(named) == 1 and named[0].data.shape == (10, 10)
