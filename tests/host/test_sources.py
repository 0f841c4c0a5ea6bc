import threading
import time

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.host.dectris import END
from cdinn.host.frames import Frame, Rejected
from cdinn.host.sources import DirectorySource, FileSource, ZmqSource, decode_message, open_source
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


def test_decode_message_formats():
    frame = np.arange(6, dtype=np.uint16).reshape(2, 3)
    item = decode_message(frame_message(7, frame), "x")
    assert isinstance(item, Frame) and item.number == 7 and np.array_equal(item.data, frame)
    assert decode_message(END_MESSAGE, "x") is END
    assert "corrupt message header" in decode_message([b"{not json"], "x").reason
    bad = frame_message(3, frame)
    assert "does not match shape" in decode_message([bad[0], bad[1][:-2]], "x").reason
    assert decode_message([bad[0], bad[1][:-2]], "x").number == 3
    assert "expected 2 message parts" in decode_message([bad[0]], "x").reason


def test_zeromq_stream_on_loopback(free_tcp_endpoint):
    frames = np.random.default_rng(0).random((50, 32, 32)).astype(np.float32)
    source = ZmqSource(free_tcp_endpoint, "pull", idle_timeout=10)
    sender = threading.Thread(target=stream, args=(frames, free_tcp_endpoint),
                              kwargs={"rate": 2000, "connect_wait": 0.3})
    sender.start()
    items = list(source)
    sender.join()
    source.close()
    assert [f.number for f in items] == list(range(50))
    assert np.array_equal(np.stack([f.data for f in items]), frames)


def test_bad_zeromq_settings(free_tcp_endpoint):
    with pytest.raises(CdinnError, match="mode must be"):
        ZmqSource(free_tcp_endpoint, "req")
    with pytest.raises(CdinnError, match="cannot connect"):
        ZmqSource("tcp://127.0.0.1:notaport", "pull")
