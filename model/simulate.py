"""Simulated CDI training and test data, after the Methods of Cherukara, Nashed & Harder (2018).

Each example is a random convex object (the convex hull of 3..12 random points), value 1 inside and 0
outside, its edges smoothed by a Gaussian of ``edge_sigma`` pixels (default 1); a random phase field of one
*family*, set to 0 outside the object; and its far-field diffraction amplitude ``|FFT2|`` (see
:mod:`cdinn.model.conventions` for the pixel conventions).

Phase families (``phase_family``; the networks train on ``gratings`` only, the others are held out for
evaluation, :data:`HELD_OUT_FAMILIES`):

* ``gratings``: 1-3 sine gratings (periods in ``[min_period, max_period]`` pixels, any direction) plus 0-3
  Gaussian bumps (sigma in ``[min_gaussian_width, max_gaussian_width]`` pixels), random weights, scaled to a
  random peak-to-peak in ``[0, max_phase_ptp]`` radians and centred on zero (the paper's Methods).
* ``zernike``: a random combination of Zernike polynomials of radial order 2-5 on the disc around the
  object, scaled like the gratings (smooth aberration-like fields).
* ``defect``: the displacement field of 1-2 edge dislocations inside the object (isotropic elasticity,
  Poisson ratio 0.3) projected on a random scattering vector with ``g . b = 1``: a phase vortex winding
  by 2*pi around each core, the strain around defects that BCDI images; wrapped, not rescaled.
* ``noise``: Gaussian-filtered white noise (correlation length 1.5-4 pixels), scaled like the gratings.

:data:`BROAD` is the range a 32x32 pattern can represent (gratings down to a 3-pixel period, bumps down to
1-pixel sigma, supports from ~15 pixels to about half the grid); the default keeps the paper's narrower
ranges, so ``SimulationConfig()`` reproduces the original networks' training data.

Position convention: with ``position="centred"`` (the training default) the support's centre of mass is
moved to pixel ``(N // 2, N // 2)`` (to within half a pixel: the hull is rasterised on the pixel grid).
|FT| cannot see a shift, so this removes an ambiguity the network could not resolve. With
``position="random"`` the object is placed anywhere it fits with a 2-pixel margin; metrics register
predictions before comparing, so either convention gives the same scores.

Everything is vectorised over the batch and reproducible from one integer seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from cdinn.errors import CdinnError
from cdinn.model.conventions import (
    GRID,
    complex_object,
    diffraction_amplitude,
    pad_centred,
    subsample_oversampled,
)
from cdinn.model.forward import ExperimentConfig, counting, measure
from cdinn.model.forward import from_dict as experiment_from_dict
from cdinn.model.phase_fields import centre_of_mass, phase_field, uniform
from cdinn.options import option

Position = Literal["centred", "random"]
PhaseFamily = Literal["gratings", "zernike", "defect", "noise"]
PHASE_FAMILIES: tuple[str, ...] = ("gratings", "zernike", "defect", "noise")
HELD_OUT_FAMILIES: tuple[str, ...] = ("zernike", "defect", "noise")  # never used for training


@dataclass(frozen=True)
class SimulationConfig:
    """Generator parameters. Lengths in pixels, phases in radians, ``photons`` = total counts per pattern."""

    size: int = option(GRID, "grid size S in pixels")
    min_points: int = 3
    max_points: int = 12
    min_radius: float = 0.12  # half-width of the point-scatter box, as a fraction of ``size``
    max_radius: float = 0.38
    log_radius: bool = False  # draw the box half-width log-uniformly (more small objects) instead of uniformly
    edge_sigma: float = 1.0
    max_gratings: int = 3
    max_gaussians: int = 3
    min_period: float = 8.0  # grating periods, pixels
    max_period: float = 64.0
    log_period: bool = False  # draw periods log-uniformly instead of uniformly
    min_gaussian_width: float = 2.0  # Gaussian bump sigma, pixels
    max_gaussian_width: float = 8.0
    max_phase_ptp: float = 2 * np.pi
    ptp_exponent: float = 1.0  # peak-to-peak = max_phase_ptp * u ** ptp_exponent, u uniform: < 1 favours strong phase
    min_area: int = 12  # pixels of the rasterised hull: smaller hulls are redrawn
    min_core: int = 4  # pixels of the hull's one-pixel erosion: thinner hulls (slivers) are redrawn
    phase_family: PhaseFamily = option(
        "gratings", "phase-field family (the networks train on gratings; the others are held out)", flag="family"
    )
    position: Position = option("centred", "support centre of mass at the grid centre, or anywhere the object fits")
    photons: float | None = option(None, "Poisson noise at this total photon count per pattern (none: noiseless)")
    experiment: ExperimentConfig | None = None  # the detector forward model (cdinn.model.forward); None: ideal

    @property
    def measurement(self) -> ExperimentConfig | None:
        """The forward model the patterns go through: ``experiment``, or counting alone at ``photons``."""
        return self.experiment or (counting(self.photons) if self.photons is not None else None)

    def __post_init__(self) -> None:
        if self.size < 8 or self.size % 2:
            raise CdinnError(f"grid size must be an even number >= 8, got {self.size}")
        if not 3 <= self.min_points <= self.max_points:
            raise CdinnError("need 3 <= min_points <= max_points")
        if not 0 < self.min_radius <= self.max_radius <= 0.45:
            raise CdinnError("need 0 < min_radius <= max_radius <= 0.45 (fractions of the grid)")
        if not 2 <= self.min_period <= self.max_period:
            raise CdinnError("need 2 <= min_period <= max_period (pixels)")
        if not 0 < self.min_gaussian_width <= self.max_gaussian_width:
            raise CdinnError("need 0 < min_gaussian_width <= max_gaussian_width (pixels)")
        if not self.ptp_exponent > 0 or self.min_area < 1 or self.min_core < 1:
            raise CdinnError("need ptp_exponent > 0, min_area >= 1 and min_core >= 1")
        if self.phase_family not in PHASE_FAMILIES:
            raise CdinnError(f"phase family must be one of {PHASE_FAMILIES}, got {self.phase_family!r}")
        if not 0 <= self.max_phase_ptp <= 2 * np.pi:
            raise CdinnError("max_phase_ptp must lie in [0, 2*pi] radians")
        if self.position not in ("centred", "random"):
            raise CdinnError(f"position must be 'centred' or 'random', got {self.position!r}")
        if self.photons is not None and not self.photons > 0:
            raise CdinnError(f"photons must be positive, got {self.photons}")
        if self.photons is not None and self.experiment is not None:
            raise CdinnError("give the photon count either alone or as the experiment model's flux, not both")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SimulationConfig:
        """The inverse of :meth:`as_dict` (as a model card records it: lists for tuples)."""
        values = dict(values)
        if values.get("experiment") is not None:
            values["experiment"] = experiment_from_dict(values["experiment"])
        return cls(**values)


BROAD = SimulationConfig(
    min_radius=0.06,
    max_radius=0.36,
    log_radius=True,
    min_area=4,
    min_core=1,
    max_gratings=2,
    max_gaussians=2,
    min_period=2.5,
    max_period=64.0,
    log_period=True,
    min_gaussian_width=1.0,
    max_gaussian_width=8.0,
    ptp_exponent=0.5,
)
"""The broad training and test distribution: phase gradients up to ~2 rad/px and beyond, small objects."""


DISTRIBUTIONS: dict[str, SimulationConfig] = {"paper": SimulationConfig(), "broad": BROAD}
"""Named training/test distributions: the paper's Methods ranges, and the broad ones."""


def distribution(name: str, **changes) -> SimulationConfig:
    """A named distribution of :data:`DISTRIBUTIONS` with some fields changed."""
    try:
        return replace(DISTRIBUTIONS[name], **changes)
    except KeyError:
        raise CdinnError(f"unknown data distribution {name!r}; choose from {sorted(DISTRIBUTIONS)}") from None


def broad(**changes) -> SimulationConfig:
    """:data:`BROAD` with some fields changed (e.g. ``position='random'``, ``phase_family='defect'``)."""
    return replace(BROAD, **changes)


@dataclass
class SimulatedBatch:
    """One batch of examples; all arrays float32, first axis = example.

    ``diffraction``: (B, N, N) amplitudes, zero frequency at [N/2, N/2].
    ``amplitude``: (B, N, N) object amplitude in [0, 1]. ``phase``: (B, N, N) radians, 0 outside.
    ``diffraction_oversampled``: (B, 2N, 2N) amplitudes of the object zero-padded to 2N, or None.
    Through a forward model (:mod:`cdinn.model.forward`) the patterns are what the detector measured (square
    roots of counts, 0 where nothing was measured); ``mask`` (B, N, N) and ``mask_oversampled`` (B, 2N, 2N)
    are then True where a pixel has no measurement (None: every pixel measured), and ``parameters`` holds
    the effects drawn per frame.
    """

    diffraction: np.ndarray
    amplitude: np.ndarray
    phase: np.ndarray
    diffraction_oversampled: np.ndarray | None = None
    mask: np.ndarray | None = None
    mask_oversampled: np.ndarray | None = None
    parameters: dict[str, np.ndarray] | None = None

    @property
    def oversampled(self) -> np.ndarray:
        """``diffraction_oversampled``; an error if the batch was simulated without it."""
        if self.diffraction_oversampled is None:
            raise CdinnError("these patterns were simulated without their 2x oversampled versions")
        return self.diffraction_oversampled


_MARGIN = 2.0  # pixels kept free at the border for the blurred edge


def convex_hull_masks(points: np.ndarray, size: int) -> np.ndarray:
    """Rasterise the convex hull of each point set.

    ``points``: (B, K, 2) float coordinates (row, column) in pixels; duplicated points are allowed.
    Returns (B, size, size) bool, True at pixel centres inside or on the hull.

    A pixel is inside the hull iff it lies on the inner side of every supporting line through two of the
    points (a line with all points on one side); at most K such lines are hull edges.
    """
    b, k, _ = points.shape
    points = points.astype(np.float32)
    edge = points[:, None, :, :] - points[:, :, None, :]  # (B, K, K, 2): from point i to point j
    # cross[b, i, j, m] = edge(i -> j) x edge(i -> m): point m's side of the line through i and j
    cross = np.einsum("bijr,bimc->bijm", edge[..., :1], edge[..., 1:]) - np.einsum(
        "bijc,bimr->bijm", edge[..., 1:], edge[..., :1]
    )
    supporting = (cross >= -1e-9).all(axis=-1) & (np.abs(edge).sum(axis=-1) > 0)  # (B, K, K)
    supporting = supporting.reshape(b, k * k)
    order = np.argsort(~supporting, axis=1, kind="stable")[:, :k]  # hull edges first
    keep = np.take_along_axis(supporting, order, axis=1)  # (B, K)
    start = np.take_along_axis(np.repeat(points, k, axis=1), order[..., None], axis=1)
    end = np.take_along_axis(np.tile(points, (1, k, 1)), order[..., None], axis=1)
    d = np.where(keep[..., None], end - start, 0.0).astype(np.float32)  # dummy edges exclude nothing
    # side of pixel (r, c) w.r.t. edge s -> s + d:  d_r * (c - s_c) - d_c * (r - s_r) >= 0
    offset = (d[..., 0] * start[..., 1] - d[..., 1] * start[..., 0]).astype(np.float32)
    # For each row r that is a condition on the column c alone, a * c >= rhs(r): a half-line, so the hull
    # is one interval of columns per row, the intersection over edges (O(B * K * size) work).
    coords = np.arange(size, dtype=np.float64)
    a = d[..., 0, None].astype(np.float64)  # (B, K, 1)
    rhs = offset[..., None] + d[..., 1, None] * coords - 1e-4  # (B, K, size over rows)
    safe = np.where(a == 0, 1.0, a)
    bound = rhs / safe
    lo = np.where(a > 0, bound, -np.inf).max(axis=1)  # (B, size)
    hi = np.where(a < 0, bound, np.inf).min(axis=1)
    flat_ok = np.asarray(np.where(a == 0, rhs <= 0, True).all(axis=1))  # edges parallel to the columns
    inside = (coords[None, None, :] >= lo[..., None]) & (coords[None, None, :] <= hi[..., None])
    return inside & flat_ok[..., None]


def _random_points(rng: np.random.Generator, n: int, cfg: SimulationConfig) -> np.ndarray:
    """(n, max_points, 2) point sets in a random box around the centre; unused slots repeat point 0."""
    size = cfg.size
    radius = uniform(rng, cfg.min_radius, cfg.max_radius, (n, 1, 1), cfg.log_radius) * size
    aspect = np.exp(rng.uniform(-0.4, 0.4, (n, 1, 2)))
    pts = size / 2 + radius * aspect * rng.uniform(-1, 1, (n, cfg.max_points, 2))
    count = rng.integers(cfg.min_points, cfg.max_points + 1, n)
    unused = np.arange(cfg.max_points)[None, :] >= count[:, None]
    pts = np.where(unused[..., None], pts[:, :1, :], pts)
    return np.clip(pts, _MARGIN, size - 1 - _MARGIN)


def _too_thin(masks: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """(B,) True for hulls covering fewer than ``cfg.min_area`` pixels or fewer than ``cfg.min_core`` pixels
    whose four neighbours are all inside (slivers of nearly collinear points, which blur to nothing)."""
    core = masks.copy()
    for shift, axis in ((1, 1), (-1, 1), (1, 2), (-1, 2)):
        core &= np.roll(masks, shift, axis=axis)
    return (masks.sum(axis=(1, 2)) < cfg.min_area) | (core.sum(axis=(1, 2)) < cfg.min_core)


def _redraw_thin(
    points: np.ndarray, draw: Callable[[int], np.ndarray], cfg: SimulationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise the point sets (B, K, 2) and replace, in place, those whose hulls are too thin
    (:func:`_too_thin`) by ``draw(k)`` (k new point sets) until none is; returns the points and their hulls
    (B, N, N) bool."""
    masks = convex_hull_masks(points, cfg.size)
    thin = _too_thin(masks, cfg)
    while thin.any():
        redraw = draw(int(thin.sum()))
        points[thin] = redraw
        redrawn = convex_hull_masks(redraw, cfg.size)
        masks[thin] = redrawn
        thin[thin] = _too_thin(redrawn, cfg)
    return points, masks


def _random_supports(rng: np.random.Generator, n: int, cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_random_points`, redrawing the point sets whose hulls are too thin; returns the points and
    their rasterised hulls (B, N, N) bool."""
    return _redraw_thin(_random_points(rng, n, cfg), lambda k: _random_points(rng, k, cfg), cfg)


def _placed_supports(rng: np.random.Generator, n: int, cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_random_supports` moved by :func:`_place`, and their rasterised hulls (B, N, N) bool. The hulls
    that placement clips at the margin into slivers (or nothing) are drawn and placed again from a spawned
    generator, so ``rng``'s own stream, and with it every other example of the batch, is the same as without
    them."""
    points = _place(rng, *_random_supports(rng, n, cfg), cfg)
    spare = rng.spawn(1)[0]
    return _redraw_thin(points, lambda k: _place(spare, *_random_supports(spare, k, cfg), cfg), cfg)


def _place(rng: np.random.Generator, points: np.ndarray, masks: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """Shift point sets so their rasterised supports' (``masks``) centre of mass is at the centre (or at
    random)."""
    size = cfg.size
    com = centre_of_mass(masks)
    pts = points + (size / 2 - com)[:, None, :]
    if cfg.position == "random":
        lo = _MARGIN - pts.min(axis=1)  # (n, 2) allowed shift range keeping the margin
        hi = size - 1 - _MARGIN - pts.max(axis=1)
        pts = pts + rng.uniform(np.minimum(lo, 0), np.maximum(hi, 0))[:, None, :]
    return np.clip(pts, _MARGIN, size - 1 - _MARGIN)


def add_poisson_noise(
    amplitude: np.ndarray, photons, rng: np.random.Generator, reference: np.ndarray | None = None
) -> np.ndarray:
    """Poisson counting noise: scale intensities so ``reference`` (default: the pattern) holds ``photons``
    counts in total (a number, or one per pattern broadcastable to (B, 1, 1)), draw counts, return their
    square root (amplitudes in counts^0.5), float32.
    """
    intensity = amplitude.astype(np.float64) ** 2
    ref = intensity if reference is None else reference.astype(np.float64) ** 2
    scale = photons / ref.sum(axis=(-2, -1), keepdims=True)
    return np.sqrt(rng.poisson(intensity * scale)).astype(np.float32)


def simulate(n: int, seed: int, config: SimulationConfig | None = None, oversampled: bool = False):
    """Generate ``n`` examples reproducibly from ``seed``; see :class:`SimulatedBatch` for shapes.

    With ``oversampled=True`` the 2x oversampled pattern (for iterative phase retrieval) is included and,
    with noise, the network's ``diffraction`` is its every other pixel, so both see the same counts.
    """
    cfg = config or SimulationConfig()
    if n < 1:
        raise CdinnError(f"number of examples must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    _, hulls = _placed_supports(rng, n, cfg)
    masks = hulls.astype(np.float32)
    amplitude = gaussian_filter(masks, sigma=(0, cfg.edge_sigma, cfg.edge_sigma), mode="constant")
    amplitude = np.clip(amplitude, 0.0, 1.0).astype(np.float32)
    inside = amplitude > 1e-2
    phase = phase_field(rng, inside, cfg).astype(np.float32)
    obj = complex_object(amplitude, phase)
    model = cfg.measurement
    if model is None:
        over = diffraction_amplitude(pad_centred(obj, 2 * cfg.size)) if oversampled else None
        return SimulatedBatch(diffraction_amplitude(obj), amplitude, phase, over)
    measured = measure(obj, model, rng, 2 * cfg.size if oversampled else cfg.size)
    detected = np.sqrt(measured.intensity)
    mask = measured.mask if measured.mask.any() else None
    if not oversampled:
        return SimulatedBatch(detected, amplitude, phase, None, mask, None, measured.parameters)
    small_mask = None if mask is None else np.ascontiguousarray(subsample_oversampled(mask))
    return SimulatedBatch(
        np.ascontiguousarray(subsample_oversampled(detected)),
        amplitude,
        phase,
        detected,
        small_mask,
        mask,
        measured.parameters,
    )


def simulate_chunks(
    n: int,
    seed: int,
    config: SimulationConfig | None = None,
    chunk: int = 10_000,
    oversampled: bool = False,
    progress: bool = False,
):
    """Yield :class:`SimulatedBatch` chunks totalling ``n`` examples; chunk ``i`` has its own child seed
    of ``seed`` (so the result depends on ``chunk`` but is reproducible for a given one)."""
    from tqdm import tqdm

    seeds = np.random.SeedSequence(seed).spawn((n + chunk - 1) // chunk)
    with tqdm(total=n, unit="pattern", desc="simulate", disable=not progress, leave=False) as bar:
        for i, child in enumerate(seeds):
            count = min(chunk, n - i * chunk)
            yield simulate(count, int(child.generate_state(1)[0]), config, oversampled)
            bar.update(count)


def simulate_many(
    n: int,
    seed: int,
    config: SimulationConfig | None = None,
    chunk: int = 10_000,
    oversampled: bool = False,
    progress: bool = False,
) -> SimulatedBatch:
    """All of :func:`simulate_chunks` concatenated into one batch."""
    parts = list(simulate_chunks(n, seed, config, chunk, oversampled, progress))
    return concatenate(parts)


def concatenate(parts: list[SimulatedBatch]) -> SimulatedBatch:
    """One batch of several (masks of parts without any become all False)."""

    def joined(name: str, like: str) -> np.ndarray | None:
        if all(getattr(p, name) is None for p in parts):
            return None
        return np.concatenate(
            [np.zeros(getattr(p, like).shape, bool) if getattr(p, name) is None else getattr(p, name) for p in parts]
        )

    over = None if parts[0].diffraction_oversampled is None else np.concatenate([p.oversampled for p in parts])
    diffraction, amplitude, phase = (
        np.concatenate([getattr(p, f) for p in parts]) for f in ("diffraction", "amplitude", "phase")
    )
    parameters = (
        None
        if parts[0].parameters is None
        else {k: np.concatenate([p.parameters[k] for p in parts if p.parameters]) for k in parts[0].parameters}
    )
    return SimulatedBatch(
        diffraction,
        amplitude,
        phase,
        over,
        joined("mask", "diffraction"),
        joined("mask_oversampled", "diffraction_oversampled"),
        parameters,
    )
