"""DECTRIS stream messages encoded per the public specifications (stream v2: CBOR with RFC 8746 typed arrays and
the tag-56500 compression; stream v1: multipart JSON + blobs), and a detector stand-in that sends them over a
real ZeroMQ socket: shared by the stream tests and the fuzzing harness's seed corpus. The stand-in also runs as
a process of its own (:func:`push_process`), so that a measurement of the receiver does not share its
interpreter and core with the sender:

    python tests/host/dectris_messages.py ENDPOINT dectris-v2|dectris-v1 FRAMES.npy MASK.npy COUNT ROW COL
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import bitshuffle
import cbor2
import lz4.block
import numpy as np
import zmq

H, W = 48, 40
BLOCK = 2048  # bitshuffle block (elements); 8192 bytes of uint32


def detector_frames(n=5, seed=0):
    return np.random.default_rng(seed).poisson(30.0, (n, H, W)).astype(np.uint32)


def bslz4(array: np.ndarray, header: bool = True) -> bytes:
    blocks = bitshuffle.compress_lz4(np.ascontiguousarray(array).ravel(), BLOCK).tobytes()
    size = array.nbytes.to_bytes(8, "big") + (BLOCK * array.itemsize).to_bytes(4, "big")
    return size + blocks if header else blocks


def lz4_hdf5(raw: bytes, block: int = 4096) -> bytes:
    out = len(raw).to_bytes(8, "big") + block.to_bytes(4, "big")
    for i in range(0, len(raw), block):
        chunk = lz4.block.compress(raw[i : i + block], store_size=False)
        out += len(chunk).to_bytes(4, "big") + chunk
    return out


def v2_array(array: np.ndarray, compression: str | None) -> cbor2.CBORTag:
    raw = array.astype("<u4").tobytes()
    if compression == "bslz4":
        payload = cbor2.CBORTag(56500, ["bslz4", 4, bslz4(array)])
    elif compression == "lz4":
        payload = cbor2.CBORTag(56500, ["lz4", 0, lz4_hdf5(raw)])
    else:
        payload = raw
    return cbor2.CBORTag(40, [list(array.shape), cbor2.CBORTag(70, payload)])  # 70: uint32 little-endian


def v2_messages(frames, mask, compression="bslz4", centre=(17.0, 21.5)) -> list[bytes]:
    """A series' start, image and end messages (CBOR bytes) per the stream v2 specification; ``centre`` is the
    beam centre (row, col)."""
    h, w = frames.shape[1:]
    start = {
        "type": "start",
        "series_id": 3,
        "series_unique_id": "s3",
        "channels": ["threshold_1"],
        "beam_center_x": centre[1],
        "beam_center_y": centre[0],
        "image_dtype": "uint32",
        "image_size_x": w,
        "image_size_y": h,
        "number_of_images": len(frames),
        "pixel_mask": {"threshold_1": v2_array(mask, None)},
    }
    images = [
        {
            "type": "image",
            "series_id": 3,
            "series_unique_id": "s3",
            "image_id": i,
            "real_time": [1, 10_000],
            "data": {"threshold_1": v2_array(f, compression)},
        }
        for i, f in enumerate(frames)
    ]
    end = {"type": "end", "series_id": 3, "series_unique_id": "s3"}
    # DECTRIS detectors send self-described CBOR (tag 55799), which cbor2 decodes into frozen maps
    return [cbor2.dumps(cbor2.CBORTag(55799, m)) for m in [start, *images, end]]


def v1_messages(frames, encoding="bs32-lz4<", header=True, centre=(24.0, 20.0)) -> list[list[bytes]]:
    """A series' multipart messages per the stream v1 specification (beam centre ``centre`` (row, col), one
    masked pixel)."""
    h, w = frames.shape[1:]

    def blob(f):
        if encoding == "bs32-lz4<":
            return bslz4(f, header)
        if encoding == "lz4<":
            return lz4.block.compress(f.astype("<u4").tobytes(), store_size=False)
        return f.astype("<u4").tobytes()

    mask = np.zeros((h, w), "<u4")
    mask[5, 7] = 1
    head = [
        json.dumps({"htype": "dheader-1.0", "series": 9, "header_detail": "all"}).encode(),
        json.dumps({"beam_center_x": centre[1], "beam_center_y": centre[0], "x_pixels_in_detector": w}).encode(),
        json.dumps({"htype": "dpixelmask-1.0", "shape": [w, h], "type": "uint32"}).encode(),
        mask.tobytes(),
    ]
    images = [
        [
            json.dumps({"htype": "dimage-1.0", "series": 9, "frame": i, "hash": ""}).encode(),
            json.dumps(
                {"htype": "dimage_d-1.0", "shape": [w, h], "type": "uint32", "encoding": encoding, "size": len(blob(f))}
            ).encode(),
            blob(f),
            json.dumps({"htype": "dconfig-1.0", "start_time": 0, "stop_time": 1, "real_time": 1}).encode(),
        ]
        for i, f in enumerate(frames)
    ]
    return [head, *images, [json.dumps({"htype": "dseries_end-1.0", "series": 9}).encode()]]


def push(endpoint: str, messages, linger_ms: int = 5000) -> threading.Thread:
    """A detector stand-in: a PUSH socket bound at ``endpoint`` sending the messages (multipart lists or
    single frames); it gives up after 60 s without a receiver, so a test never hangs on it, and drops what the
    receiver has not taken ``linger_ms`` after the last message was queued."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH)
    sock.sndtimeo = 60_000
    sock.bind(endpoint)

    def send():
        try:
            for m in messages:
                sock.send_multipart(m) if isinstance(m, list) else sock.send(m)
        except zmq.Again:
            pass
        sock.close(linger=linger_ms)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def series(fmt: str, frames: np.ndarray, mask: np.ndarray, count: int, centre: tuple[float, float]) -> list:
    """A ``fmt`` series (``dectris-v2`` or ``dectris-v1``) of ``count`` images, ``frames`` sent round-robin,
    between its start (recording ``mask`` for v2 and the beam ``centre``) and its end message."""
    unique = v2_messages(frames, mask, centre=centre) if fmt == "dectris-v2" else v1_messages(frames, centre=centre)
    head, images, end = unique[0], unique[1:-1], unique[-1]
    return [head, *(images[i % len(images)] for i in range(count)), end]


def push_process(
    endpoint: str, fmt: str, frames: np.ndarray, mask: np.ndarray, count: int, centre: tuple[float, float], folder: Path
) -> subprocess.Popen:
    """:func:`push` of a :func:`series` in a process of its own (``frames`` and ``mask`` pass through .npy files
    in ``folder``); wait for it with ``wait()``."""
    np.save(folder / "push_frames.npy", frames)
    np.save(folder / "push_mask.npy", mask)
    args = [
        endpoint,
        fmt,
        str(folder / "push_frames.npy"),
        str(folder / "push_mask.npy"),
        str(count),
        *map(str, centre),
    ]
    return subprocess.Popen([sys.executable, __file__, *args])


if __name__ == "__main__":
    endpoint, fmt, frames_npy, mask_npy, count, row, col = sys.argv[1:]
    messages = series(
        fmt,
        np.load(frames_npy, allow_pickle=False),
        np.load(mask_npy, allow_pickle=False),
        int(count),
        (float(row), float(col)),
    )
    push(endpoint, messages, linger_ms=120_000).join()  # a whole series for a measurement: none dropped
