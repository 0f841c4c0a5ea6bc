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
from cdinn.options import option


@dataclass(frozen=True)
class PhaseRetrievalConfig:
    """ER/HIO recipe. Iteration ``i`` is ER when ``i % cycle >= hio_per_cycle`` or in the final
    ``average_last`` iterations, else HIO with feedback ``beta``. The support is updated every
    ``shrinkwrap_every`` iterations: |object| blurred by a Gaussian whose sigma (pixels) falls linearly
    from ``sigma_start`` to ``sigma_end``, thresholded at ``threshold`` times its maximum."""

    iterations: int = option(620, "ER/HIO iterations (the paper's recipe: 620)")
    cycle: int = 100
    hio_per_cycle: int = 80
    beta: float = 0.9
    shrinkwrap_every: int = 20
    sigma_start: float = 2.0
    sigma_end: float = 1.0
    threshold: float = 0.1
    average_last: int = 20
    autocorrelation_threshold: float = 0.04
    seed: int = option(0, "seed of the random starting phases")

    def __post_init__(self) -> None:
        if self.iterations < 1 or not 0 <= self.average_last <= self.iterations:
            raise CdinnError("need iterations >= 1 and 0 <= average_last <= iterations")
        if not 0 < self.threshold < 1:
            raise CdinnError("shrink-wrap threshold must lie in (0, 1)")

    def as_dict(self) -> dict:
        return asdict(self)


def _shrinkwrap(obj: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    blurred = gaussian_filter(np.abs(obj), sigma=(0, sigma, sigma), mode="wrap")
    return blurred > threshold * blurred.max(axis=(-2, -1), keepdims=True)


def autocorrelation_support(amplitude: np.ndarray, threshold: float) -> np.ndarray:
    """Initial support from the object's autocorrelation (the inverse FFT of the intensity), thresholded
    at ``threshold`` of its maximum. ``amplitude``: (B, M, M) fftshifted. Returns (B, M, M) bool in the
    unshifted real-space layout the iterations use."""
    auto = np.abs(scipy.fft.ifft2(np.fft.ifftshift(amplitude, axes=(-2, -1)).astype(np.float64) ** 2))
    return auto > threshold * auto.max(axis=(-2, -1), keepdims=True)


@dataclass(frozen=True)
class PartialCoherence:
    """Per frame (B,): the Gaussian partial-coherence width ``sigma`` (pixels of the grid the iterations run
    on) and a constant background ``offset`` (the measured intensity's units) the modulus constraint models:
    the projection scales the spectrum G by sqrt(I_meas / (K_sigma * |G|^2 + offset)) (partially coherent CDI,
    as cohere's PCDI does with a fitted kernel), so the iterate stays the coherent object."""

    sigma: np.ndarray
    offset: np.ndarray

    @property
    def active(self) -> np.ndarray:
        """(B,) whether each frame has a blur or a background to model (the others take the plain modulus)."""
        return (self.sigma > 0) | (self.offset > 0)

    def kernel(self, size: int) -> np.ndarray:
        """(B, M, M) separable circular Gaussian blur matrices (the unshifted layout wraps around), columns
        summing to 1; non-negative, so the blurred intensity is never below the kernel's centre times the
        pixel's own (the FFT's rounding could make it negative and the ratio explode)."""
        index = np.arange(size)
        d = np.abs(index[:, None] - index[None, :])
        d = np.minimum(d, size - d).astype(np.float32)
        s = np.maximum(self.sigma, 1e-6)[:, None, None].astype(np.float32)
        k = np.where(self.sigma[:, None, None] > 0, np.exp(-0.5 * (d[None] / s) ** 2), np.eye(size, dtype=np.float32))
        return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)

    def take(self, index) -> PartialCoherence:
        return PartialCoherence(self.sigma[index], self.offset[index])


class _Projector:
    """The Fourier-modulus projection P_M(x) = IFFT(m * G / |G|), G = FFT(x), with its buffers allocated
    once. ``G * m / |G|`` replaces ``m * exp(i angle(G))`` (the same value, ~10x cheaper), transforms run on
    one thread (threading a 64x64 FFT costs more than it saves) and stay complex64. With ``missing``
    (unshifted (B, M, M) bool, True = no measurement) the constraint applies to measured pixels only: the
    others keep the iterate's own modulus. With ``coherence``, the frames it gives a blur or a background
    (:attr:`PartialCoherence.active`) are projected through it; each frame's projection is its own, whatever
    frames share its batch."""

    def __init__(
        self, measured: np.ndarray, missing: np.ndarray | None = None, coherence: PartialCoherence | None = None
    ):
        self.measured = measured  # (B, M, M) float32, unshifted
        self.magnitude = np.empty(measured.shape, np.float32)
        self.missing = missing if missing is not None and missing.any() else None
        active = coherence.active if coherence is not None else np.zeros(len(measured), bool)
        self.modelled, self.plain = np.flatnonzero(active), np.flatnonzero(~active)
        if 0 < len(self.plain) < len(measured):
            self.plain_measured = measured[self.plain]
        if len(self.modelled):
            modelled = coherence.take(self.modelled)  # type: ignore[union-attr]
            self.offset = modelled.offset[:, None, None]
            self.kernel = modelled.kernel(measured.shape[-1])
            self.kernel_t = np.ascontiguousarray(np.swapaxes(self.kernel, -1, -2))
            # a floor of 1e-4 of the mean intensity on both sides of the ratio keeps the pixels where the
            # model is ~0 (or slightly negative from the FFT's rounding) from exploding
            intensity = np.square(measured[self.modelled])
            self.floor = 1e-4 * intensity.mean(axis=(-2, -1), keepdims=True)
            self.intensity = intensity + self.floor

    def __call__(self, obj: np.ndarray) -> np.ndarray:
        spectrum = scipy.fft.fft2(obj, axes=(-2, -1))
        if not len(self.modelled):  # every frame: the plain modulus m / |G|, in place
            np.abs(spectrum, out=self.magnitude)
            np.maximum(self.magnitude, np.float32(1e-30), out=self.magnitude)
            np.divide(self.measured, self.magnitude, out=self.magnitude)
        elif len(self.plain):  # the plain modulus for the frames without a blur or a background
            plain = np.maximum(np.abs(spectrum[self.plain]), np.float32(1e-30))
            self.magnitude[self.plain] = self.plain_measured / plain
        if len(self.modelled):  # PCDI: scale by sqrt(I_meas / (K * |G|^2 + c))
            modelled = spectrum[self.modelled]
            blurred = self.kernel @ (modelled.real**2 + modelled.imag**2) @ self.kernel_t
            blurred += self.offset + self.floor
            self.magnitude[self.modelled] = np.sqrt(self.intensity / np.maximum(blurred, self.floor))
        if self.missing is not None:
            self.magnitude[self.missing] = 1.0
        spectrum *= self.magnitude
        return scipy.fft.ifft2(spectrum, axes=(-2, -1), overwrite_x=True)


class _SupportMasks:
    """A support (B, M, M) bool as the float32 factors the update multiplies by: ``inside`` (1 in the support),
    ``outside`` (1 outside) and ``hio`` = inside - beta * outside, so that one HIO step is
    ``x * outside + P_M(x) * hio`` (three in-place operations instead of a masked copy)."""

    def __init__(self, support: np.ndarray, beta: float):
        self.support = support
        self.inside = support.astype(np.float32)
        self.outside = 1.0 - self.inside
        self.hio = self.inside - np.float32(beta) * self.outside


def iterate(
    measured: np.ndarray,
    obj: np.ndarray,
    supp: np.ndarray,
    cfg: PhaseRetrievalConfig,
    record=None,
    missing: np.ndarray | None = None,
    coherence: PartialCoherence | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``cfg.iterations`` of ER/HIO with shrink-wrap from ``obj`` (complex64) and ``supp`` (bool), both
    (B, M, M) in the unshifted layout, against unshifted ``measured`` amplitudes (float32), the modulus
    constraint only where ``missing`` (unshifted bool) is False and through ``coherence`` where given.
    Returns the result (the average of the last ``average_last`` iterates, or the last one) and the final
    support."""
    project = _Projector(measured, missing, coherence)
    obj = obj.astype(np.complex64, copy=True)
    total = cfg.iterations
    average = np.zeros_like(obj) if cfg.average_last else None
    masks = _SupportMasks(supp, cfg.beta)
    for i in range(total):
        projected = project(obj)
        final_phase = i >= total - cfg.average_last
        if final_phase or i % cfg.cycle >= cfg.hio_per_cycle:  # ER: the projection inside the support, 0 outside
            np.multiply(projected, masks.inside, out=obj)
        else:  # HIO: the projection inside, x - beta * P_M(x) outside, as x * outside + P_M(x) * hio
            np.multiply(obj, masks.outside, out=obj)
            np.multiply(projected, masks.hio, out=projected)
            np.add(obj, projected, out=obj)
        if final_phase:
            average += obj
        elif (i + 1) % cfg.shrinkwrap_every == 0:
            frac = i / max(total - 1, 1)
            masks = _SupportMasks(
                _shrinkwrap(obj, cfg.sigma_start + (cfg.sigma_end - cfg.sigma_start) * frac, cfg.threshold), cfg.beta
            )
        if record is not None:
            record(i, obj)
    result = average / np.float32(cfg.average_last) if cfg.average_last and average is not None else obj
    return result, masks.support


def phase_retrieve(
    amplitude: np.ndarray,
    config: PhaseRetrievalConfig | None = None,
    initial: np.ndarray | None = None,
    support: np.ndarray | None = None,
    record=None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Run ER/HIO with shrink-wrap on (B, M, M) fftshifted amplitudes; returns complex64 (B, M, M).

    ``initial`` (complex, B x M x M) and ``support`` (bool) seed the iterations in the unshifted layout; by
    default the start is the measured amplitude with random phases and the support comes from the
    autocorrelation. ``mask`` (fftshifted (B, M, M) bool, True = no measurement): the modulus constraint
    skips those pixels (mask-aware ER/HIO). ``record(i, obj)``, if given, is called after every iteration
    with the current iterate.
    """
    cfg = config or PhaseRetrievalConfig()
    if amplitude.ndim != 3 or amplitude.shape[-1] != amplitude.shape[-2]:
        raise CdinnError(f"phase retrieval needs (B, M, M) amplitudes, got shape {amplitude.shape}")
    measured = np.ascontiguousarray(np.fft.ifftshift(amplitude, axes=(-2, -1)), dtype=np.float32)
    rng = np.random.default_rng(cfg.seed)
    if initial is None:
        start = measured * np.exp(2j * np.pi * rng.random(measured.shape))
        obj = scipy.fft.ifft2(start.astype(np.complex64), axes=(-2, -1))
    else:
        obj = initial
    supp = autocorrelation_support(amplitude, cfg.autocorrelation_threshold) if support is None else support
    missing = None if mask is None else np.fft.ifftshift(mask, axes=(-2, -1))
    result, _ = iterate(measured, obj, supp, cfg, record, missing)
    return np.fft.fftshift(result, axes=(-2, -1)).astype(np.complex64)
