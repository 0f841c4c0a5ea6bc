"""DECTRIS streams: messages encoded per the public specification (stream v2: CBOR with RFC 8746 typed
arrays and the tag-56500 compression; stream v1: multipart JSON + blobs), sent over real ZeroMQ sockets on
loopback to the runner's source."""

import cbor2
import numpy as np
import pytest
from dectris_messages import BLOCK, H, W, bslz4, detector_frames, lz4_hdf5, push, v1_messages, v2_messages

from cdinn.host.dectris import (
    END,
    Stream1Decoder,
    Stream2Decoder,
    bslz4_decompress,
    detect_format,
    lz4_hdf5_decompress,
)
from cdinn.host.frames import Band, Frame, Rejected
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


@pytest.mark.parametrize("element_size", [1, 2, 4, 8])
def test_a_span_of_a_bitshuffle_lz4_blob_decodes_to_those_elements_alone(element_size):
    """Any span decodes to the whole blob's elements there: within whole blocks, into the last shorter block and
    the raw trailing elements (bitshuffle's layout; each block is shuffled and compressed alone). A span outside
    the blob, or a block before the span's end that runs past the blob, is refused."""
    rng = np.random.default_rng(element_size)
    for n in (2 * BLOCK, 2 * BLOCK + 21, H * W, 13):  # whole blocks; + a block of 16 and 5 raw; a short block; raw
        a = rng.integers(0, 60, n).astype(f"u{element_size}")
        blob = bslz4(a)
        for first, end in [(0, n), (1, n - 1), (n // 3, n // 2), (n - 1, n), (0, 1), (BLOCK - 3, BLOCK + 3)]:
            if first < end <= n:
                assert bslz4_decompress(blob, element_size, span=(first, end)).tobytes() == a[first:end].tobytes()
    blob = bslz4(rng.integers(0, 60, 3 * BLOCK).astype(f"u{element_size}"))
    with pytest.raises(ValueError, match=r"elements \[5, 4\) asked of a bitshuffle-LZ4 blob"):
        bslz4_decompress(blob, element_size, span=(5, 4))
    with pytest.raises(ValueError, match="does not match its 1 block sizes"):  # the first block cut short
        bslz4_decompress(blob[:40], element_size, span=(0, 8))


def _rows_10_to_30(calls):
    def wanted(shape, centre):
        calls.append((shape, centre))
        return 10, 30

    return wanted


@pytest.mark.parametrize(
    ("fmt", "encoding", "banded"),
    [("v2", "bslz4", True), ("v2", "lz4", False), ("v1", "bs32-lz4<", True), ("v1", "lz4<", False)],
)
def test_decoders_decode_the_rows_their_consumer_asked_for(fmt, encoding, banded):
    """Told the rows its consumer uses (asked with the frame's shape and the series' beam centre), a decoder of
    bitshuffle-LZ4 images decodes those rows alone and says where they lie; other encodings come whole."""
    frames = detector_frames(3, seed=4)
    decode: Stream1Decoder | Stream2Decoder
    if fmt == "v2":
        decode, messages, centre = (
            Stream2Decoder("det"),
            [[m] for m in v2_messages(frames, frames[0] * 0, encoding)],
            (17.0, 21.5),
        )
    else:
        decode, messages, centre = Stream1Decoder("det"), v1_messages(frames, encoding, header=True), (24.0, 20.0)
    calls: list = []
    decode.wanted_rows = _rows_10_to_30(calls)
    items = [item for item in map(decode, messages) if isinstance(item, Frame)]
    assert len(items) == 3 and all(item.shape == (H, W) for item in items)
    for item, frame in zip(items, frames, strict=True):
        if banded:
            assert item.band == Band(10, (H, W)) and np.array_equal(item.data, frame[10:30])
        else:
            assert item.band is None and np.array_equal(item.data, frame)
    assert not banded or calls[0] == ((H, W), centre)  # with the series' beam centre
