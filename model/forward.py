"""The experiment forward model: from the complex object to what a detector records, one named stage each.

    object -> beam-centre offset -> coherent intensity |FFT2|^2 -> partial coherence -> detector PSF
           -> background -> photon counting (Poisson) -> readout noise -> saturation -> missing pixels (mask)

Every length is in pixels of the networks' grid (:data:`cdinn.model.conventions.GRID`, N = 32), whatever grid
the pattern is computed on: on the 2x oversampled (2N, 2N) grid a sigma of 1 px is 2 of its pixels and each
missing network pixel is a 2x2 block, so the oversampled pattern's every other pixel is the same measurement
the networks see (counts and mask alike). Intensities are per pattern, and every relative quantity (flux,
background, saturation) refers to the *reference* pattern: the (N, N) one (the oversampled pattern's every
other pixel), so a fraction means the same on both grids.

* **beam-centre offset** ``centre_offset``: the pattern sampled ``(dr, dc)`` pixels off the pixel centre
  (each uniform in [-x, x]); exact, as a linear phase ramp on the object before the transform.
* **partial coherence** ``coherence_sigma``: the intensity convolved with the transform of the beam's
  mutual coherence function; ``gaussian`` (trained) or ``lorentzian`` (an exponential coherence function,
  held out), separable, with each source pixel's kernel normalised so the total intensity is conserved.
* **detector PSF** ``psf_sigma``: a second Gaussian convolution, the same way (charge sharing).
* **background** ``background``: counts per pixel as a fraction of the coherent pattern's total; ``flat``,
  ``smooth`` (air-scatter-like, falling off as 1 / (1 + (r / r0)^2) from the beam with r0 in 2-8 px) or
  ``both`` (either, per frame) are trained, ``streak`` (a line through the beam) is held out.
* **photon counting** ``flux``: the reference pattern scaled to that many expected photons (coherent part),
  then Poisson counts; without it the intensities keep their scale and no noise is added.
* **readout noise** ``readout_noise``: Gaussian counts (r.m.s.) of an integrating detector, clipped at 0.
* **saturation** ``saturation``: the fraction of pixels above the saturation level, which record that level
  (not flagged: detectors that flag them do it through their pixel mask).
* **missing pixels**: a beamstop at the beam (``beamstop`` half-width; ``square``, ``round``, ``both`` trained,
  ``rectangle`` held out; half of them with a one-pixel holder arm to the edge when ``beamstop_arm``), chip
  gaps (``gap_width`` rows and columns at random positions), dead and hot pixels (``dead_fraction``,
  ``hot_fraction``: both flagged in the mask, as a detector's pixel mask flags them). Masked pixels hold 0.

A fraction ``clean_fraction`` of the frames goes through no effect at all; on the others each effect
applies with probability ``probability`` (the counting stage with ``counting_probability``), at a value
drawn uniformly (log-uniformly for flux and background) from its range
``(low, high)``; ``low == high`` fixes it and a zero range turns the effect off. Everything is vectorised
over the batch and drawn from one generator; an effect that is off draws nothing, so a configuration with
only counting at a fixed flux draws exactly the Poisson counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal, get_args

import numpy as np
import scipy.fft

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID, pad_centred
from cdinn.options import option

CoherenceKernel = Literal["gaussian", "lorentzian"]
BackgroundKind = Literal["flat", "smooth", "both", "streak"]
BeamstopShape = Literal["square", "round", "both", "rectangle"]
Range = tuple[float, float]

HELD_OUT_EFFECTS: dict[str, str] = {
    "coherence_kernel": "lorentzian",
    "background_kind": "streak",
    "beamstop_shape": "rectangle",
}
"""Effect kinds the networks never train on (kept for evaluation, as the held-out phase families are)."""


def _range_text(text: str) -> Range:
    """``"LOW,HIGH"`` or one number (a fixed value) -> (low, high)."""
    values = [float(v) for v in text.split(",")]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ValueError(f"expected LOW,HIGH or one number, got {text!r}")
    return values[0], values[1]


def _effect(default: Range, help: str) -> Range:
    return option(
        default, help + " (LOW,HIGH, or one number for a fixed value; 0 = off)", parse=_range_text, metavar="LOW,HIGH"
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """Ranges of the forward model's effects (see the module docstring); lengths in network-grid pixels.
    The defaults are the randomised training model; :data:`IDEAL` turns everything off."""

    clean_fraction: float = option(0.0, "fraction of the frames that go through no effect at all (ideal patterns)")
    probability: float = option(0.5, "probability that each effect applies to a frame")
    counting_probability: float = option(0.75, "probability that a frame is Poisson-counted")
    centre_offset: float = option(0.5, "beam centre off the pixel centre by up to this many pixels per axis")
    coherence_sigma: Range = _effect((0.0, 1.0), "partial coherence: width of the intensity blur, pixels")
    coherence_kernel: CoherenceKernel = option(
        "gaussian", "coherence kernel: gaussian (trained) or lorentzian (held out)"
    )
    psf_sigma: Range = _effect((0.0, 0.6), "detector point-spread function: Gaussian sigma, pixels")
    background: Range = _effect(
        (1e-6, 2e-3), "background per pixel as a fraction of the pattern's total intensity, log-uniform"
    )
    background_kind: BackgroundKind = option(
        "both", "background shape: flat, smooth (air scatter), both, or streak (held out)"
    )
    flux: Range = _effect((1e3, 1e7), "expected photons in the pattern (coherent part), log-uniform")
    readout_noise: Range = _effect((0.0, 1.0), "readout noise of an integrating detector, counts r.m.s.")
    saturation: Range = _effect((0.0, 0.01), "fraction of pixels at or above the saturation level")
    beamstop: Range = _effect((0.5, 2.0), "beamstop half-width, pixels (0.5 covers one pixel, 1 a 3x3 square)")
    beamstop_shape: BeamstopShape = option("both", "beamstop shape: square, round, both, or rectangle (held out)")
    beamstop_arm: bool = option(True, "half of the beamstops hang on a one-pixel holder arm to the edge")
    gap_width: Range = _effect((1.0, 2.0), "width of one horizontal and one vertical chip gap, pixels")
    dead_fraction: Range = _effect((0.0, 0.02), "fraction of dead pixels (flagged in the mask)")
    hot_fraction: Range = _effect((0.0, 0.002), "fraction of hot pixels (flagged in the mask)")

    def __post_init__(self) -> None:
        if not (0 <= self.probability <= 1 and 0 <= self.counting_probability <= 1 and 0 <= self.clean_fraction < 1):
            raise CdinnError("effect probabilities must lie in [0, 1]")
        if self.centre_offset < 0:
            raise CdinnError(f"centre offset must be >= 0 pixels, got {self.centre_offset}")
        for name in (
            "coherence_sigma",
            "psf_sigma",
            "background",
            "flux",
            "readout_noise",
            "saturation",
            "beamstop",
            "gap_width",
            "dead_fraction",
            "hot_fraction",
        ):
            low, high = getattr(self, name)
            if not 0 <= low <= high or not np.isfinite(high):
                raise CdinnError(f"{name} range must be 0 <= low <= high, got {(low, high)}")
        for name in ("background", "flux"):
            low, high = getattr(self, name)
            if high > 0 and low <= 0:
                raise CdinnError(f"{name} is drawn log-uniformly: its low end must be > 0, got {low}")
        if self.saturation[1] >= 0.5 or self.dead_fraction[1] + self.hot_fraction[1] >= 0.5:
            raise CdinnError("saturated, dead and hot pixels must stay well below half of the pattern")
        for name, kinds in (
            ("coherence_kernel", CoherenceKernel),
            ("background_kind", BackgroundKind),
            ("beamstop_shape", BeamstopShape),
        ):
            if getattr(self, name) not in get_args(kinds):
                raise CdinnError(f"{name} must be one of {get_args(kinds)}, got {getattr(self, name)!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def held_out(self) -> list[str]:
        """The held-out effect kinds this configuration uses (none for a training configuration)."""
        return [f"{k}={v}" for k, v in HELD_OUT_EFFECTS.items() if getattr(self, k) == v]


_OFF: dict = {
    "centre_offset": 0.0,
    "coherence_sigma": (0.0, 0.0),
    "psf_sigma": (0.0, 0.0),
    "background": (0.0, 0.0),
    "flux": (0.0, 0.0),
    "readout_noise": (0.0, 0.0),
    "saturation": (0.0, 0.0),
    "beamstop": (0.0, 0.0),
    "gap_width": (0.0, 0.0),
    "dead_fraction": (0.0, 0.0),
    "hot_fraction": (0.0, 0.0),
}
IDEAL = ExperimentConfig(probability=1.0, counting_probability=1.0, **_OFF)
"""No effect at all: the coherent intensity itself."""


def fixed(**effects: Any) -> ExperimentConfig:
    """:data:`IDEAL` with the named effects at fixed values on every frame (a number for a range field),
    e.g. ``fixed(coherence_sigma=0.5, flux=1e4)``."""
    values: dict[str, Any] = {
        k: (float(v), float(v)) if isinstance(getattr(IDEAL, k), tuple) and isinstance(v, int | float) else v
        for k, v in effects.items()
    }
    return replace(IDEAL, **values)


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from :meth:`ExperimentConfig.as_dict` as JSON keeps it (lists for tuples)."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ExperimentConfig(**fields)


def counting(photons: float) -> ExperimentConfig:
    """Only Poisson counting at ``photons`` per pattern, on every frame (the simulator's ``photons`` option)."""
    return fixed(flux=photons)


EXPERIMENTS: dict[str, ExperimentConfig] = {
    "detector": ExperimentConfig(),
    "detector+clean": ExperimentConfig(clean_fraction=0.25),
    "ideal": IDEAL,
}
"""Named forward models for ``--experiment``: the randomised training model, the same with a quarter of the
frames ideal (what keeps the networks as good on ideal patterns), and the ideal one."""


def experiment(name: str) -> ExperimentConfig:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise CdinnError(f"unknown experiment model {name!r}; choose from {sorted(EXPERIMENTS)}") from None


@dataclass
class Measurement:
    """What the forward model returns for (B, M, M) patterns: ``intensity`` float32 (counts when counted;
    0 at masked pixels), ``mask`` bool (True = no measurement), and the per-frame ``parameters`` drawn
    (each (B,) or (B, 2) for ``centre_offset``; lengths in network-grid pixels)."""

    intensity: np.ndarray
    mask: np.ndarray
    parameters: dict[str, np.ndarray] = field(default_factory=dict)


def _draw(
    rng: np.random.Generator, span: Range, n: int, p: float, log: bool = False, clean: np.ndarray | None = None
) -> np.ndarray:
    """(n,) values of an effect: 0 where it does not apply (probability ``1 - p``, and the ``clean`` frames),
    else drawn from ``span`` (log-uniformly with ``log``). Draws nothing from ``rng`` when the value is fixed
    and always applies."""
    low, high = span
    if high <= 0 or p <= 0:
        return np.zeros(n)
    if low == high:
        values = np.full(n, high)
    elif log:
        values = 10.0 ** rng.uniform(np.log10(low), np.log10(high), n)
    else:
        values = rng.uniform(low, high, n)
    values = values if p >= 1 else np.where(rng.random(n) < p, values, 0.0)
    return values if clean is None else np.where(clean, 0.0, values)


def _kind(rng: np.random.Generator, kind: str, both: tuple[str, str], n: int) -> np.ndarray:
    """(n,) per-frame choice between the two trained kinds for ``"both"``, else ``kind`` everywhere."""
    if kind == "both":
        return np.where(rng.random(n) < 0.5, both[0], both[1])
    return np.full(n, kind)


def _positions(size: int, scale: int) -> np.ndarray:
    """Coordinates of a grid of ``size`` pixels in network-grid pixels, relative to the zero frequency."""
    return (np.arange(size) - size // 2) / scale


# --- the stages, in order -------------------------------------------------------------------------------


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


def coherent_intensity(obj: np.ndarray, size: int, offset: np.ndarray) -> np.ndarray:
    """``|FFT2(obj)|^2`` on a ``size`` grid (the object zero-padded), fftshifted, sampled ``offset`` (B, 2)
    network pixels off the pixel centre (a linear phase ramp on the object). float32 (B, size, size)."""
    n = obj.shape[-1]
    if offset.any():
        turns = (np.arange(n) - n // 2)[None, :] * offset[..., None] / n  # (B, 2, N): separable ramp
        ramp = np.exp(2j * np.pi * turns).astype(np.complex64)
        obj = obj * ramp[:, 0, :, None] * ramp[:, 1, None, :]
    return predicted_intensity(obj if size == n else pad_centred(obj, size), size)


KERNEL_CUT = 55.0
"""Gaussian blur weights beyond (distance / sigma)^2 = 55 (1e-12 of the peak, below float32's resolution of the
sum) are exactly 0: as subnormal numbers they made every matrix product with them ~30x slower. (A Lorentzian's
weights fall slowly and never get that small.)"""


def _kernel_matrices(sigma: np.ndarray, size: int, scale: int, kind: str) -> np.ndarray:
    """(B, size, size) separable blur matrices ``K[b, i, j]``: how much of pixel ``j`` lands on ``i``, each
    column summing to 1 (intensity conserved); the identity where sigma is 0."""
    d = ((np.arange(size)[:, None] - np.arange(size)[None, :]) / scale).astype(np.float32)
    u = (d[None] / np.maximum(sigma, 1e-6)[:, None, None].astype(np.float32)) ** 2
    if kind == "lorentzian":
        kernel = 1.0 / (1.0 + u)
    else:  # no subnormal weights: they slow the products ~30x
        kernel = np.where(u < KERNEL_CUT, np.exp(-0.5 * np.minimum(u, KERNEL_CUT)), 0)
    kernel = np.where(sigma[:, None, None] > 0, kernel, np.eye(size, dtype=np.float32)[None])
    return kernel / kernel.sum(axis=1, keepdims=True)


@lru_cache(maxsize=64)
def _shared_kernel(sigma: float, size: int, scale: int, kind: str) -> np.ndarray:
    """:func:`_kernel_matrices` for one width, (1, size, size) (read-only: shared between calls)."""
    kernel = _kernel_matrices(np.array([sigma]), size, scale, kind)
    kernel.flags.writeable = False
    return kernel


def blur(intensity: np.ndarray, sigma: np.ndarray, scale: int, kind: str = "gaussian") -> np.ndarray:
    """Convolve each (M, M) intensity with a separable ``kind`` kernel of width ``sigma`` (B,) network pixels
    (partial coherence, detector PSF); total intensity conserved. Frames with sigma 0 are unchanged."""
    if not sigma.any():
        return intensity
    if np.all(sigma == sigma.flat[0]):  # one width for every frame (the fit's trials): one kernel, made once
        k = _shared_kernel(float(sigma.flat[0]), intensity.shape[-1], scale, kind)
    else:
        k = _kernel_matrices(sigma, intensity.shape[-1], scale, kind)
    return (k @ intensity @ np.swapaxes(k, -1, -2)).astype(np.float32)


def background_pattern(
    rng: np.random.Generator, kinds: np.ndarray, size: int, scale: int, centre: np.ndarray
) -> np.ndarray:
    """(B, size, size) background shapes of mean 1 per pixel: flat, smooth (1 / (1 + (r / r0)^2) around the
    beam, r0 2-8 px) or a streak (a 1-pixel Gaussian line through the beam at a random angle)."""
    b = len(kinds)
    y = _positions(size, scale)[None, :, None] - centre[:, 0, None, None]
    x = _positions(size, scale)[None, None, :] - centre[:, 1, None, None]
    r0 = rng.uniform(2.0, 8.0, (b, 1, 1))
    smooth = 1.0 / (1.0 + (y * y + x * x) / r0**2)
    angle = rng.uniform(0, np.pi, (b, 1, 1))
    streak = np.exp(-0.5 * (x * np.sin(angle) - y * np.cos(angle)) ** 2) + 1e-3
    shape = np.where(kinds[:, None, None] == "smooth", smooth, np.where(kinds[:, None, None] == "streak", streak, 1.0))
    return (shape / shape.mean(axis=(-2, -1), keepdims=True)).astype(np.float32)


def count_photons(rng: np.random.Generator, expected: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Poisson counts of the ``counted`` (B,) frames' expected counts (B, M, M); the others pass through."""
    if not counted.any():
        return expected
    if counted.all():
        return rng.poisson(expected.astype(np.float64)).astype(np.float32)
    out = expected.copy()
    out[counted] = rng.poisson(expected[counted].astype(np.float64))
    return out


def saturate(intensity: np.ndarray, reference: np.ndarray, fraction: np.ndarray) -> np.ndarray:
    """Clip each frame at the level the brightest ``fraction`` (B,) of its reference pixels reach."""
    if not fraction.any():
        return intensity
    ordered = np.sort(reference.reshape(len(reference), -1), axis=1)
    index = np.clip(np.ceil((1.0 - fraction) * ordered.shape[1]).astype(int), 0, ordered.shape[1] - 1)
    level = np.where(fraction > 0, ordered[np.arange(len(ordered)), index], np.inf).astype(np.float32)
    return np.minimum(intensity, level[:, None, None])


def missing_pixels(
    rng: np.random.Generator,
    cfg: ExperimentConfig,
    n: int,
    grid: int,
    centre: np.ndarray,
    clean: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(n, grid, grid) bool masks on the network grid (True = no measurement): beamstop around the beam at
    ``centre`` (n, 2) network pixels from the zero-frequency pixel, chip gaps, dead and hot pixels; and the
    per-frame parameters drawn."""
    p = cfg.probability
    y = _positions(grid, 1)[None, :, None] - centre[:, 0, None, None]
    x = _positions(grid, 1)[None, None, :] - centre[:, 1, None, None]
    mask = np.zeros((n, grid, grid), bool)
    half = _draw(rng, cfg.beamstop, n, p, clean=clean)
    if half.any():
        shape = _kind(rng, cfg.beamstop_shape, ("square", "round"), n)[:, None, None]
        h = half[:, None, None]
        square = (np.abs(y) <= h) & (np.abs(x) <= h)
        disc = y * y + x * x <= h * h
        rectangle = (np.abs(y) <= h) & (np.abs(x) <= 3 * h)
        stop = np.where(shape == "round", disc, np.where(shape == "rectangle", rectangle, square)) & (h > 0)
        if cfg.beamstop_arm:
            arm = rng.random(n) < 0.5
            side = rng.integers(0, 4, n)[:, None, None]
            line = np.where(side < 2, np.abs(np.round(x)) < 0.5, np.abs(np.round(y)) < 0.5)
            away = np.where(side < 2, np.where(side == 0, y < 0, y > 0), np.where(side == 2, x < 0, x > 0))
            stop |= arm[:, None, None] & (h > 0) & line & away
        mask |= stop
    width = np.round(_draw(rng, cfg.gap_width, n, p, clean=clean)).astype(int)
    if width.any():
        index = np.arange(grid)
        for axis in (1, 2):
            start = rng.integers(2, grid - 4, n)
            gap = (index[None] >= start[:, None]) & (index[None] < (start + width)[:, None])
            mask |= gap[:, :, None] if axis == 1 else gap[:, None, :]
    dead = _draw(rng, cfg.dead_fraction, n, p, clean=clean)
    hot = _draw(rng, cfg.hot_fraction, n, p, clean=clean)
    if dead.any() or hot.any():
        mask |= rng.random((n, grid, grid)) < (dead + hot)[:, None, None]
    return mask, {"beamstop": half, "gap_width": width.astype(np.float64), "dead_fraction": dead, "hot_fraction": hot}


def expected_intensity(obj: np.ndarray, size: int, coherence_sigma: float = 0.0, background: float = 0.0) -> np.ndarray:
    """The noiseless intensity (B, size, size) the detector records of ``obj`` (B, N, N) with a Gaussian
    partial-coherence blur of ``coherence_sigma`` network pixels and a flat background of ``background`` times
    the reference pattern's total per pixel: the model the fit and the adaptation compare with."""
    b, n = len(obj), obj.shape[-1]
    scale = size // n
    intensity = blur(coherent_intensity(obj, size, np.zeros((b, 2))), np.full(b, coherence_sigma), scale)
    if background:
        total = intensity[..., ::scale, ::scale].sum(axis=(-2, -1), dtype=np.float64)
        intensity = intensity + (background * total)[:, None, None].astype(np.float32)
    return intensity


def measure(obj: np.ndarray, cfg: ExperimentConfig, rng: np.random.Generator, size: int | None = None) -> Measurement:
    """What a detector records of the complex objects ``obj`` (B, N, N) on a ``size`` grid (N, or 2N for the
    oversampled pattern): every stage of the module docstring, in order."""
    b, n = len(obj), obj.shape[-1]
    size = size or n
    scale = size // n
    if size % n or n != GRID and scale != 1:
        raise CdinnError(f"the forward model works on the {n} grid or a multiple of it, got {size}")
    p = cfg.probability
    clean = rng.random(b) < cfg.clean_fraction if cfg.clean_fraction > 0 else None
    offset = (
        rng.uniform(-cfg.centre_offset, cfg.centre_offset, (b, 2)) * (rng.random((b, 1)) < p)
        if cfg.centre_offset > 0 and p > 0
        else np.zeros((b, 2))
    )
    if clean is not None:
        offset[clean] = 0.0
    intensity = coherent_intensity(obj, size, offset)
    reference = intensity[..., ::scale, ::scale]
    total = reference.sum(axis=(-2, -1), dtype=np.float64)
    coherence = _draw(rng, cfg.coherence_sigma, b, p, clean=clean)
    intensity = blur(intensity, coherence, scale, cfg.coherence_kernel)
    psf = _draw(rng, cfg.psf_sigma, b, p, clean=clean)
    intensity = blur(intensity, psf, scale)
    level = _draw(rng, cfg.background, b, p, log=True, clean=clean)
    if level.any():
        kinds = _kind(rng, cfg.background_kind, ("flat", "smooth"), b)
        shape = background_pattern(rng, kinds, size, scale, offset)
        intensity = intensity + (level * total)[:, None, None].astype(np.float32) * shape
    photons = _draw(rng, cfg.flux, b, cfg.counting_probability, log=True, clean=clean)
    counted = photons > 0
    if counted.any():
        gain = np.where(counted, photons / np.maximum(total, 1e-300), 1.0)
        intensity = count_photons(rng, intensity * gain[:, None, None].astype(np.float32), counted)
    readout = _draw(rng, cfg.readout_noise, b, p, clean=clean) * counted
    if readout.any():
        noisy = intensity + rng.normal(0.0, 1.0, intensity.shape).astype(np.float32) * readout[:, None, None]
        intensity = np.maximum(noisy, 0.0).astype(np.float32)
    saturation = _draw(rng, cfg.saturation, b, p, clean=clean)
    intensity = saturate(intensity, intensity[..., ::scale, ::scale], saturation)
    mask, missing = missing_pixels(rng, cfg, b, n, offset, clean)
    if scale > 1:
        mask = mask.repeat(scale, axis=1).repeat(scale, axis=2)
    intensity = np.where(mask, 0.0, intensity).astype(np.float32)
    parameters = {
        "centre_offset": offset,
        "coherence_sigma": coherence,
        "psf_sigma": psf,
        "background": level,
        "flux": photons,
        "readout_noise": readout,
        "saturation": saturation,
        **missing,
    }
    return Measurement(intensity, mask, parameters)
