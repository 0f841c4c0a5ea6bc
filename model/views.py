"""The eight views of a pattern: the symmetries of the square grid, under which a far-field pattern and its
object transform together.

Flipping or transposing an object flips or transposes its far-field pattern the same way (about the zero
frequency, pixel ``M // 2`` of an M x M fftshifted pattern), so each view of a measured pattern is the
pattern of the same object seen in that view. The networks are not exactly equivariant under these
symmetries: shown a view, they return a slightly different estimate, and once mapped back, each estimate is
as valid an answer as the first. :func:`cdinn.inversion.network_pass` keeps, per frame, the one whose fit to
the measured pattern is best (``views``, :data:`VIEW_COUNTS`).

View ``k`` (0-7) is ``flip_cols ** (k & 1)``, then ``flip_rows ** (k >> 1 & 1)``, then a transpose if ``k & 4``:
views 0-1 are the pattern and its left-right mirror, 0-3 add the up-down mirrors (3 is the 180-degree
rotation), 0-7 the transposes of those. Functions act on the last two axes of any array of any dtype.
"""

from __future__ import annotations

import numpy as np

VIEW_COUNTS = (1, 2, 4, 8)
"""How many of the views (the first 1, 2, 4 or all 8) a reconstruction can try."""


def _flip(x: np.ndarray, axis: int) -> np.ndarray:
    """Mirror about pixel M // 2 of ``axis`` (M even): index i -> (M - i) mod M."""
    return np.roll(np.flip(x, axis), 1, axis)


def view(x: np.ndarray, k: int) -> np.ndarray:
    """Pattern (or mask, or object) ``x`` (..., M, M) in view ``k`` (module docstring)."""
    if k & 1:
        x = _flip(x, -1)
    if k & 2:
        x = _flip(x, -2)
    if k & 4:
        x = np.swapaxes(x, -1, -2)
    return x


def unview(x: np.ndarray, k: int) -> np.ndarray:
    """The inverse of :func:`view`: an estimate made in view ``k`` back in the measured frame."""
    if k & 4:
        x = np.swapaxes(x, -1, -2)
    if k & 2:
        x = _flip(x, -2)
    if k & 1:
        x = _flip(x, -1)
    return x


def stack_views(x: np.ndarray, views: int) -> np.ndarray:
    """(views * B, M, M): the first ``views`` views of (B, M, M) ``x``, view-major (``x`` itself for one)."""
    if views == 1:
        return x
    return np.ascontiguousarray(np.concatenate([view(x, k) for k in range(views)]))


def unstack_views(x: np.ndarray, views: int) -> np.ndarray:
    """(views * B, ...): estimates made on :func:`stack_views`'s batch, each back in the measured frame."""
    if views == 1:
        return x
    return np.concatenate([unview(part, k) for k, part in enumerate(np.split(x, views))])
