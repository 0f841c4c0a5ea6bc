"""Checks on user-supplied diffraction frames; each failure is one CdinnError line naming the problem."""

from __future__ import annotations

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID

NON_FINITE = "contains NaN or Inf"
ALL_MASKED = "has no measured pixel (all masked)"
EMPTY = "is all zero (empty frame)"
"""The reasons a frame is rejected, worded once for every path (each message reads "frame <reason>")."""


KINDS = ("intensity", "amplitude")
"""What a frame holds: intensities |FT|^2 (detector counts) or amplitudes |FT|."""
KIND_ATTR = "quantity"
"""The dataset attribute that declares its frames' kind (``cdinn simulate`` writes it)."""


def frame_kind(option: str, declared: str | None, dtype: np.dtype) -> str:
    """The kind of a frame, one rule for every command: ``option`` ("auto", or a kind the user gave), the
    kind its source declares (a dataset's :data:`KIND_ATTR` attribute, detector data and detector streams:
    intensity; None: not declared) and its number type. A kind given contradicting a declared one is an error;
    undeclared, ``auto`` reads integers as counts (intensity) and real numbers as amplitudes."""
    if option not in ("auto", *KINDS):
        raise CdinnError(f"input kind must be auto, intensity or amplitude, got {option!r}")
    if declared is not None and declared not in KINDS:
        raise CdinnError(f"the input declares its frames as {declared!r}; cdinn knows intensity and amplitude")
    if option != "auto":
        if declared is not None and declared != option:
            raise CdinnError(
                f"the input declares its frames as {declared} but --input-kind {option} was given; "
                "drop the option or correct the file's attribute"
            )
        return option
    if declared is not None:
        return declared
    return "intensity" if np.dtype(dtype).kind in "iu" else "amplitude"


def negative(intensity: bool) -> str:
    """The reason for a frame with negative values."""
    return f"has negative {'intensities' if intensity else 'amplitudes'}"


def bad_frame_reason(frame: np.ndarray, intensity: bool = False) -> str | None:
    """Why a single 2-D frame cannot be reconstructed, or None if it can."""
    if not np.all(np.isfinite(frame)):
        return NON_FINITE
    if (frame < 0).any():
        return negative(intensity)
    if not frame.any():
        return EMPTY
    return None


def frame_mask(data: np.ndarray, mask=None) -> np.ndarray | None:
    """(B, M, M) bool, True where a pixel of ``data`` (B, M, M) has no measurement: flagged in ``mask``
    ((M, M) for every frame or (B, M, M); nonzero = not measured, the NXmx ``pixel_mask`` sense) or holding
    the unsigned type's maximum (the gap, dead and saturated sentinel of counting detectors). None when every
    pixel is measured."""
    missing = None
    if data.dtype.kind == "u":
        sentinel = data == np.iinfo(data.dtype).max
        missing = sentinel if sentinel.any() else None
    if mask is not None:
        flags = np.asarray(mask)
        if flags.dtype.kind not in "biuf" or flags.shape not in (data.shape, data.shape[1:]):
            raise CdinnError(
                f"mask must be booleans of shape {data.shape[1:]} or {data.shape}, got {flags.dtype} {flags.shape}"
            )
        flags = np.broadcast_to(flags != 0, data.shape)
        missing = flags if missing is None else missing | flags
    return missing


def validate_frames(
    data, size: int | None = GRID, intensity: bool = False, mask=None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``data`` as a float32 (B, size, size) array of amplitudes (0 at unmeasured pixels) and its
    (B, size, size) bool mask (True = no measurement, see :func:`frame_mask`; None when every pixel is
    measured), or raise CdinnError.

    Accepts (size, size) or (B, size, size) real numbers (``size=None``: any square frame); with
    ``intensity`` the values are intensities (converted to amplitudes by a square root). Rejects NaN/Inf,
    negative values, all-zero and fully masked frames, naming the first bad frame; unmeasured pixels may hold
    anything.
    """
    array = np.asarray(data)
    if array.dtype.kind not in "uif":
        raise CdinnError(f"diffraction data must be real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    expected = (size, size) if size else (array.shape[-1], array.shape[-1])
    if array.ndim != 3 or array.shape[1:] != expected:
        n = size or "M"
        raise CdinnError(f"diffraction data must have shape ({n}, {n}) or (N, {n}, {n}), got {tuple(np.shape(data))}")
    if array.shape[0] == 0:
        raise CdinnError("diffraction data holds no frames")
    missing = frame_mask(array, mask)
    array = np.asarray(array, dtype=np.float32)  # no copy when the frames are float32 already
    if missing is not None:
        array = np.where(missing, np.float32(0), array)
    reasons = frame_reasons(array, intensity, missing)
    bad = next((i for i, reason in enumerate(reasons) if reason), None)
    if bad is not None:
        raise CdinnError(f"frame {bad} {reasons[bad]}")
    return (np.sqrt(array) if intensity else array), missing


def frame_reasons(array: np.ndarray, intensity: bool, missing: np.ndarray | None) -> list[str | None]:
    """Why each frame of (B, M, M) float frames (0 at the ``missing`` pixels) cannot be reconstructed, or None
    where it can: the one rule of every batch path (the API raises on the first; ``cdinn reconstruct`` and the
    Dask path reject the frame with its reason and keep the others, as ``cdinn run`` does)."""
    peak = array.max(axis=(1, 2))
    low = array.min(axis=(1, 2))
    # one pass each for max and min: NaN propagates into both, +-Inf shows in one, negatives in the minimum,
    # an all-zero frame has maximum 0 (with no negatives)
    bad = ~np.isfinite(peak) | ~np.isfinite(low) | (low < 0) | (peak <= 0)
    full = np.asarray(missing.all(axis=(1, 2)) if missing is not None else np.zeros(len(array), bool))
    return [
        (ALL_MASKED if full[i] else bad_frame_reason(array[i], intensity) if bad[i] else None)
        for i in range(len(array))
    ]
