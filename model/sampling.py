"""The sampling check: how finely a pattern samples its object, from the pattern alone.

A far-field pattern sampled every ``dq`` is the transform of an object of extent ``w`` pixels of a field of
view ``M`` pixels (the pattern's side); its *oversampling* per axis is ``sigma = M / w``. The intensity's
inverse transform is the object's autocorrelation, of extent ``2 w - 1``, so ``sigma = 2 M / (extent + 1)``
with the extent measured where the autocorrelation exceeds ``threshold`` of its peak (projected on each axis).
On an ``M`` grid this resolves ``sigma >= 2`` (below that the autocorrelation wraps around the grid and
fills it: the estimate is then ``2 M / (M + 1)``, just under 2, a lower bound's ceiling). A detector frame,
sampled far more finely than the networks' grid, is measured at full resolution before binning: binning by
``k`` divides its oversampling by ``k``.

The networks' 32x32 patterns are the transforms of objects in a 32x32 field of view: an object fits their grid
when its oversampling *on that grid* is at least 1, and the training objects span about 1.4-8.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

AUTOCORRELATION_THRESHOLD = 0.05
"""Fraction of the autocorrelation peak that bounds the object's autocorrelation support."""
MIN_OVERSAMPLING = 1.0
"""Below this oversampling on the networks' grid the object does not fit it: such a frame is rejected."""
AUTO_OVERSAMPLING = 1.25
"""``--bin auto`` bins a detector frame by the largest power of 2 that keeps at least this oversampling on the
grid (the smallest the training objects have, by this estimator, is about 1.4)."""


def _neighbour_sum(values: np.ndarray) -> np.ndarray:
    """Sum of each element's four neighbours over the last two axes (zero beyond the edges)."""
    total = np.zeros_like(values)
    total[..., 1:, :] += values[..., :-1, :]
    total[..., :-1, :] += values[..., 1:, :]
    total[..., :, 1:] += values[..., :, :-1]
    total[..., :, :-1] += values[..., :, 1:]
    return total


def fill_from_neighbours(values: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``values`` (..., M, M) with each ``empty`` pixel set to the mean of its non-empty 4-neighbours,
    repeated inwards for wider holes (a frame with no non-empty pixel stays as it is)."""
    values = np.where(empty, 0.0, values)
    empty = empty.copy()
    while empty.any() and not empty.all():
        total = _neighbour_sum(np.where(empty, 0.0, values))
        count = _neighbour_sum((~empty).astype(values.dtype))
        fill = empty & (count > 0)
        if not fill.any():
            break
        values = np.where(fill, total / np.maximum(count, 1), values)
        empty = empty & ~fill
    return values


def oversampling(
    intensity: np.ndarray, mask: np.ndarray | None = None, threshold: float = AUTOCORRELATION_THRESHOLD
) -> np.ndarray:
    """(B, 2) oversampling (rows, columns) of (B, M, M) fftshifted intensities; unmeasured pixels (where
    ``mask`` is True) are filled from their neighbours first (a gap or a beamstop left at 0 would broaden the
    autocorrelation and read as undersampling)."""
    values = np.asarray(intensity, np.float64)
    if mask is not None and mask.any():
        values = fill_from_neighbours(values, np.asarray(mask, bool))
    auto = np.abs(scipy.fft.ifft2(np.fft.ifftshift(values, axes=(-2, -1)), axes=(-2, -1)))
    auto = np.fft.fftshift(auto, axes=(-2, -1))
    above = auto > threshold * auto.max(axis=(-2, -1), keepdims=True)
    size = values.shape[-1]
    extent = np.stack([above.any(axis=2).sum(axis=1), above.any(axis=1).sum(axis=1)], axis=1)
    return 2.0 * size / (extent + 1.0)
