"""The runner's front ends: the same batches in threads and in a process of their own, real files and sockets,
a real child process (killed for real where the test says so)."""

import os
import signal
import threading

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.host import sources
from cdinn.host.backends import get_backend
from cdinn.host.front import ProcessFront, ThreadFront, open_front
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.host.runner import Runner
from cdinn.host.sources import SourceConfig
from cdinn.host.writer import RunWriter
from tests.host.test_hdf5_frames import SENTINEL, _detector_frames, _gaps, write_eiger
from tests.host.test_runner import _intensities, _stream_sim

PRE = PreprocessConfig(input_kind="intensity")


def _drain(front):
    """Every batch of a started front end, then how it ended."""
    front.start()
    batches = list(front)
    return batches, front.finish()


def test_process_and_thread_fronts_deliver_the_same_batches(tmp_path, patterns):
    """An NXmx master with a pixel mask, a sentinel pixel and a frame of NaN: the frames, rejections, patterns,
    masks, oversampling and the preprocessing as applied are the same whichever front end prepared them."""
    frames = _detector_frames(patterns).astype(np.float32)
    frames[3, 40, 40] = SENTINEL
    frames[7] = np.nan
    master = write_eiger(tmp_path / "eiger", frames, per_file=10, mask=_gaps())
    got = {
        kind: _drain(open_front(kind, str(master), SourceConfig(), PRE, max_batch=5)) for kind in ("thread", "process")
    }
    (thread, thread_end), (process, process_end) = got["thread"], got["process"]
    assert thread_end == process_end and process_end.ended_normally and process_end.error is None
    assert process_end.missed == 0 and process_end.applied["binning"] == 8  # --bin auto, as the first frame chose

    def kept(batches):  # all but the arrival times
        return [(f.number, f.source) for b in batches for f in b.frames]

    def rejected(batches):
        return [(r.number, r.reason, r.source) for b in batches for r in b.rejected]

    assert kept(process) == kept(thread) and rejected(process) == rejected(thread)
    reasons = {number: reason for number, reason, _ in rejected(process)}
    assert "NaN" in reasons[8] and "undersampled" in reasons[4]  # a bad frame, and one whose object does not fit
    assert sum(b.received for b in process) == len(frames)
    for name in ("patterns", "mask", "oversampling", "centre_offset"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(b, name) for b in process]), np.concatenate([getattr(b, name) for b in thread])
        )
    assert np.concatenate([b.mask for b in process]).any()  # the chip gap reached the grid


def test_the_front_has_its_source_decode_the_crop_window_rows_alone_with_the_same_batches(tmp_path, patterns):
    """Once the crop window is known (binning 4 around the master's beam centre), the file source decodes the
    window's rows of each bitshuffle-LZ4 chunk alone; the batches (patterns, masks, sentinel and chip-gap
    handling, oversampling, centre offsets, rejections) are those of whole frames."""
    frames = _detector_frames(patterns)
    frames[5, 100, 140] = SENTINEL
    frames[9] = 0  # an empty frame: rejected either way
    master = write_eiger(tmp_path / "eiger", frames, per_file=10, mask=_gaps())
    pre = PreprocessConfig(input_kind="intensity", binning=4)
    asked = ThreadFront(sources.FileSource(str(master)), Preprocessor(pre), max_batch=5)
    rows = []

    def window_rows(shape, centre):
        rows.append(asked.preprocess.window_rows(shape, centre))
        return rows[-1]

    assert asked.source.wanted_rows == asked.preprocess.window_rows  # the front asked
    asked.source.wanted_rows = window_rows
    whole = ThreadFront(sources.FileSource(str(master)), Preprocessor(pre), max_batch=5)
    whole.source.wanted_rows = None  # a source not asked: whole frames
    (got, got_end), (expected, expected_end) = _drain(asked), _drain(whole)
    assert rows == [(56, 184)] * len(frames)  # binning 4 was set: the 128 rows around row 120, for every frame
    assert got_end == expected_end and got_end.ended_normally
    assert [r.reason for b in got for r in b.rejected] == [r.reason for b in expected for r in b.rejected] != []
    for name in ("patterns", "mask", "oversampling", "centre_offset"):
        np.testing.assert_array_equal(
            np.concatenate([getattr(b, name) for b in got]), np.concatenate([getattr(b, name) for b in expected])
        )


def test_the_reader_holds_at_most_its_bytes_of_frames_queued(tmp_path):
    """4 MB frames (1024x1024 uint32, LZ4 chunks: decoded whole) with room for 10 MB queued: while nobody takes
    the batches, the reader stops after what the queue, the batch in preparation and the two ready ones hold,
    far fewer than its 8 batches' items (32) would let it; then every frame still arrives."""
    import h5py
    import hdf5plugin

    frames = np.random.default_rng(3).poisson(2.0, (24, 1024, 1024)).astype(np.uint32)
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as fh:
        fh.create_dataset("entry/data/data", data=frames, chunks=(1, 1024, 1024), **hdf5plugin.LZ4())
    source = sources.FileSource(str(path))
    front = ThreadFront(source, Preprocessor(PreprocessConfig(input_kind="intensity", binning=4)), 4, None, 10 << 20)
    front.start()
    for _ in range(100):  # until the reader stops for room (the preprocessing waits for the batches' taker)
        read = source._reader.next_number
        threading.Event().wait(0.1)
        if read == source._reader.next_number and read:
            break
    assert front._queued_bytes <= 10 << 20 and read <= 2 * 4 + 4 + 2 + 1  # ready, in preparation, queued, read
    assert sum(batch.received for batch in front) == 24 and front.finish().ended_normally
    assert front._queued_bytes == 0


def test_sources_only_this_process_can_open_refuse_the_process_front(monkeypatch):
    with pytest.raises(CdinnError, match="use --front thread"):
        ProcessFront("inproc://frames", SourceConfig(), PRE)
    monkeypatch.setitem(sources.SCHEMES, "mem://", lambda spec, cfg, stop: None)
    with pytest.raises(CdinnError, match="use --front thread"):
        ProcessFront("mem://x", SourceConfig(), PRE)


def test_a_bad_setting_is_one_line_from_the_process(tmp_path):
    np.save(tmp_path / "frames.npy", np.ones((2, 32, 32), np.float32))
    front = ProcessFront(str(tmp_path / "frames.npy"), SourceConfig(), PreprocessConfig(mask=str(tmp_path / "no.npy")))
    with pytest.raises(CdinnError) as raised:
        front.start()
    assert "no.npy" in str(raised.value) and "\n" not in str(raised.value)
    assert front._process.poll() is not None  # the child ended


@pytest.mark.slow
def test_a_front_end_process_that_dies_ends_the_run_keeping_what_was_written(tmp_path, patterns, free_tcp_endpoint):
    """The child reading a live stream is killed (SIGKILL, as a decompressor's crash would end it): the run ends
    as a failed source, every frame written before stays, and the counts still add up."""
    np.save(tmp_path / "frames.npy", _intensities(patterns))
    front = open_front("process", free_tcp_endpoint, SourceConfig(idle_timeout=20), PRE, max_batch=8)
    front.start()
    backend = get_backend("onnx", net="edge")
    out = tmp_path / "out.h5"
    runner = Runner(front, backend, RunWriter(out, backend.provenance(), PRE.as_dict()), progress=False)
    sender = _stream_sim(tmp_path / "frames.npy", free_tcp_endpoint, rate=200, count=4000)

    def kill_after_30_frames():
        while runner.stats.written < 30:
            threading.Event().wait(0.05)
        os.kill(front._process.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_30_frames, daemon=True)
    killer.start()
    try:
        with pytest.raises(CdinnError, match=r"front-end process ended unexpectedly \(exit code -9\)"):
            runner.run()
    finally:
        sender.kill()
        sender.wait()
    from cdinn.host import output

    written = output.read(str(out))
    counts = written["attrs"]["counts"]
    assert not written["attrs"]["complete"] and counts["written"] >= 30
    assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"]
    assert written["frame_number"].tolist() == list(range(counts["written"]))
