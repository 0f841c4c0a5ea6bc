"""What flows through the runner: frames from a source, or rejections for input that was not a frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One detector frame: ``data`` is a 2-D array of counts (intensities) or amplitudes as the source
    delivers it; ``number`` the frame number the source assigned; ``arrival`` a ``time.time()`` stamp;
    ``mask`` the detector's bad-pixel mask (True = bad, same shape, shared between frames) and ``centre``
    the beam centre (row, col) in pixels, when the source knows them."""

    number: int
    data: np.ndarray
    source: str
    arrival: float
    mask: np.ndarray | None = None
    centre: tuple[float, float] | None = None


@dataclass
class Rejected:
    """Input the source could not turn into a frame (a corrupt message, an unreadable file)."""

    number: int
    reason: str
    source: str
    arrival: float
