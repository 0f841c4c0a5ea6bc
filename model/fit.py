"""The per-frame fit error: how well a reconstruction explains the pattern it came from, without ground truth.

``fit = sum (I_meas - s * I_pred)^2 / sum I_meas^2`` (the paper's chi^2 against the *measured* pattern), with
``I_pred = |FFT2(object)|^2`` of the reconstructed object on the pattern's grid and ``s`` the scale that fits
the data best (least squares: ``s = sum I_meas I_pred / sum I_pred^2``), since the networks' amplitude is in
[0, 1] and the detector's in counts. 0 for an exact reconstruction; 1 for an object that explains none of
the pattern (``s = 0``). Blind to shift, twin and global phase, like the pattern itself.

A (B, N, N) object is compared with (B, N, N) patterns directly and with 2x oversampled (B, 2N, 2N) ones
after zero-padding to 2N (the refinement works on those). With a ``mask`` (True where a pixel has no
measurement) every sum, the scale's included, runs over the measured pixels only: a beamstop or a chip gap
is neither a perfect fit nor a miss.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from cdinn.errors import CdinnError
from cdinn.model.conventions import pad_centred


@lru_cache(maxsize=8)
def _checkerboard(size: int) -> np.ndarray:
    """(-1)^(row + col): multiplying an object by it shifts its spectrum by size/2 in both axes, i.e. gives
    the fftshifted FFT directly (size even), cheaper than shifting the result."""
    index = np.arange(size)
    return (1 - 2 * ((index[:, None] + index[None, :]) % 2)).astype(np.float32)


def predicted_intensity(obj: np.ndarray, size: int) -> np.ndarray:
    """``|FFT2(obj zero-padded to size)|^2``, fftshifted, float32 (B, size, size)."""
    if size != obj.shape[-1]:
        obj = pad_centred(obj, size)
    spectrum = scipy.fft.fft2(obj * _checkerboard(size), axes=(-2, -1))  # complex64 in, complex64 out
    return spectrum.real**2 + spectrum.imag**2


def fit_error(obj: np.ndarray, measured_amplitude: np.ndarray, mask: np.ndarray | None = None,
              experiment: dict[str, float] | None = None) -> np.ndarray:
    """(B,) fit of complex objects (B, N, N) to measured fftshifted amplitudes (B, M, M), M = N or 2N, over
    the pixels ``mask`` (B, M, M) bool does not flag (all pixels without one). ``experiment``: compare with
    the detector's expected intensity under these forward-model parameters (``coherence_sigma``,
    ``background``: :func:`cdinn.model.forward.expected_intensity`) instead of the coherent one."""
    n, m = obj.shape[-1], measured_amplitude.shape[-1]
    if m not in (n, 2 * n) or len(obj) != len(measured_amplitude):
        raise CdinnError(f"fit error needs one (N, N) or (2N, 2N) pattern per (N, N) object, got objects "
                         f"{obj.shape} and patterns {measured_amplitude.shape}")
    if mask is not None and mask.shape != measured_amplitude.shape:
        raise CdinnError(f"fit error needs one mask per pattern, got {mask.shape} for {measured_amplitude.shape}")
    i_meas = np.square(measured_amplitude, dtype=np.float32)
    if experiment:
        from cdinn.model.forward import expected_intensity

        i_pred = expected_intensity(obj, m, **experiment)
    else:
        i_pred = predicted_intensity(obj, m)
    if mask is not None:
        i_meas = np.where(mask, np.float32(0), i_meas)
        i_pred = np.where(mask, np.float32(0), i_pred)
    axes = (-2, -1)
    # sums in float64: the intensities span many decades
    cross = (i_meas * i_pred).sum(axis=axes, dtype=np.float64)
    scale = cross / np.maximum(np.square(i_pred).sum(axis=axes, dtype=np.float64), 1e-300)
    residual = np.square(i_meas - scale[:, None, None].astype(np.float32) * i_pred).sum(axis=axes, dtype=np.float64)
    return (residual / np.maximum(np.square(i_meas).sum(axis=axes, dtype=np.float64), 1e-300)).astype(np.float32)
