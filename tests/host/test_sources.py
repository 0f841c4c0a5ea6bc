import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.host.decoding import END, CdinnDecoder
from cdinn.host.frames import Frame, Rejected
from cdinn.host.sources import DirectorySource, FileSource, ZmqSource, open_source, read_stack
from cdinn.host.stream_sim import END_MESSAGE, frame_message, stream
from cdinn.io import write_arrays


def test_npy_and_hdf5_glob_sources_number_frames_consecutively(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 32, 32)))
    write_arrays(tmp_path / "r1.h5", {"diffraction": np.full((2, 32, 32), 2.0)})
    write_arrays(tmp_path / "r2.h5", {"diffraction": np.full((4, 32, 32), 3.0)})
    assert [f.number for f in FileSource(str(tmp_path / "a.npy"))] == [0, 1, 2]
    items = list(open_source(f"{tmp_path}/r*.h5:/diffraction"))
    assert [f.number for f in items] == list(range(6))
    assert items[0].source.endswith("r1.h5:/diffraction") and items[-1].data[0, 0] == 3.0
    with pytest.raises(CdinnError, match="no input files match"):
        FileSource(str(tmp_path / "nothing*.h5"))


def test_unreadable_files_become_rejections(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    items = list(FileSource(str(tmp_path / "bad.h5")))
    assert len(items) == 1 and isinstance(items[0], Rejected) and "not a readable HDF5" in items[0].reason


def test_watched_directory_picks_up_files_as_they_appear(tmp_path):
    source = DirectorySource(str(tmp_path), poll=0.05, idle_timeout=1.0)

    def writer():
        for i in range(3):
            time.sleep(0.15)
            tmp = tmp_path / f".part{i}.npy"
            np.save(tmp, np.full((2, 32, 32), float(i + 1)))
            tmp.rename(tmp_path / f"frames{i}.npy")

    thread = threading.Thread(target=writer)
    thread.start()
    items = list(source)
    thread.join()
    assert [f.number for f in items] == list(range(6))
    assert [f.data[0, 0] for f in items] == [1, 1, 2, 2, 3, 3]


def test_a_watched_file_gone_between_listing_and_reading_is_skipped(tmp_path):
    """A name listed whose file is gone (here a dangling link; in the wild a temporary file renamed into place
    between the listing and its stat) does not stop the watch."""
    (tmp_path / "gone.npy").symlink_to(tmp_path / "nowhere.npy")
    np.save(tmp_path / "frames.npy", np.ones((2, 32, 32)))
    items = list(DirectorySource(str(tmp_path), poll=0.05, idle_timeout=0.5))
    assert [f.number for f in items] == [0, 1]


def test_decode_message_formats():
    decode_message = CdinnDecoder("x")
    frame = np.arange(6, dtype=np.uint16).reshape(2, 3)
    item = decode_message(frame_message(7, frame))
    assert isinstance(item, Frame) and item.number == 7 and np.array_equal(item.data, frame)
    assert decode_message(END_MESSAGE) is END
    assert "corrupt cdinn stream message (JSONDecodeError" in decode_message([b"{not json"]).reason
    bad = frame_message(3, frame)
    assert "does not match shape" in decode_message([bad[0], bad[1][:-2]]).reason
    assert decode_message([bad[0], bad[1][:-2]]).number == 3
    assert "expected 2 message parts" in decode_message([bad[0]]).reason


def test_zeromq_stream_on_loopback(free_tcp_endpoint):
    frames = np.random.default_rng(0).random((50, 32, 32)).astype(np.float32)
    source = ZmqSource(free_tcp_endpoint, "pull", idle_timeout=10)
    sender = threading.Thread(
        target=stream, args=(frames, free_tcp_endpoint), kwargs={"rate": 2000, "connect_wait": 0.3}
    )
    sender.start()
    items = list(source)
    sender.join()
    source.close()
    assert [f.number for f in items] == list(range(50))
    assert np.array_equal(np.stack([f.data for f in items]), frames)


def test_sources_count_the_time_they_decode_not_the_time_they_wait(tmp_path, free_tcp_endpoint):
    """A stream's idle seconds between frames are not decoding; a file's frames cost some reading."""
    frames = np.random.default_rng(0).random((10, 256, 256)).astype(np.float32)
    source = ZmqSource(free_tcp_endpoint, "pull", idle_timeout=10)
    sender = threading.Thread(target=stream, args=(frames, free_tcp_endpoint), kwargs={"rate": 10, "connect_wait": 0.3})
    started = time.perf_counter()
    sender.start()
    assert len(list(source)) == 10
    waited = time.perf_counter() - started
    sender.join()
    source.close()
    assert waited > 0.9 and 0 < source.decode_seconds < 0.1 * waited
    np.save(tmp_path / "f.npy", frames)
    files = FileSource(str(tmp_path / "f.npy"))
    assert files.decode_seconds == 0 and len(list(files)) == 10 and files.decode_seconds > 0


def test_bad_zeromq_settings(free_tcp_endpoint):
    with pytest.raises(CdinnError, match="mode must be"):
        ZmqSource(free_tcp_endpoint, "req")
    with pytest.raises(CdinnError, match="cannot connect"):
        ZmqSource("tcp://127.0.0.1:notaport", "pull")


def test_an_areadetector_tiff_series_is_read_in_natural_order(tmp_path):
    import tifffile

    frames = np.random.default_rng(3).poisson(20.0, (12, 40, 36)).astype(np.uint32)
    for i in reversed(range(12)):  # written newest first, and 9 < 10 only by value
        tifffile.imwrite(tmp_path / f"scan54_{i + 1}.tif", frames[i])
    (tmp_path / "notes.txt").write_text("not a frame")
    for spec in (str(tmp_path), str(tmp_path / "scan54_*.tif")):
        items = list(FileSource(spec))
        assert [f.number for f in items] == list(range(12))
        assert np.array_equal(np.stack([f.data for f in items]), frames)
    (tmp_path / "scan54_13.tif").write_bytes(b"II*\x00 truncated")
    source = FileSource(str(tmp_path))
    items = list(source)
    assert isinstance(items[-1], Rejected) and "scan54_13.tif" in items[-1].reason and not source.ended_normally


REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "aps34idc-au111-scan54"


@pytest.mark.skipif(not REALDATA.is_dir(), reason="needs ../shared/realdata")
def test_the_measured_rocking_scan_as_the_beamline_writes_it_reconstructs_from_its_tiff_folder(tmp_path):
    """The Au(111) frames 97-101 as 34-ID-C's areaDetector writes them (one uint32 TIFF per angle) through
    `cdinn reconstruct FOLDER`: every frame, in angle order, each with its fit."""
    import subprocess
    import sys

    import h5py
    import tifffile

    stack = np.load(REALDATA / "raw_stack_S0054.npz")["data"][97:102]
    folder = tmp_path / "Staff20-1a_S0054"
    folder.mkdir()
    for i, frame in enumerate(stack):
        tifffile.imwrite(folder / f"Staff20-1a_S0054_{97 + i:05d}.tif", frame)
    out = tmp_path / "rec.h5"
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("cdinn")),
            "reconstruct",
            str(folder),
            str(out),
            "--input-kind",
            "intensity",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    with h5py.File(out) as fh:
        assert fh["frame_number"][()].tolist() == [0, 1, 2, 3, 4]
        fit = fh["fit"][()]
    assert np.isfinite(fit).all() and fit[2] < 0.2  # frame 99, the slice through the peak, fits


def _nexus_file(path, data):
    with h5py.File(path, "w") as fh:
        fh.attrs["default"] = "entry"
        entry = fh.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        group = entry.create_group("data")
        group.attrs["NX_class"] = "NXdata"
        group.attrs["signal"] = "data"
        group.create_dataset("data", data=data)
        fh.create_dataset("other", data=np.zeros(3))


def _read(spec):
    return read_stack(spec)[0]


def test_nexus_default_and_explicit_paths(tmp_path):
    data = np.arange(2 * 32 * 32, dtype=np.float32).reshape(2, 32, 32)
    path = tmp_path / "scan.nxs"
    _nexus_file(path, data)
    assert np.array_equal(_read(str(path)), data)
    assert np.array_equal(_read(f"{path}:/entry/data/data"), data)
    np.save(tmp_path / "f.npy", data)
    assert np.array_equal(_read(str(tmp_path / "f.npy")), data)


@pytest.mark.parametrize(
    "maker,message",
    [
        (lambda p: None, "not found"),
        (lambda p: p.write_bytes(b"garbage, not HDF5"), "not a readable HDF5"),
        (lambda p: h5py.File(p, "w").close(), "no dataset given"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, maker, message):
    path = tmp_path / "in.h5"
    maker(path)
    with pytest.raises(CdinnError, match=message) as info:
        _read(str(path))
    assert "\n" not in str(info.value)


def test_missing_dataset_and_unknown_format(tmp_path):
    path = tmp_path / "x.h5"
    write_arrays(path, {"a": np.zeros((2, 2))})
    with pytest.raises(CdinnError, match="dataset /nope not found"):
        _read(f"{path}:/nope")
    (tmp_path / "x.tif").write_bytes(b"")
    with pytest.raises(CdinnError, match="not a readable TIFF file"):
        _read(str(tmp_path / "x.tif"))
    (tmp_path / "x.xyz").write_bytes(b"")
    with pytest.raises(CdinnError, match="unknown input format"):
        _read(str(tmp_path / "x.xyz"))


def test_frames_declare_what_they_hold_and_a_contradiction_is_an_error(tmp_path, patterns, capsys):
    """One rule for every command (cdinn.model.validation.frame_kind): a dataset's 'quantity' attribute (cdinn
    simulate writes it), detector data (/entry/data/data, counts units) and detector streams declare their kind;
    undeclared integers are counts, undeclared real numbers amplitudes; a contradicting --input-kind is refused."""
    from cdinn.cli import main
    from cdinn.model.validation import frame_kind

    assert main(["simulate", "--n", "4", "--seed", "1", "--out", str(tmp_path / "sim.h5")]) == 0
    assert read_stack(str(tmp_path / "sim.h5"))[1] == "amplitude"
    with h5py.File(tmp_path / "det.h5", "w") as fh:
        fh.create_dataset("entry/data/data", data=np.ones((2, 40, 40), np.float32))
        fh.create_dataset("counts", data=np.ones((2, 40, 40), np.float32)).attrs["units"] = "counts"
    assert read_stack(str(tmp_path / "det.h5"))[1] == "intensity"
    assert read_stack(f"{tmp_path / 'det.h5'}:/counts")[1] == "intensity"
    np.save(tmp_path / "f.npy", np.ones((2, 32, 32), np.float32))
    assert read_stack(str(tmp_path / "f.npy"))[1] is None
    assert frame_kind("auto", None, np.dtype("uint16")) == "intensity"
    assert frame_kind("auto", None, np.dtype("float32")) == "amplitude"
    assert frame_kind("intensity", None, np.dtype("float32")) == "intensity"
    code = main(["reconstruct", str(tmp_path / "sim.h5"), str(tmp_path / "out.h5"), "--input-kind", "intensity"])
    err = capsys.readouterr().err
    assert code == 2 and "declares its frames as amplitude but --input-kind intensity" in err
    assert not (tmp_path / "out.h5").exists()


def test_a_plugin_opens_its_own_scheme_through_the_source_registry(tmp_path):
    """A scheme registered with ``register_source`` opens through its opener, as pva:// and tcp:// do."""
    from cdinn.host import sources

    class Memory:  # follows the Source contract: frames, then its own end
        missed = 0

        def __init__(self, spec: str):
            self.spec, self.ended_normally = spec, False

        def __iter__(self):
            yield Frame(0, np.ones((32, 32), np.float32), self.spec, time.time())
            self.ended_normally = True

        def close(self) -> None:
            pass

    sources.register_source("mem://", lambda spec, cfg, stop: Memory(spec))
    try:
        source = open_source("mem://frames")
        assert [item.number for item in source] == [0] and source.ended_normally
        shipped = open_source("tcp://127.0.0.1:1")  # the shipped schemes stay
        assert isinstance(shipped, ZmqSource)
        shipped.close()
    finally:
        del sources.SCHEMES["mem://"]
