"""What flows through the runner: frames from a source, or rejections for input that was not a frame, and the
contract every source keeps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Frame:
    """One detector frame: ``data`` is a 2-D array of counts (intensities) or amplitudes as the source
    delivers it; ``number`` the frame number the source assigned; ``arrival`` a ``time.time()`` stamp;
    ``mask`` the detector's bad-pixel mask (True = bad, same shape, shared between frames) and ``centre``
    the beam centre (row, col) in pixels, when the source knows them; ``kind`` what the source declares the
    frame holds ("intensity" or "amplitude"; None: not declared, see
    :func:`cdinn.model.validation.frame_kind`)."""

    number: int
    data: np.ndarray
    source: str
    arrival: float
    mask: np.ndarray | None = None
    centre: tuple[float, float] | None = None
    kind: str | None = None


@dataclass
class Rejected:
    """Input the source could not turn into a frame (a corrupt message, an unreadable file)."""

    number: int
    reason: str
    source: str
    arrival: float


class Source(Protocol):
    """What the runner reads frames from (a file, a watched folder, a ZeroMQ stream, a pvAccess channel).

    Iterating yields :class:`Frame` and :class:`Rejected` items until the source ends. Afterwards
    ``ended_normally`` is True only when the source's own end arrived (end of the last file, end of the
    series), never after an idle timeout, a ``stop``, a lost sender or a failure; ``missed`` counts frames the
    source knows were sent but never delivered (lost by a monitor queue, or left in a socket at a stop).
    ``close()`` releases what the source holds; calling it again does nothing.

    A source may also report ``decode_seconds``: the seconds it has spent so far turning what it reads into
    frames (reading files, receiving and decoding messages, decompressing), time spent waiting for data not
    included. The runner reports it as its ``decode`` stage (0 for a source that does not say)."""

    @property
    def ended_normally(self) -> bool: ...

    @property
    def missed(self) -> int: ...

    def __iter__(self) -> Iterator[Frame | Rejected]: ...

    def close(self) -> None: ...
