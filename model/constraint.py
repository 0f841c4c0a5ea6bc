"""How far a pattern's measured pixels constrain the object returned for it: its *unconstrained modes*.

A detector measures nothing under a beamstop, in gaps and at dead pixels, and there only the object's support
constrains the result. An object mode confined to the support whose transform falls on unmeasured pixels is
invisible to the data: any amount of it can be added and the fit on the measured pixels does not change
(Thibault et al., Acta Cryst. A 62, 248 (2006), who counted such modes for a beamstop). The figure here,
:func:`unconstrained`, is the largest fraction of any support-confined mode's intensity that falls on
unmeasured pixels: the largest eigenvalue of ``P_M F P_S F^H P_M`` (``P_S`` the support, ``P_M`` the unmeasured
pixels, ``F`` the unitary DFT), in [0, 1]. 0: every pixel is measured; about the support's share of the grid
(``1 / oversampling^2``) for one isolated unmeasured pixel; near 1: some mode of the object is almost invisible
to the measurement, and what the result holds there is the network's or the refinement's guess that no fit can
check (a square beamstop wider than the central speckle; docs/experiment.md).

The eigenvalue comes from a few Lanczos steps (:data:`LANCZOS_STEPS`) on the K unmeasured pixels of each frame,
with the operator as a K x K matrix whose entries are the support's transform at the pixels' separations
(``G[m, n] = FT(support)(k_m - k_n) / M^2``, one FFT a frame); past :data:`MAX_MATRIX` unmeasured pixels as two
FFTs a step instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft

from cdinn.model.conventions import pad_centred
from cdinn.model.metrics import support

LANCZOS_STEPS = 12
"""Lanczos steps per frame (the largest eigenvalue converges first; exact with at most this many unmeasured pixels)."""
MAX_MATRIX = 64
"""Up to this many unmeasured pixels in a frame the operator is a K x K matrix; beyond, FFTs."""


def _lanczos_largest(matvec: Callable[[np.ndarray], np.ndarray], start: np.ndarray) -> np.ndarray:
    """(B,) largest eigenvalue estimates of B Hermitian positive semi-definite operators ``matvec`` acting on
    (B, K) vectors, from :data:`LANCZOS_STEPS` Lanczos steps from (B, K) ``start``. A Krylov space that runs out
    (an exact invariant subspace) leaves zero rows, whose zero eigenvalues cannot exceed the largest."""
    count, steps = len(start), LANCZOS_STEPS
    alpha, beta = np.zeros((count, steps), np.float32), np.zeros((count, steps), np.float32)
    norm = np.linalg.norm(start, axis=1, keepdims=True)
    q = np.divide(start, norm, out=np.zeros(start.shape, start.dtype), where=norm > 0)
    previous = np.zeros_like(q)
    for j in range(steps):
        w = matvec(q) - (beta[:, j - 1 : j] if j else 0) * previous
        alpha[:, j] = np.einsum("bk,bk->b", q.conj(), w).real
        w -= alpha[:, j, None] * q
        beta[:, j] = np.linalg.norm(w, axis=1)
        alive = beta[:, j, None] > 1e-6
        previous, q = q, np.divide(w, beta[:, j, None], out=np.zeros_like(w), where=alive)
        beta[:, j] *= alive[:, 0]
    tridiagonal = np.zeros((count, steps, steps), np.float32)
    index = np.arange(steps)
    tridiagonal[:, index, index] = alpha
    tridiagonal[:, index[1:], index[:-1]] = beta[:, :-1]
    return np.linalg.eigvalsh(tridiagonal)[:, -1]


def _matrix_operator(inside: np.ndarray, pixels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The operator on (B, K) vectors over each frame's unmeasured ``pixels`` ((B, K) flat indices, -1 pads) as
    B K x K matrices, from the (B, M, M) supports' transforms."""
    count, size, width = len(inside), inside.shape[-1], pixels.shape[1]
    spectrum = scipy.fft.fft2(inside.astype(np.float32)).reshape(count, -1) / np.float32(size**2)
    shared = bool((pixels == pixels[:1]).all())  # one mask for every frame (a detector's): one table of separations
    rows, cols = np.divmod(np.maximum(pixels[:1] if shared else pixels, 0).astype(np.int32), size)
    separation = ((rows[:, :, None] - rows[:, None, :]) % size) * size + (cols[:, :, None] - cols[:, None, :]) % size
    # the matrix conjugated: vecdot conjugates its first operand (each row times v: 2-5x a batched matmul's speed)
    if shared:  # every frame has the same K pixels: no padding
        conjugate = spectrum.conj()[:, separation.reshape(-1)].reshape(count, width, width)
    else:
        conjugate = np.take_along_axis(spectrum.conj(), separation.reshape(count, -1), axis=1).reshape(separation.shape)
        valid = pixels >= 0
        conjugate *= valid[:, :, None] & valid[:, None, :]  # padding rows and columns hold 0
    return lambda v: np.vecdot(conjugate, v[:, None, :])


def _fft_operator(inside: np.ndarray, pixels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The same operator as two FFTs a step (for frames with many unmeasured pixels)."""
    count, size = len(inside), inside.shape[-1]
    valid = pixels >= 0
    flat = np.where(valid, pixels, 0)

    def apply(v: np.ndarray) -> np.ndarray:
        modes = np.zeros((count, size * size), np.complex64)
        np.put_along_axis(modes, flat, np.where(valid, v, 0), axis=1)
        objects = scipy.fft.ifft2(modes.reshape(count, size, size), norm="ortho") * inside
        return np.take_along_axis(scipy.fft.fft2(objects, norm="ortho").reshape(count, -1), flat, axis=1) * valid

    return apply


def unconstrained(amplitude: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(B,) float32 in [0, 1]: for each (B, M, M) object ``amplitude`` (its support: pixels above
    :data:`cdinn.model.metrics.SUPPORT_THRESHOLD` of its maximum) and (B, M, M) or (M, M) ``mask`` of its
    pattern (True = no measurement), on the object's grid or on the oversampled one (twice its side: the object
    then lies padded in that field of view), the largest fraction of a support-confined mode's intensity on
    unmeasured pixels (module docstring). ``mask=None``: all zeros."""
    amplitude = np.asarray(amplitude)
    result = np.zeros(len(amplitude), np.float32)
    if mask is None:
        return result
    side = np.shape(mask)[-1]
    if np.shape(mask)[-2:] != (side, side) or side not in (amplitude.shape[-1], 2 * amplitude.shape[-1]):
        raise ValueError(f"mask {np.shape(mask)} matches neither the objects {amplitude.shape} nor twice their grid")
    amplitude = pad_centred(amplitude, side)
    size = amplitude.shape[-1] * amplitude.shape[-2]
    mask = np.broadcast_to(mask, amplitude.shape).reshape(len(amplitude), size)
    counts = mask.sum(axis=1)
    todo = np.flatnonzero(counts)
    if not len(todo):
        return result
    counts, width = counts[todo], int(counts.max())
    frame, pixel = np.nonzero(mask[todo])  # each frame's unmeasured pixels, padded with -1 to the most
    pixels = np.full((len(todo), width), -1)
    pixels[frame, np.arange(len(pixel)) - np.repeat(np.cumsum(counts) - counts, counts)] = pixel
    operator = (_matrix_operator if width <= MAX_MATRIX else _fft_operator)(support(amplitude[todo]), pixels)
    start = np.random.default_rng(0).standard_normal(size).astype(np.complex64) + 1  # fixed: deterministic
    result[todo] = np.clip(_lanczos_largest(operator, np.where(pixels >= 0, start[pixels], 0)), 0.0, 1.0)
    return result
