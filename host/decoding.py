"""The contract every stream message decoder keeps, and cdinn's own stream format.

A decoder (:class:`SeriesDecoder`) turns one message (its ZeroMQ parts) into a :class:`Frame`, a
:class:`Rejected` with the reason, :data:`END` (the series' own end) or None (a message that carries no frame,
e.g. a header). It never raises and never allocates more than its frame limit: every size and shape a message
claims is checked against the payload and the limit before anything is allocated or decompressed, and every
field is validated inside the decoder's error handling, so a bad message is one rejection and the series goes
on. Frame numbers fit the int64 the output stores (:func:`frame_number`).

cdinn's own format (one multipart message per frame, see ``cdinn stream-sim``):

* part 1: UTF-8 JSON header ``{"frame": <int>, "shape": [rows, cols], "dtype": "<numpy dtype str>"}``, and
  optionally ``"kind": "intensity" | "amplitude"`` (what the frame holds, :func:`cdinn.model.validation.frame_kind`);
* part 2: the raw frame bytes, C order, ``rows * cols * itemsize`` long.

A header ``{"end": true}`` (single part) ends the stream for one consumer.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np

from cdinn.host.frames import Frame, Rejected, WantedRows
from cdinn.model.validation import KINDS

END = "end-of-series"
LARGEST_DETECTOR_PIXELS = 4148 * 4362  # DECTRIS EIGER2 XE 16M, the largest detector these streams come from
MAX_FRAME_BYTES = 4 * LARGEST_DETECTOR_PIXELS * 4  # default limit: four of its 32-bit frames (290 MB)
START_MARGIN = 8  # after a start message: at most this many bytes per pixel of the image size it announces


def frame_number(value: object) -> int:
    """A frame number as a message states it: a whole number in [0, 2^63), the int64 the output stores
    (ValueError otherwise; -1, "no number", is what a missing one becomes)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer):
        raise ValueError(f"frame number {value!r} is not a whole number")
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        raise ValueError(f"frame number {value!r} is not a whole number")
    if not 0 <= int(value) < 2**63:
        raise ValueError(f"frame number {int(value)} does not fit a signed 64-bit integer >= 0")
    return int(value)


def check_size(nbytes: int, limit: int, what: str) -> None:
    """ValueError unless a claimed decoded size lies within ``limit`` bytes (checked before allocating)."""
    if not 0 <= nbytes <= limit:
        raise ValueError(f"{what} claims {nbytes} bytes, over the {limit}-byte frame limit (--max-frame-mb)")


def describe(exc: BaseException) -> str:
    """An exception in one line with the cause it wraps (cbor2 wraps what its tag hooks raise)."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    return f"{text} ({describe(cause)})" if cause is not None and cause is not exc else text


class SeriesDecoder:
    """What a decoder remembers of the series: the source's name, the pixel mask, the beam centre and the
    largest frame (bytes) it will decode. Every message goes through :meth:`__call__`, which turns whatever
    goes wrong in decoding it into one :class:`Rejected` with the reason, so one bad message never ends the
    series."""

    format = ""
    label = ""  # the format in words, for rejection reasons

    def __init__(self, source: str, max_frame_bytes: int = MAX_FRAME_BYTES, channel: str | None = None):
        self.source = source
        self.mask: np.ndarray | None = None
        self.centre: tuple[float, float] | None = None
        self.max_frame_bytes = self.limit = max_frame_bytes
        self.channel = channel
        self.wanted_rows: WantedRows | None = None  # the consumer's, through the source (Source's contract)

    def rows_for(self, shape: tuple[int, int]) -> tuple[int, int] | None:
        """The rows ``[first, end)`` of a frame of ``shape`` (with the series' beam centre) the consumer asked
        for; None: the whole frame."""
        return None if self.wanted_rows is None else self.wanted_rows(shape, self.centre)

    def decode(self, parts: list[bytes], now: float):
        raise NotImplementedError

    def __call__(self, parts: list[bytes]):
        now = time.time()
        try:
            return self.decode(parts, now)
        except FrameError as exc:
            return Rejected(exc.frame_number, f"corrupt {self.label} image ({exc})", self.source, now)
        except Exception as exc:  # noqa: BLE001 - any failure of one message is that message's rejection
            return Rejected(-1, f"corrupt {self.label} message ({describe(exc)})", self.source, now)

    def announce(self, rows: object, cols: object) -> None:
        """A start/header message announced the image size: frames may take at most START_MARGIN bytes a pixel
        of it (and never more than ``max_frame_bytes``)."""
        if isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0:
            self.limit = min(self.max_frame_bytes, START_MARGIN * rows * cols)


class FrameError(ValueError):
    """A failure inside an image message that already named its frame number (kept in the rejection); the
    message text starts with the cause's type."""

    def __init__(self, number: int, message: str):
        super().__init__(message)
        self.frame_number = number


class CdinnDecoder(SeriesDecoder):
    """cdinn's own format (see the module docstring)."""

    format = "cdinn"
    label = "cdinn stream"

    def decode(self, parts: list[bytes], now: float):
        header = json.loads(parts[0].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        if header.get("end") is True:
            return END
        number = frame_number(header["frame"]) if "frame" in header else -1
        try:
            shape = header["shape"]
            if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
                raise ValueError(f"shape {shape!r} is not two positive whole numbers")
            dtype = np.dtype(header["dtype"]) if isinstance(header["dtype"], str) else None
            if dtype is None or dtype.kind not in "uif":
                raise ValueError(f"dtype {header['dtype']!r} is not a number type")
            nbytes = shape[0] * shape[1] * dtype.itemsize
            check_size(nbytes, self.limit, f"frame of shape {shape} {dtype}")
            if len(parts) != 2:
                raise ValueError(f"expected 2 message parts, got {len(parts)}")
            if len(parts[1]) != nbytes:
                raise ValueError(f"payload of {len(parts[1])} bytes does not match shape {shape} and dtype {dtype}")
            data = np.frombuffer(parts[1], dtype=dtype).reshape(shape)
            kind = header.get("kind")
            if kind is not None and kind not in KINDS:
                raise ValueError(f"kind {kind!r} is neither intensity nor amplitude")
        except Exception as exc:
            raise FrameError(number, f"{type(exc).__name__}: {exc}") from None
        return Frame(number, data, self.source, now, kind=kind)
