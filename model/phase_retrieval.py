"""Iterative phase retrieval baseline: error reduction (ER) and hybrid input-output (HIO) with a
shrink-wrap support, vectorised over a batch of patterns with scipy FFTs.

Default recipe = the paper's Methods: the measured pattern is 2x oversampled (the object zero-padded to
twice its size), 620 iterations cycling HIO and ER, shrink-wrap support updates, and the final 20 (ER)
iterates averaged. Input amplitudes are fftshifted (zero frequency at the centre pixel), as everywhere in
cdinn; output objects are complex (B, M, M) on the same M x M grid, *not yet registered* (their position,
twin and global phase are arbitrary: use :func:`cdinn.model.metrics.register`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter

from cdinn.errors import CdinnError


@dataclass(frozen=True)
class PhaseRetrievalConfig:
    """ER/HIO recipe. Iteration ``i`` is ER when ``i % cycle >= hio_per_cycle`` or in the final
    ``average_last`` iterations, else HIO with feedback ``beta``. The support is updated every
    ``shrinkwrap_every`` iterations: |object| blurred by a Gaussian whose sigma (pixels) falls linearly
    from ``sigma_start`` to ``sigma_end``, thresholded at ``threshold`` times its maximum."""

    iterations: int = 620
    cycle: int = 100
    hio_per_cycle: int = 80
    beta: float = 0.9
    shrinkwrap_every: int = 20
    sigma_start: float = 2.0
    sigma_end: float = 1.0
    threshold: float = 0.1
    average_last: int = 20
    autocorrelation_threshold: float = 0.04
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or not 0 <= self.average_last <= self.iterations:
            raise CdinnError("need iterations >= 1 and 0 <= average_last <= iterations")
        if not 0 < self.threshold < 1:
            raise CdinnError("shrink-wrap threshold must lie in (0, 1)")

    def as_dict(self) -> dict:
        return asdict(self)


def _fft2(x: np.ndarray) -> np.ndarray:
    return scipy.fft.fft2(x, axes=(-2, -1), workers=-1)


def _ifft2(x: np.ndarray) -> np.ndarray:
    return scipy.fft.ifft2(x, axes=(-2, -1), workers=-1)


def _shrinkwrap(obj: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    blurred = gaussian_filter(np.abs(obj), sigma=(0, sigma, sigma), mode="wrap")
    return blurred > threshold * blurred.max(axis=(-2, -1), keepdims=True)


def autocorrelation_support(amplitude: np.ndarray, threshold: float) -> np.ndarray:
    """Initial support from the object's autocorrelation (the inverse FFT of the intensity), thresholded
    at ``threshold`` of its maximum. ``amplitude``: (B, M, M) fftshifted. Returns (B, M, M) bool in the
    unshifted real-space layout the iterations use."""
    auto = np.abs(_ifft2(np.fft.ifftshift(amplitude, axes=(-2, -1)).astype(np.float64) ** 2))
    return auto > threshold * auto.max(axis=(-2, -1), keepdims=True)


def phase_retrieve(amplitude: np.ndarray, config: PhaseRetrievalConfig | None = None,
                   initial: np.ndarray | None = None, support: np.ndarray | None = None,
                   record=None) -> np.ndarray:
    """Run ER/HIO with shrink-wrap on (B, M, M) fftshifted amplitudes; returns complex64 (B, M, M).

    ``initial`` (complex, B x M x M) and ``support`` (bool) seed the iterations; by default the start is
    the measured amplitude with random phases and the support comes from the autocorrelation.
    ``record(i, obj)``, if given, is called after every iteration with the current iterate.
    """
    cfg = config or PhaseRetrievalConfig()
    if amplitude.ndim != 3 or amplitude.shape[-1] != amplitude.shape[-2]:
        raise CdinnError(f"phase retrieval needs (B, M, M) amplitudes, got shape {amplitude.shape}")
    measured = np.fft.ifftshift(amplitude, axes=(-2, -1)).astype(np.float32)
    rng = np.random.default_rng(cfg.seed)
    if initial is None:
        start = measured * np.exp(2j * np.pi * rng.random(measured.shape))
        obj = _ifft2(start.astype(np.complex64))
    else:
        obj = initial.astype(np.complex64)
    supp = autocorrelation_support(amplitude, cfg.autocorrelation_threshold) if support is None else support
    total = cfg.iterations
    average = np.zeros_like(obj)
    for i in range(total):
        spectrum = _fft2(obj)
        projected = _ifft2(measured * np.exp(1j * np.angle(spectrum)).astype(np.complex64))
        final_phase = i >= total - cfg.average_last
        if final_phase or i % cfg.cycle >= cfg.hio_per_cycle:
            obj = np.where(supp, projected, 0)
        else:
            obj = np.where(supp, projected, obj - cfg.beta * projected)
        if final_phase:
            average += obj
        elif (i + 1) % cfg.shrinkwrap_every == 0:
            frac = i / max(total - 1, 1)
            supp = _shrinkwrap(obj, cfg.sigma_start + (cfg.sigma_end - cfg.sigma_start) * frac, cfg.threshold)
        if record is not None:
            record(i, obj)
    result = average / cfg.average_last if cfg.average_last else obj
    return np.fft.fftshift(result, axes=(-2, -1)).astype(np.complex64)
