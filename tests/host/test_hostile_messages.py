"""Crafted stream messages that once crashed, hung or ended the readout node: each is now one rejection with
its reason, nothing is allocated past the frame limit, and the series goes on. Decoders first, then `cdinn
run` over a real ZeroMQ socket on loopback, where the counts must add up and ``complete`` must say whether the
series' own end arrived."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cbor2
import h5py
import lz4.block
import numpy as np
import pytest
from dectris_messages import H, W, bslz4, detector_frames, lz4_hdf5, push, v1_messages, v2_array, v2_messages

from cdinn.host.decoding import END, MAX_FRAME_BYTES, CdinnDecoder
from cdinn.host.dectris import Stream1Decoder, Stream2Decoder
from cdinn.host.frames import Frame, Rejected
from cdinn.host.sources import ZmqSource
from cdinn.host.stream_sim import END_MESSAGE, frame_message

CDINN = str(Path(sys.executable).with_name("cdinn"))
MASK = np.zeros((H, W), np.uint32)


def _v2_image(image_id, payload) -> bytes:
    """A stream v2 image message whose one channel holds ``payload`` (a CBOR tag) as a uint32 array."""
    array = cbor2.CBORTag(40, [[H, W], cbor2.CBORTag(70, payload)])
    return cbor2.dumps({"type": "image", "series_id": 3, "image_id": image_id, "data": {"threshold_1": array}})


def _claiming_more(blob: bytes, factor: int) -> bytes:
    """A blob with the HDF5-filter header whose stated uncompressed size is ``factor`` times the real one."""
    return (int.from_bytes(blob[:8], "big") * factor).to_bytes(8, "big") + blob[8:]


def _one_gigabyte_of_lz4() -> bytes:
    """An HDF5-framed LZ4 blob of ~4.4 MB that decodes to 1 GiB of zeros."""
    block = 2**16
    chunk = lz4.block.compress(bytes(block), store_size=False)
    return (2**30).to_bytes(8, "big") + block.to_bytes(4, "big") + (len(chunk).to_bytes(4, "big") + chunk) * 2**14


FRAME = detector_frames(1)[0]
V2_HOSTILE = {
    "bslz4 header claims 1000x its bytes": _v2_image(
        1, cbor2.CBORTag(56500, ["bslz4", 4, _claiming_more(bslz4(FRAME), 1000)])
    ),
    "bslz4 stream cut short": _v2_image(2, cbor2.CBORTag(56500, ["bslz4", 4, bslz4(FRAME)[:-40]])),
    "lz4 block size 0": _v2_image(
        3, cbor2.CBORTag(56500, ["lz4", 0, (lambda b: b[:8] + bytes(4) + b[12:])(lz4_hdf5(FRAME.tobytes()))])
    ),
    "4.4 MB of lz4 that decodes to 1 GiB": _v2_image(4, cbor2.CBORTag(56500, ["lz4", 0, _one_gigabyte_of_lz4()])),
    "image_id 10^30": _v2_image(10**30, FRAME.astype("<u4").tobytes()),
    "image_id 'abc'": _v2_image("abc", FRAME.astype("<u4").tobytes()),
    "image_id null": _v2_image(None, FRAME.astype("<u4").tobytes()),
    "unknown compression": _v2_image(5, cbor2.CBORTag(56500, ["zip", 4, b"xx"])),
    "a CBOR list, not a map": cbor2.dumps([1, 2, 3]),
    "CBOR nested 100k deep": b"\x81" * 100_000 + b"\x00",
}


def test_hostile_stream_v2_messages_are_rejected_and_the_series_goes_on():
    decode = Stream2Decoder("det")
    start, good, end = (lambda m: (m[0], m[1], m[-1]))(v2_messages(detector_frames(1), MASK))
    assert decode([start]) is None
    for name, message in V2_HOSTILE.items():
        item = decode([message])
        assert isinstance(item, Rejected) and item.reason.startswith("corrupt stream v2"), name
    assert isinstance(decode([good]), Frame) and decode([end]) is END
    reasons = {name: decode([m]).reason for name, m in V2_HOSTILE.items()}  # after the start: 8 bytes a pixel
    assert "over the 15360-byte frame limit" in reasons["bslz4 header claims 1000x its bytes"]
    assert "does not match its 1 block sizes" in reasons["bslz4 stream cut short"]
    assert "block size of 0" in reasons["lz4 block size 0"]
    unannounced = Stream2Decoder("det")([V2_HOSTILE["4.4 MB of lz4 that decodes to 1 GiB"]]).reason
    assert f"over the {MAX_FRAME_BYTES}-byte frame limit" in unannounced
    assert "does not fit a signed 64-bit" in reasons["image_id 10^30"]
    assert "not a whole number" in reasons["image_id 'abc'"] and "not a whole number" in reasons["image_id null"]


def test_a_start_message_bounds_the_frames_of_its_series_and_may_lack_a_beam_centre():
    decode = Stream2Decoder("det")
    start = dict(cbor2.loads(v2_messages(detector_frames(1), MASK)[0]))
    del start["beam_center_x"], start["beam_center_y"]
    assert decode([cbor2.dumps(start)]) is None and decode.centre is None
    assert decode.limit == 8 * H * W  # at most 8 bytes a pixel of the announced image size
    big = np.zeros((H, 2 * W * 8), np.uint32)  # twice the limit
    array = cbor2.CBORTag(40, [list(big.shape), v2_array(big, "bslz4").value[1]])
    item = decode([cbor2.dumps({"type": "image", "image_id": 7, "data": {"threshold_1": array}})])
    assert isinstance(item, Rejected) and "frame limit" in item.reason and item.number == 7


def test_the_channel_of_multi_threshold_images_is_chosen_by_name():
    frames = detector_frames(2)
    message = dict(cbor2.loads(v2_messages(frames[:1], MASK, compression=None)[1]))
    message["data"] = {"threshold_1": v2_array(frames[0], None), "threshold_2": v2_array(frames[1], None)}
    assert np.array_equal(Stream2Decoder("det")([cbor2.dumps(message)]).data, frames[0])
    assert np.array_equal(Stream2Decoder("det", channel="threshold_2")([cbor2.dumps(message)]).data, frames[1])
    missing = Stream2Decoder("det", channel="threshold_9")([cbor2.dumps(message)])
    assert isinstance(missing, Rejected) and "no channel 'threshold_9'" in missing.reason


def _v1_image(frame: int | str, info: dict, blob: bytes) -> list[bytes]:
    return [
        json.dumps({"htype": "dimage-1.0", "series": 9, "frame": frame}).encode(),
        json.dumps(info).encode(),
        blob,
        b"{}",
    ]


V1_HOSTILE = {
    "dimage_d claims 32768x32768": _v1_image(
        1, {"shape": [32768, 32768], "type": "uint32", "encoding": "bs32-lz4<"}, bslz4(FRAME)
    ),
    "bslz4 header claims 1000x": _v1_image(
        2, {"shape": [W, H], "type": "uint32", "encoding": "bs32-lz4<"}, _claiming_more(bslz4(FRAME), 1000)
    ),
    "frame 10^30": _v1_image(10**30, {"shape": [W, H], "type": "uint32"}, FRAME.tobytes()),
    "negative shape": _v1_image(3, {"shape": [-W, H], "type": "uint32"}, FRAME.tobytes()),
    "object pixel type": _v1_image(4, {"shape": [W, H], "type": "object"}, FRAME.tobytes()),
    "htype a number": [b'{"htype": 5}'],
    "htype missing": [b'{"frame": 1}'],
    "image without its blob": _v1_image(5, {"shape": [W, H], "type": "uint32"}, FRAME.tobytes())[:2],
}


def test_hostile_stream_v1_messages_are_rejected_and_the_series_goes_on():
    decode = Stream1Decoder("det")
    head, good, *_, end = v1_messages(detector_frames(1))
    assert decode(head) is None
    for name, message in V1_HOSTILE.items():
        item = decode(message)
        assert isinstance(item, Rejected) and item.reason.startswith("corrupt stream v1"), name
    assert isinstance(decode(good), Frame) and decode(end) is END
    assert "frame limit" in Stream1Decoder("det")(V1_HOSTILE["dimage_d claims 32768x32768"]).reason


OWN_HOSTILE = {
    "header nested 100k deep": [b"[" * 100_000 + b"]" * 100_000],
    "frame Infinity": [b'{"frame": Infinity, "shape": [2, 2], "dtype": "<u2"}', bytes(8)],
    "frame 10^30": [json.dumps({"frame": 10**30, "shape": [2, 2], "dtype": "<u2"}).encode(), bytes(8)],
    "shape 10^6 x 10^6": [json.dumps({"frame": 1, "shape": [10**6, 10**6], "dtype": "<u4"}).encode(), bytes(8)],
    "not UTF-8": [b"\xff\xfe", bytes(8)],
}


def test_hostile_own_format_messages_are_rejected_and_the_stream_goes_on():
    decode = CdinnDecoder("own")
    for name, message in OWN_HOSTILE.items():
        item = decode(message)
        assert isinstance(item, Rejected) and item.reason.startswith("corrupt cdinn stream"), name
    assert isinstance(decode(frame_message(3, FRAME)), Frame) and decode(END_MESSAGE) is END


def _cdinn_run(endpoint: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            CDINN,
            "run",
            "--source",
            endpoint,
            "--out",
            str(out),
            "--net",
            "edge",
            "--quiet",
            "--idle-timeout",
            "20",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _counts(path: Path) -> tuple[dict, bool]:
    with h5py.File(path) as fh:
        return json.loads(fh.attrs["counts"]), bool(fh.attrs["complete"])


def test_cdinn_run_survives_a_hostile_series_and_counts_every_message(tmp_path, free_tcp_endpoint):
    start, *images, end = v2_messages(detector_frames(4, seed=2), MASK)
    series = [start, images[0], *V2_HOSTILE.values(), images[1], images[2], images[3], end]
    run = _cdinn_run(free_tcp_endpoint, tmp_path / "run.h5")
    sender = push(free_tcp_endpoint, series)
    stdout, stderr = run.communicate(timeout=120)
    sender.join()
    assert run.returncode == 0, stderr
    counts, complete = _counts(tmp_path / "run.h5")
    assert complete and counts["written"] == 4 and counts["rejected"] == len(V2_HOSTILE)
    assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("extra", "status"), [((), 2), (("--allow-partial",), 0)])
def test_a_series_cut_off_is_incomplete_and_exits_non_zero_unless_partial_runs_are_allowed(
    tmp_path, free_tcp_endpoint, extra, status
):
    start, *images, _end = v2_messages(detector_frames(3, seed=3), MASK)
    out = tmp_path / "cut.h5"
    run = subprocess.Popen(
        [
            CDINN,
            "run",
            "--source",
            free_tcp_endpoint,
            "--out",
            str(out),
            "--net",
            "edge",
            "--quiet",
            "--idle-timeout",
            "8",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sender = push(free_tcp_endpoint, [start, *images])  # then the sender is gone: no end message
    _, stderr = run.communicate(timeout=120)
    sender.join()
    assert run.returncode == status, stderr
    counts, complete = _counts(out)
    assert not complete and counts["written"] == 3
    if status:
        assert "did not reach its own end" in stderr.strip().splitlines()[-1]


def test_sigint_stops_the_run_incomplete_with_every_frame_counted(tmp_path, free_tcp_endpoint):
    start, *images, _end = v2_messages(detector_frames(5, seed=4), MASK)
    run = _cdinn_run(free_tcp_endpoint, tmp_path / "stopped.h5")
    sender = push(free_tcp_endpoint, [start, *images])
    sender.join()
    out = tmp_path / "stopped.h5"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _written(out) < 5:
        time.sleep(0.2)
    run.send_signal(2)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2 and "did not reach its own end" in stderr
    counts, complete = _counts(out)
    assert not complete and counts["written"] == 5
    assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"]


def _written(path: Path) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as fh:
            return fh["amplitude"].shape[0]
    except (OSError, KeyError):
        return 0


def test_frames_left_in_the_socket_at_a_stop_are_counted_as_missed(free_tcp_endpoint):
    frames = detector_frames(12, seed=5)
    sender = push(free_tcp_endpoint, [frame_message(i, f) for i, f in enumerate(frames)])
    stop = threading.Event()
    source = ZmqSource(free_tcp_endpoint, stop=stop)
    sender.join()
    time.sleep(0.5)  # every message has reached this side's socket
    taken = []
    for item in source:
        taken.append(item)
        if len(taken) == 4:
            stop.set()
            break
    source.close()
    assert len(taken) == 4 and source.missed == 8 and not source.ended_normally


@pytest.mark.parametrize("claim", [2**31, 2**40])
def test_the_frame_limit_is_configurable(claim):
    blob = (claim).to_bytes(8, "big") + (8192).to_bytes(4, "big")
    limited = Stream2Decoder("det", max_frame_bytes=2**20)
    item = limited([_v2_image(1, cbor2.CBORTag(56500, ["bslz4", 4, blob]))])
    assert isinstance(item, Rejected) and "over the 1048576-byte frame limit" in item.reason
