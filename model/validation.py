"""Checks on user-supplied diffraction frames; each failure is one CdinnError line naming the problem."""

from __future__ import annotations

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID


def bad_frame_reason(frame: np.ndarray, intensity: bool = False) -> str | None:
    """Why a single 2-D frame cannot be reconstructed, or None if it can."""
    if not np.all(np.isfinite(frame)):
        return "contains NaN or Inf"
    if (frame < 0).any():
        return f"has negative {'intensities' if intensity else 'amplitudes'}"
    if not frame.any():
        return "is all zero (empty frame)"
    return None


def validate_frames(data, size: int | None = GRID, intensity: bool = False) -> np.ndarray:
    """Return ``data`` as a float32 (B, size, size) array of amplitudes, or raise CdinnError.

    Accepts (size, size) or (B, size, size) real numbers (``size=None``: any square frame); with
    ``intensity`` the values are intensities (converted to amplitudes by a square root). Rejects NaN/Inf,
    negative values and all-zero frames, naming the first bad frame.
    """
    array = np.asarray(data)
    if array.dtype.kind not in "uif":
        raise CdinnError(f"diffraction data must be real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    expected = (size, size) if size else (array.shape[-1], array.shape[-1])
    if array.ndim != 3 or array.shape[1:] != expected:
        n = size or "M"
        raise CdinnError(f"diffraction data must have shape ({n}, {n}) or (N, {n}, {n}), "
                         f"got {tuple(np.shape(data))}")
    if array.shape[0] == 0:
        raise CdinnError("diffraction data holds no frames")
    array = np.asarray(array, dtype=np.float32)  # no copy when the frames are float32 already
    peak = array.max(axis=(1, 2))
    low = array.min(axis=(1, 2))
    # one pass each for max and min: NaN propagates into both, +-Inf shows in one, negatives in the minimum,
    # an all-zero frame has maximum 0 (with no negatives)
    bad = ~np.isfinite(peak) | ~np.isfinite(low) | (low < 0) | (peak <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise CdinnError(f"frame {i} {bad_frame_reason(array[i], intensity)}")
    return np.sqrt(array) if intensity else array
