"""The phase fields of simulated objects, one generator per family (see :mod:`cdinn.model.simulate` for the
families and their ranges), and the small sampling helpers the simulator shares with them.

Shapes: ``inside`` is (B, N, N) bool (the object's support); fields are (B, N, N) float64, phases in
radians, 0 outside the object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter

if TYPE_CHECKING:
    from cdinn.model.simulate import SimulationConfig


def uniform(rng: np.random.Generator, lo: float, hi: float, shape, log: bool) -> np.ndarray:
    """Uniform draws in [lo, hi], or log-uniform ones (one draw per value either way)."""
    if log:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), shape))
    return rng.uniform(lo, hi, shape)


def centre_of_mass(masks: np.ndarray) -> np.ndarray:
    """(B, 2) centre of mass (row, column) of each mask; the grid centre for an empty one."""
    size = masks.shape[-1]
    idx = np.arange(size, dtype=np.float64)
    total = masks.sum(axis=(1, 2)).astype(np.float64)
    safe = np.where(total > 0, total, 1.0)
    rows = (masks.sum(axis=2) * idx).sum(axis=1) / safe
    cols = (masks.sum(axis=1) * idx).sum(axis=1) / safe
    com = np.stack([rows, cols], axis=1)
    return np.where(total[:, None] > 0, com, size / 2)


def _grating_fields(rng: np.random.Generator, n: int, cfg: SimulationConfig) -> np.ndarray:
    """(n, N, N) smooth random fields: sums of sine gratings and Gaussians, arbitrary scale.

    Both kinds are separable in rows and columns (sin(a + b) = sin a cos b + cos a sin b), so the field is
    built from (n, terms, N) factors with one einsum.
    """
    size = cfg.size
    coords = np.arange(size, dtype=np.float32)
    g = cfg.max_gratings
    n_grat = rng.integers(1, g + 1, n)
    w = rng.uniform(0.2, 1.0, (n, g)) * (np.arange(g)[None] < n_grat[:, None])
    period = uniform(rng, cfg.min_period, cfg.max_period, (n, g), cfg.log_period)
    theta = rng.uniform(0, 2 * np.pi, (n, g))
    offset = rng.uniform(0, 2 * np.pi, (n, g))
    arg_r = (2 * np.pi / period * np.sin(theta))[..., None] * coords + offset[..., None]  # (n, g, N) rows
    arg_c = (2 * np.pi / period * np.cos(theta))[..., None] * coords  # (n, g, N) columns
    wr = w[..., None]
    field = np.einsum("ngr,ngc->nrc", (wr * np.sin(arg_r)).astype(np.float32), np.cos(arg_c).astype(np.float32))
    field += np.einsum("ngr,ngc->nrc", (wr * np.cos(arg_r)).astype(np.float32), np.sin(arg_c).astype(np.float32))
    h = cfg.max_gaussians
    if h:
        n_gauss = rng.integers(0, h + 1, n)
        wg = rng.uniform(-1.0, 1.0, (n, h)) * (np.arange(h)[None] < n_gauss[:, None])
        centre = rng.uniform(size * 0.25, size * 0.75, (n, h, 2))
        width = rng.uniform(cfg.min_gaussian_width, cfg.max_gaussian_width, (n, h))[..., None]
        gr = wg[..., None] * np.exp(-((coords - centre[..., 0, None]) ** 2) / (2 * width**2))
        gc = np.exp(-((coords - centre[..., 1, None]) ** 2) / (2 * width**2))
        field += np.einsum("nhr,nhc->nrc", gr.astype(np.float32), gc.astype(np.float32))
    return field


def _polar(inside: np.ndarray):
    """Radius (normalised to the object's farthest pixel) and angle about each object's centre of mass."""
    size = inside.shape[-1]
    com = centre_of_mass(inside)
    rows = np.arange(size)[None, :, None] - com[:, 0, None, None]
    cols = np.arange(size)[None, None, :] - com[:, 1, None, None]
    r = np.hypot(rows, cols)
    extent = np.where(inside, r, 0).max(axis=(1, 2), keepdims=True)
    return r / np.maximum(extent, 1.0), np.arctan2(rows, cols)


def _zernike_radial(n: int, m: int, rho: np.ndarray) -> np.ndarray:
    from math import factorial

    return sum(
        (-1) ** k
        * factorial(n - k)
        / (factorial(k) * factorial((n + m) // 2 - k) * factorial((n - m) // 2 - k))
        * rho ** (n - 2 * k)
        for k in range((n - m) // 2 + 1)
    )


_ZERNIKE_MODES = [(n, m) for n in range(2, 6) for m in range(-n, n + 1, 2)]


def _zernike_fields(rng: np.random.Generator, inside: np.ndarray) -> np.ndarray:
    """(n, N, N) random Zernike combinations of radial order 2-5 on the disc around each object (weights
    falling as 1/order), arbitrary scale."""
    rho, theta = _polar(inside)
    coeff = rng.normal(size=(len(inside), len(_ZERNIKE_MODES)))
    field = np.zeros(inside.shape)
    for j, (n, m) in enumerate(_ZERNIKE_MODES):
        angular = np.cos(m * theta) if m >= 0 else np.sin(-m * theta)
        field += (coeff[:, j, None, None] / n) * _zernike_radial(n, abs(m), rho) * angular
    return field


def _defect_phases(rng: np.random.Generator, inside: np.ndarray, poisson: float = 0.3) -> np.ndarray:
    """(n, N, N) phase 2*pi g.u/|b| of 1-2 edge dislocations (cores on random object pixels, random Burgers
    vector direction, random scattering vector with g.b = 1), wrapped into (-pi, pi]."""
    b, size, _ = inside.shape
    coords = np.arange(size, dtype=np.float64)
    phase = np.zeros(inside.shape)
    count = rng.integers(1, 3, b)
    for k in range(2):
        flat = rng.random((b, size * size)) * inside.reshape(b, -1)
        core: np.ndarray = np.stack(np.unravel_index(flat.argmax(axis=1), (size, size)), axis=1)
        core = core + np.asarray(rng.uniform(-0.5, 0.5, (b, 2)))
        burgers = np.asarray(rng.uniform(0, 2 * np.pi, b))[:, None, None]
        g_angle = burgers + np.asarray(rng.uniform(-np.pi / 3, np.pi / 3, b))[:, None, None]
        dy = coords[None, :, None] - core[:, 0, None, None]
        dx = coords[None, None, :] - core[:, 1, None, None]
        # coordinates along (x') and across (y') the Burgers vector
        xp = dx * np.cos(burgers) + dy * np.sin(burgers)
        yp = -dx * np.sin(burgers) + dy * np.cos(burgers)
        theta = np.arctan2(yp, xp)
        r2 = xp**2 + yp**2 + 0.25
        nu = poisson
        ux = (theta + xp * yp / (2 * (1 - nu) * r2)) / (2 * np.pi)  # in units of |b|
        uy = -((1 - 2 * nu) / (4 * (1 - nu)) * np.log(r2) + (xp**2 - yp**2) / (4 * (1 - nu) * r2)) / (2 * np.pi)
        # g in the rotated frame: g.b = 1 fixes its component along b
        gx, gy = 1.0, np.tan(g_angle - burgers)
        active = np.asarray(k < count)
        phase += active[:, None, None] * 2 * np.pi * (gx * ux + gy * uy)
    return np.pi - np.mod(np.pi - phase, 2 * np.pi)


def _noise_fields(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """(n, N, N) white noise low-pass filtered by a Gaussian of 1.5-4 pixels, arbitrary scale."""
    sigma = rng.uniform(1.5, 4.0, n)
    white = rng.normal(size=(n, size, size))
    return np.stack([gaussian_filter(w, s, mode="wrap") for w, s in zip(white, sigma, strict=True)])


def phase_field(rng: np.random.Generator, inside: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """(n, N, N) phase of ``cfg.phase_family`` inside the objects, 0 outside (see the module docstring)."""
    n = len(inside)
    if cfg.phase_family == "defect":
        return np.where(inside, _defect_phases(rng, inside), 0.0)
    if cfg.phase_family == "zernike":
        field = _zernike_fields(rng, inside)
    elif cfg.phase_family == "noise":
        field = _noise_fields(rng, n, cfg.size)
    else:
        field = _grating_fields(rng, n, cfg)
    return _scale_phase(rng, field, inside, cfg)


def _scale_phase(rng: np.random.Generator, field: np.ndarray, inside: np.ndarray, cfg: SimulationConfig):
    """Centre each field on zero inside the object and scale to a random peak-to-peak; 0 outside."""
    n = field.shape[0]
    hi = np.where(inside, field, -np.inf).max(axis=(1, 2), keepdims=True)
    lo = np.where(inside, field, np.inf).min(axis=(1, 2), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    ptp = cfg.max_phase_ptp * rng.uniform(0.0, 1.0, (n, 1, 1)) ** cfg.ptp_exponent
    phase = (field - (hi + lo) / 2) / span * ptp
    return np.where(inside, phase, 0.0)
