"""What flows through the runner: frames from a source, or rejections for input that was not a frame, and the
contract every source keeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

WantedRows = Callable[[tuple[int, int], tuple[float, float] | None], tuple[int, int] | None]
"""What a consumer tells a source it will use of each frame: given a frame's (rows, cols) shape and beam centre
(row, col; None: not known), the rows ``[first, end)`` it needs, or None for the whole frame."""


class Band(NamedTuple):
    """Where a frame's ``data`` lies when its source decoded only the rows a consumer asked for: rows
    ``first_row`` to ``first_row + len(data)`` of a frame of ``shape`` (rows, cols)."""

    first_row: int
    shape: tuple[int, int]


def band_of(data: np.ndarray, shape: tuple[int, int], rows: tuple[int, int] | None) -> Band | None:
    """The :class:`Band` of ``data`` a source decoded for ``rows`` of a frame of ``shape`` (None: it decoded
    the whole frame, asked for rows or not)."""
    return Band(rows[0], shape) if rows is not None and data.shape[0] != shape[0] else None


@dataclass
class Frame:
    """One detector frame: ``data`` is a 2-D array of counts (intensities) or amplitudes as the source
    delivers it; ``number`` the frame number the source assigned; ``arrival`` a ``time.time()`` stamp;
    ``mask`` the detector's bad-pixel mask (True = bad, same shape, shared between frames) and ``centre``
    the beam centre (row, col) in pixels, when the source knows them; ``kind`` what the source declares the
    frame holds ("intensity" or "amplitude"; None: not declared, see
    :func:`cdinn.model.validation.frame_kind`); ``band`` where ``data`` lies in the frame when the source
    decoded only the rows its consumer asked for (``Source.wanted_rows``; None: ``data`` is the whole frame, the
    only kind a source delivers unless asked)."""

    number: int
    data: np.ndarray
    source: str
    arrival: float
    mask: np.ndarray | None = None
    centre: tuple[float, float] | None = None
    kind: str | None = None
    band: Band | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The whole frame's shape (``data``'s unless it is a band of the frame)."""
        return self.band.shape if self.band is not None else self.data.shape


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
    included. The runner reports it as its ``decode`` stage (0 for a source that does not say).

    A source that can decode part of a frame alone (rows of bitshuffle-LZ4 data, whose blocks are compressed
    one by one) has a ``wanted_rows`` attribute, None until a consumer sets it to a :data:`WantedRows`; it then
    decodes the rows asked for and delivers them with their :class:`Band` (the whole frame when the answer is
    None). Rows past the band are never looked at: a corrupt block there goes unnoticed (the blocks before the
    band's end are walked and checked). Only a consumer that asked may receive bands."""

    @property
    def ended_normally(self) -> bool: ...

    @property
    def missed(self) -> int: ...

    def __iter__(self) -> Iterator[Frame | Rejected]: ...

    def close(self) -> None: ...
