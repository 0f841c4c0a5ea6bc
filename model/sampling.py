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

from functools import lru_cache

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
    repeated inwards for wider holes (a frame with no non-empty pixel stays as it is). An ``empty`` shared by
    every frame (leading axes of length 1, a detector's mask) is filled by a plan made once per mask: the
    same numbers, computed at the empty pixels only."""
    values = np.where(empty, 0.0, values)
    if empty.ndim >= 2 and all(n == 1 for n in empty.shape[:-2]) and values.dtype.kind == "f":
        flat = values.reshape(*values.shape[:-2], -1)
        for targets, neighbours, weights, count in _fill_plan(np.ascontiguousarray(empty).reshape(empty.shape[-2:])):
            total = flat[..., neighbours[0]] * weights[0]
            for j in range(1, 4):
                total += flat[..., neighbours[j]] * weights[j]
            flat[..., targets] = total / count
        return values
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


def _fill_plan(empty: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`fill_from_neighbours`'s rounds for one (M, N) mask: per round the flat indices it fills (K,),
    their neighbours' flat indices (4, K; above, below, left, right, as :func:`_neighbour_sum` adds them), 1.0
    where that neighbour holds a value by then and 0.0 where not (or off the grid), and their count (K,)."""
    return _plan_cached(empty.shape, np.packbits(empty).tobytes())


@lru_cache(maxsize=32)
def _plan_cached(shape: tuple[int, int], packed: bytes) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The rounds, found breadth first: after the first, only the empty pixels next to those the last round
    filled can be filled next (any other with a filled neighbour would have been filled already), so each round
    looks at its candidates alone, not at the whole grid (a wide gap, or a window reaching off the detector,
    takes hundreds of rounds)."""
    rows, cols = shape
    empty = np.unpackbits(np.frombuffer(packed, np.uint8), count=rows * cols).astype(bool)
    if empty.all():
        return []
    plan = []
    candidates = np.flatnonzero(empty)  # in increasing order, every round
    while len(candidates):
        r, c = np.divmod(candidates, cols)
        steps = ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))  # above, below, left, right: _neighbour_sum's
        on_grid = np.stack([(0 <= i) & (i < rows) & (0 <= j) & (j < cols) for i, j in steps])
        neighbour = np.stack([np.clip(i, 0, rows - 1) * cols + np.clip(j, 0, cols - 1) for i, j in steps])
        weights = (on_grid & ~empty[neighbour]).astype(np.float64)
        count = weights.sum(axis=0)
        fill = count > 0
        if not fill.any():
            break
        targets = candidates[fill]
        plan.append((targets, neighbour[:, fill], weights[:, fill], count[fill]))
        empty[targets] = False
        around = neighbour[:, fill][on_grid[:, fill]]
        candidates = np.unique(around[empty[around]])
    return plan


def oversampling(
    intensity: np.ndarray, mask: np.ndarray | None = None, threshold: float = AUTOCORRELATION_THRESHOLD
) -> np.ndarray:
    """(B, 2) oversampling (rows, columns) of (B, M, M) fftshifted intensities; unmeasured pixels (where
    ``mask`` is True) are filled from their neighbours first (a gap or a beamstop left at 0 would broaden the
    autocorrelation and read as undersampling)."""
    values = np.asarray(intensity, np.float32)  # (the threshold is far above float32's resolution)
    if mask is not None and mask.any():
        values = fill_from_neighbours(values, np.asarray(mask, bool))
    # |autocorrelation|^2 up to a scale: the squared magnitude of the intensity's transform, whose zero shift
    # sits at pixel (0, 0) (the input's centring only changes signs); it is point-symmetric (the intensity is
    # real), so the real transform's columns 0..M/2 hold it all
    spectrum = scipy.fft.rfft2(values)
    power = np.square(spectrum.real) + np.square(spectrum.imag)
    above = power > threshold**2 * power.max(axis=(-2, -1), keepdims=True)
    size = values.shape[-1]
    rows = above.any(axis=-1)
    rows |= np.roll(rows[..., ::-1], 1, axis=-1)  # row r holds what the missing columns hold in row -r
    cols = above.any(axis=-2)  # columns c and -c hold the same; 0 and M/2 are their own mirror
    extent_cols = 2 * cols.sum(axis=-1) - cols[..., 0] - cols[..., size // 2]
    extent = np.stack([rows.sum(axis=-1), extent_cols], axis=1)
    return 2.0 * size / (extent + 1.0)
