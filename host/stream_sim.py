"""``cdinn stream-sim``: replay frames onto a ZeroMQ PUSH or PUB socket at a given rate, in the message
format :mod:`cdinn.host.sources` documents, ending with one end-of-stream marker per consumer."""

from __future__ import annotations

import json
import time

import numpy as np

from cdinn.errors import CdinnError


def frame_message(number: int, frame: np.ndarray, kind: str | None = None) -> list[bytes]:
    """The two-part message for one frame; ``kind`` (intensity or amplitude) when the sender knows it."""
    frame = np.ascontiguousarray(frame)
    header = {"frame": int(number), "shape": list(frame.shape), "dtype": frame.dtype.str}
    if kind is not None:
        header["kind"] = kind
    return [json.dumps(header).encode(), frame.tobytes()]


END_MESSAGE = [json.dumps({"end": True}).encode()]


def stream(
    frames: np.ndarray,
    endpoint: str,
    rate: float | None = None,
    mode: str = "push",
    consumers: int = 1,
    connect_wait: float = 0.5,
    first_number: int = 0,
    kind: str | None = None,
) -> dict:
    """Send ``frames`` (N, rows, cols) at ``rate`` frames/s (None: as fast as possible), declared as ``kind``
    (intensity or amplitude; None: undeclared); returns counts.

    The socket binds ``endpoint``; ``connect_wait`` seconds are left for consumers to connect first (PUB
    drops messages sent before a subscriber joins).
    """
    import zmq

    if mode not in ("push", "pub"):
        raise CdinnError(f"stream mode must be 'push' or 'pub', got {mode!r}")
    ctx: zmq.Context = zmq.Context.instance()
    sock = ctx.socket(zmq.PUSH if mode == "push" else zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.LINGER, 10_000)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        raise CdinnError(f"cannot bind ZeroMQ socket {endpoint}: {exc}") from None
    try:
        time.sleep(connect_wait)
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            sock.send_multipart(frame_message(first_number + i, frame, kind))
        for _ in range(consumers):
            sock.send_multipart(END_MESSAGE)
        elapsed = time.perf_counter() - start
    finally:
        sock.close()
    return {"sent": len(frames), "seconds": elapsed, "rate": len(frames) / elapsed if elapsed else 0.0}
