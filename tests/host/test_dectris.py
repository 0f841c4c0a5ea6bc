"""DECTRIS streams: messages encoded per the public specification (stream v2: CBOR with RFC 8746 typed
arrays and the tag-56500 compression; stream v1: multipart JSON + blobs), sent over real ZeroMQ sockets on
loopback to the runner's source."""

import json
import threading

import bitshuffle
import cbor2
import lz4.block
import numpy as np
import pytest
import zmq

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

H, W = 48, 40
BLOCK = 2048  # bitshuffle block (elements); 8192 bytes of uint32


def _frames(n=5, seed=0):
    return np.random.default_rng(seed).poisson(30.0, (n, H, W)).astype(np.uint32)


def _bslz4(array: np.ndarray, header: bool = True) -> bytes:
    blocks = bitshuffle.compress_lz4(np.ascontiguousarray(array).ravel(), BLOCK).tobytes()
    size = array.nbytes.to_bytes(8, "big") + (BLOCK * array.itemsize).to_bytes(4, "big")
    return size + blocks if header else blocks


def _lz4_hdf5(raw: bytes, block: int = 4096) -> bytes:
    out = len(raw).to_bytes(8, "big") + block.to_bytes(4, "big")
    for i in range(0, len(raw), block):
        chunk = lz4.block.compress(raw[i : i + block], store_size=False)
        out += len(chunk).to_bytes(4, "big") + chunk
    return out


def _v2_array(array: np.ndarray, compression: str | None) -> cbor2.CBORTag:
    raw = array.astype("<u4").tobytes()
    if compression == "bslz4":
        payload = cbor2.CBORTag(56500, ["bslz4", 4, _bslz4(array)])
    elif compression == "lz4":
        payload = cbor2.CBORTag(56500, ["lz4", 0, _lz4_hdf5(raw)])
    else:
        payload = raw
    return cbor2.CBORTag(40, [list(array.shape), cbor2.CBORTag(70, payload)])  # 70: uint32 little-endian


def v2_messages(frames, mask, compression="bslz4", centre=(17.0, 21.5)) -> list[bytes]:
    """A series' start, image and end messages (CBOR bytes) per the stream v2 specification; ``centre`` is the
    beam centre (row, col)."""
    h, w = frames.shape[1:]
    start = {"type": "start", "series_id": 3, "series_unique_id": "s3", "channels": ["threshold_1"],
             "beam_center_x": centre[1], "beam_center_y": centre[0], "image_dtype": "uint32", "image_size_x": w,
             "image_size_y": h, "number_of_images": len(frames),
             "pixel_mask": {"threshold_1": _v2_array(mask, None)}}
    images = [{"type": "image", "series_id": 3, "series_unique_id": "s3", "image_id": i,
               "real_time": [1, 10_000], "data": {"threshold_1": _v2_array(f, compression)}}
              for i, f in enumerate(frames)]
    end = {"type": "end", "series_id": 3, "series_unique_id": "s3"}
    return [cbor2.dumps(m) for m in [start, *images, end]]


def v1_messages(frames, encoding="bs32-lz4<", header=True, centre=(24.0, 20.0)) -> list[list[bytes]]:
    """A series' multipart messages per the stream v1 specification (beam centre ``centre`` (row, col), one
    masked pixel)."""
    h, w = frames.shape[1:]

    def blob(f):
        if encoding == "bs32-lz4<":
            return _bslz4(f, header)
        if encoding == "lz4<":
            return lz4.block.compress(f.astype("<u4").tobytes(), store_size=False)
        return f.astype("<u4").tobytes()

    mask = np.zeros((h, w), "<u4")
    mask[5, 7] = 1
    head = [json.dumps({"htype": "dheader-1.0", "series": 9, "header_detail": "all"}).encode(),
            json.dumps({"beam_center_x": centre[1], "beam_center_y": centre[0], "x_pixels_in_detector": w}).encode(),
            json.dumps({"htype": "dpixelmask-1.0", "shape": [w, h], "type": "uint32"}).encode(), mask.tobytes()]
    images = [[json.dumps({"htype": "dimage-1.0", "series": 9, "frame": i, "hash": ""}).encode(),
               json.dumps({"htype": "dimage_d-1.0", "shape": [w, h], "type": "uint32", "encoding": encoding,
                           "size": len(blob(f))}).encode(), blob(f),
               json.dumps({"htype": "dconfig-1.0", "start_time": 0, "stop_time": 1, "real_time": 1}).encode()]
              for i, f in enumerate(frames)]
    return [head, *images, [json.dumps({"htype": "dseries_end-1.0", "series": 9}).encode()]]


def _push(endpoint: str, messages) -> threading.Thread:
    """A detector stand-in: a PUSH socket bound at ``endpoint`` sending the messages (multipart lists or
    single frames)."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(endpoint)

    def send():
        for m in messages:
            sock.send_multipart(m) if isinstance(m, list) else sock.send(m)
        sock.close(linger=5000)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.mark.parametrize("compression", ["bslz4", "lz4", None])
def test_stream_v2_over_zeromq(free_tcp_endpoint, compression):
    frames = _frames()
    mask = np.zeros((H, W), np.uint32)
    mask[2, 3] = 1
    sender = _push(free_tcp_endpoint, v2_messages(frames, mask, compression))
    source = ZmqSource(free_tcp_endpoint, idle_timeout=10)
    items = list(source)  # ends on the end message, not the timeout
    sender.join()
    source.close()
    assert source.format == "dectris-v2"
    assert [f.number for f in items] == list(range(5)) and all(isinstance(f, Frame) for f in items)
    assert all(np.array_equal(f.data, g) for f, g in zip(items, frames, strict=True))
    assert items[0].centre == (17.0, 21.5) and items[0].mask[2, 3] and items[0].mask.sum() == 1


@pytest.mark.parametrize(("encoding", "header"), [("bs32-lz4<", True), ("bs32-lz4<", False), ("lz4<", False),
                                                  ("<", False)])
def test_stream_v1_over_zeromq(free_tcp_endpoint, encoding, header):
    frames = _frames(4, seed=1)
    sender = _push(free_tcp_endpoint, v1_messages(frames, encoding, header))
    source = ZmqSource(free_tcp_endpoint, idle_timeout=10)
    items = list(source)
    sender.join()
    source.close()
    assert source.format == "dectris-v1" and [f.number for f in items] == [0, 1, 2, 3]
    assert all(np.array_equal(f.data, g) for f, g in zip(items, frames, strict=True))
    assert items[0].centre == (24.0, 20.0) and items[0].mask[5, 7]


def test_decompressors_and_format_detection():
    a = _frames(1)[0]
    assert bslz4_decompress(_bslz4(a), 4) == a.tobytes()
    assert bslz4_decompress(_bslz4(a, header=False), 4, expected_bytes=a.nbytes) == a.tobytes()
    assert lz4_hdf5_decompress(_lz4_hdf5(a.tobytes(), 1000)) == a.tobytes()
    v2 = v2_messages(_frames(1), np.zeros((H, W), np.uint32))
    assert detect_format([v2[0]]) == "dectris-v2" and detect_format(v1_messages(_frames(1))[0]) == "dectris-v1"
    assert detect_format([b'{"frame": 1, "shape": [2, 2], "dtype": "<f4"}', b"x" * 16]) == "cdinn"


def test_corrupt_messages_are_rejected_with_a_reason():
    v2 = Stream2Decoder("det")
    assert v2([v2_messages(_frames(1), np.zeros((H, W), np.uint32))[0]]) is None  # the start message
    bad = v2([b"\xa1\x64type\x65image\xff"])
    assert isinstance(bad, Rejected) and "stream v2" in bad.reason
    assert v2([cbor2.dumps({"type": "end"})]) is END
    v1 = Stream1Decoder("det")
    messages = v1_messages(_frames(1))
    image = messages[1]
    broken = v1([image[0], image[1], image[2][:-7], image[3]])
    assert isinstance(broken, Rejected) and broken.number == 0 and "stream v1 image" in broken.reason
    assert v1([b"not json"]).reason.startswith("corrupt stream v1 message")
