"""Pixel, scale and phase conventions, fixed once for the whole package.

* Objects are complex arrays ``(..., N, N)``: amplitude times ``exp(1j * phase)``; the support's centre of
  mass sits at pixel ``(N // 2, N // 2)`` for simulated training objects.
* Diffraction *amplitudes* are ``|FFT2(object)|`` (unnormalised forward FFT), ``fftshift``-ed so that the
  zero frequency lies at ``[N // 2, N // 2]``. *Intensities* are amplitudes squared.
* The 2x oversampled pattern is the FFT of the object zero-padded to ``2N``; its every other pixel
  (``amp2n[..., ::2, ::2]``) is exactly the ``N x N`` pattern the networks see.
* Phases are radians in ``(-pi, pi]``; the networks' sigmoid output ``u`` in ``[0, 1]`` maps to
  ``phase = 2 * pi * u - pi`` (so phase 0, the value outside the object, is ``u = 0.5``).
* Network input is the amplitude divided by its per-frame maximum (scale-free: any photon count or
  detector gain gives the same input). Masks are True where a pixel has no measurement (the NXmx
  ``pixel_mask`` sense). Networks with two input channels see such pixels as 0 and the mask itself (1.0 = not
  measured) as the second channel; one-channel networks, which cannot tell a missing measurement from a dark
  pixel, see the mean of its measured 4-neighbours instead (repeated inwards for wider holes).
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from cdinn.model.sampling import fill_from_neighbours

TWO_PI = 2.0 * np.pi
GRID = 32
ROLES = ("shape", "phase")  # the two networks of a set, in the order a combined network stacks them
"""N: the networks' grid in pixels (input patterns and output objects are N x N)."""
OVERSAMPLED_GRID = 2 * GRID
"""2N: the grid of the oversampled patterns ER/HIO and the refinement work on."""


def diffraction_amplitude(obj: np.ndarray) -> np.ndarray:
    """Far-field amplitude ``|FFT2(obj)|``, zero frequency at the centre pixel. Shape kept, float32."""
    spectrum = scipy.fft.fft2(obj, axes=(-2, -1), workers=-1 if obj.size >= 2**18 else 1)
    return np.fft.fftshift(np.abs(spectrum), axes=(-2, -1)).astype(np.float32)


def pad_centred(obj: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad the last two axes of ``obj`` (N x N) to ``size x size``, keeping pixel N//2 at size//2."""
    n = obj.shape[-1]
    lo = size // 2 - n // 2
    out = np.zeros(obj.shape[:-2] + (size, size), dtype=obj.dtype)
    out[..., lo : lo + n, lo : lo + n] = obj
    return out


def crop_centred(obj: np.ndarray, size: int) -> np.ndarray:
    """Inverse of :func:`pad_centred`: the central ``size x size`` window of the last two axes."""
    n = obj.shape[-1]
    lo = n // 2 - size // 2
    return obj[..., lo : lo + size, lo : lo + size]


def subsample_oversampled(amp2n: np.ndarray) -> np.ndarray:
    """The ``N x N`` pattern contained in a 2x oversampled ``2N x 2N`` (fftshifted) pattern."""
    return amp2n[..., ::2, ::2]


def normalise_amplitude(amplitude: np.ndarray) -> np.ndarray:
    """Divide each frame ``(..., N, N)`` by its maximum; returns float32 in ``[0, 1]`` (an all-zero frame
    stays 0)."""
    peak = amplitude.max(axis=(-2, -1), keepdims=True)
    return (amplitude / np.where(peak > 0, peak, 1)).astype(np.float32)


def network_input(diffraction: np.ndarray, mask: np.ndarray | None = None, channels: int = 1) -> np.ndarray:
    """(B, N, N) diffraction amplitudes -> (B, N, N, channels) float32 normalised to a per-frame maximum of 1.

    ``mask`` (B or 1, N, N) bool is True where a pixel has no measurement. ``channels=1``: each such pixel
    takes the mean of its measured 4-neighbours, repeated inwards for wider holes
    (:func:`cdinn.model.sampling.fill_from_neighbours`; the API, the runner and training fill the same way).
    ``channels=2``: the measured pixels normalised to their maximum, 0 where ``mask``, and the mask as float
    (1.0 = not measured) in the second channel."""
    if channels not in (1, 2):
        raise ValueError(f"networks take 1 or 2 input channels, not {channels}")
    if channels == 1:
        if mask is not None and np.any(mask):
            diffraction = fill_from_neighbours(np.asarray(diffraction, np.float32), np.asarray(mask, bool))
        return normalise_amplitude(diffraction)[..., None]
    if mask is not None:
        diffraction = np.where(mask, 0, diffraction)
    x = normalise_amplitude(diffraction)[..., None]
    flags = np.zeros(x.shape, np.float32) if mask is None else np.asarray(mask, np.float32)[..., None]
    return np.concatenate([x, flags], axis=-1)


def phase_to_unit(phase: np.ndarray) -> np.ndarray:
    """Radians in ``[-pi, pi]`` to the sigmoid range ``[0, 1]``."""
    return ((phase + np.pi) / TWO_PI).astype(np.float32)


def unit_to_phase(unit: np.ndarray) -> np.ndarray:
    """Sigmoid output in ``[0, 1]`` to radians in ``[-pi, pi]``."""
    return (unit * TWO_PI - np.pi).astype(np.float32)


def wrap_phase(phase: np.ndarray) -> np.ndarray:
    """Wrap radians into ``(-pi, pi]``."""
    return np.pi - np.mod(np.pi - phase, TWO_PI)


def twin(obj: np.ndarray) -> np.ndarray:
    """The twin image: centro-symmetric inversion about pixel ``N // 2`` and complex conjugation.

    It has exactly the same diffraction amplitude as ``obj``. For real arrays (amplitudes) it is just the
    inversion.
    """
    inverted = np.roll(np.flip(obj, axis=(-2, -1)), 1, axis=(-2, -1))
    return np.conj(inverted) if np.iscomplexobj(obj) else inverted


def complex_object(amplitude: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """``amplitude * exp(1j * phase)`` as complex64."""
    amplitude = np.asarray(amplitude, np.float32)
    phase = np.asarray(phase, np.float32)
    out = np.empty(np.broadcast_shapes(amplitude.shape, phase.shape), np.complex64)
    out.real = amplitude * np.cos(phase)
    out.imag = amplitude * np.sin(phase)
    return out


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The networks' final activation, evaluated on the host for firmware outputs (logits), float32."""
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))).astype(np.float32)
