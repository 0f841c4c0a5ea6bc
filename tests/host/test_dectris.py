"""DECTRIS streams: messages encoded per the public specification (stream v2: CBOR with RFC 8746 typed
arrays and the tag-56500 compression; stream v1: multipart JSON + blobs), sent over real ZeroMQ sockets on
loopback to the runner's source."""

import cbor2
import numpy as np
import pytest
from dectris_messages import H, W, bslz4, detector_frames, lz4_hdf5, push, v1_messages, v2_messages

from cdinn.host.dectris import (
    END,
    Stream1Decoder,
    Stream2Decoder,
    bslz4_decompress,
    detect_format,
    lz4_hdf5_decompress,
)
from cdinn.host.frames import Frame, Rejected
from cdinn.host.sources import ZmqSource


@pytest.mark.parametrize("compression", ["bslz4", "lz4", None])
def test_stream_v2_over_zeromq(free_tcp_endpoint, compression):
    frames = detector_frames()
    mask = np.zeros((H, W), np.uint32)
    mask[2, 3] = 1
    sender = push(free_tcp_endpoint, v2_messages(frames, mask, compression))
    source = ZmqSource(free_tcp_endpoint, idle_timeout=10)
    items = list(source)  # ends on the end message, not the timeout
    sender.join()
    source.close()
    assert source.format == "dectris-v2"
    assert [f.number for f in items] == list(range(5)) and all(isinstance(f, Frame) for f in items)
    assert all(np.array_equal(f.data, g) for f, g in zip(items, frames, strict=True))
    assert items[0].centre == (17.0, 21.5) and items[0].mask[2, 3] and items[0].mask.sum() == 1


@pytest.mark.parametrize(
    ("encoding", "header"), [("bs32-lz4<", True), ("bs32-lz4<", False), ("lz4<", False), ("<", False)]
)
def test_stream_v1_over_zeromq(free_tcp_endpoint, encoding, header):
    frames = detector_frames(4, seed=1)
    sender = push(free_tcp_endpoint, v1_messages(frames, encoding, header))
    source = ZmqSource(free_tcp_endpoint, idle_timeout=10)
    items = list(source)
    sender.join()
    source.close()
    assert source.format == "dectris-v1" and [f.number for f in items] == [0, 1, 2, 3]
    assert all(np.array_equal(f.data, g) for f, g in zip(items, frames, strict=True))
    assert items[0].centre == (24.0, 20.0) and items[0].mask[5, 7]


def test_decompressors_and_format_detection():
    a = detector_frames(1)[0]
    assert bslz4_decompress(bslz4(a), 4).tobytes() == a.tobytes()
    assert bslz4_decompress(bslz4(a, header=False), 4, expected_bytes=a.nbytes).tobytes() == a.tobytes()
    assert lz4_hdf5_decompress(lz4_hdf5(a.tobytes(), 1000)) == a.tobytes()
    corrupt = (64).to_bytes(8, "big") + (64).to_bytes(4, "big") + (8).to_bytes(4, "big") + b"\x95" * 8
    with pytest.raises(ValueError, match="LZ4 block at byte 0 is corrupt"):  # lz4's own error is no ValueError
        lz4_hdf5_decompress(corrupt)
    v2 = v2_messages(detector_frames(1), np.zeros((H, W), np.uint32))
    assert detect_format([v2[0]]) == "dectris-v2" and detect_format(v1_messages(detector_frames(1))[0]) == "dectris-v1"
    assert detect_format([b'{"frame": 1, "shape": [2, 2], "dtype": "<f4"}', b"x" * 16]) == "cdinn"


def test_corrupt_messages_are_rejected_with_a_reason():
    v2 = Stream2Decoder("det")
    assert v2([v2_messages(detector_frames(1), np.zeros((H, W), np.uint32))[0]]) is None  # the start message
    bad = v2([b"\xa1\x64type\x65image\xff"])
    assert isinstance(bad, Rejected) and "stream v2" in bad.reason
    assert v2([cbor2.dumps({"type": "end"})]) is END
    v1 = Stream1Decoder("det")
    messages = v1_messages(detector_frames(1))
    image = messages[1]
    broken = v1([image[0], image[1], image[2][:-7], image[3]])
    assert isinstance(broken, Rejected) and broken.number == 0 and "stream v1 image" in broken.reason
    assert v1([b"not json"]).reason.startswith("corrupt stream v1 message")
