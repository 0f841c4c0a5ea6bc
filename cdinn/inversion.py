"""The one inversion path: patterns (+ mask) -> backend -> fit on the measured pixels -> refinement.

:func:`invert` is what :func:`cdinn.reconstruct`, ``cdinn reconstruct``, the runner and the Dask workers call;
nothing else composes these steps. Its input is already validated (:func:`cdinn.model.validation.validate_frames`):
(B, M, M) float32 amplitudes with 0 at unmeasured pixels and their (B, M, M) bool mask (True = no
measurement; None when every pixel is measured); M = N (32) for the networks alone, M = 2N (64) when
refining, of which the networks see every other pixel. Its output is one :class:`Reconstruction` record.
"""

from __future__ import annotations

import time

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.constraint import unconstrained
from cdinn.model.conventions import complex_object, subsample_oversampled
from cdinn.model.fit import ExperimentFit, fit_experiment
from cdinn.model.refine import AutoRefineConfig, refine_auto
from cdinn.model.refine import refine as refine_objects
from cdinn.model.sampling import oversampling
from cdinn.model.views import VIEW_COUNTS, stack_views, unstack_views

Refine = int | AutoRefineConfig
RECORD_FIELDS = (
    "amplitude",
    "phase",
    "fit",
    "fit_before",
    "iterations",
    "refined",
    "masked_fraction",
    "unconstrained",
    "oversampling",
    "coherence_sigma",
    "background",
    "centre_offset",
)
"""The per-frame fields of a :class:`Reconstruction` by their output names, in order."""


class Reconstruction(tuple):
    """``(amplitude, phase)``, so ``amplitude, phase = cdinn.reconstruct(...)`` keeps working, with the
    per-frame diagnostics as attributes (arrays have the frames' leading shape: (B,) or scalars for one frame):

    * ``fit``: fit error of the returned object against the pattern it came from, over its measured pixels,
      through the fitted forward model (:func:`cdinn.model.fit.fit_experiment`; against the oversampled
      pattern when ``refine`` was asked for); without refinement it is computed on first access, so callers
      that only unpack ``(amplitude, phase)`` do not pay for it. It cannot judge what lies under unmeasured
      pixels: with a beamstop wider than a few pixels a refined object can fit the measured ones well while
      its missing low frequencies are wrong (docs/experiment.md), so read it beside ``unconstrained``;
    * ``fit_before``: the network's own fit against the same pattern (equal to ``fit`` without refinement);
    * ``iterations``: ER/HIO iterations spent on the frame; ``refined``: whether it was refined;
    * ``masked``: the fraction of the pattern's pixels without a measurement;
    * ``unconstrained``: how much of the returned object the measured pixels cannot see, in [0, 1]: the largest
      fraction of any object mode within its support that falls on unmeasured pixels
      (:func:`cdinn.model.constraint.unconstrained`; computed on first access). 0 with every pixel measured;
      near 1 some mode of the result is the network's or the refinement's guess, whatever ``fit`` says;
    * ``oversampling``: the object's oversampling on the networks' grid (:mod:`cdinn.model.sampling`; an
      estimate from a 32x32 pattern resolves values down to 2 only, from a 64x64 one or a detector frame
      down to 1; below 1 the object does not fit the grid);
    * ``coherence_sigma`` (network pixels) and ``background`` (fraction of the pattern's total per pixel):
      the experiment the fit assumed, fitted to the network's result;
    * ``centre_offset`` (rows, cols; network-grid pixels; (B, 2)): how far the pattern's intensity centroid lies
      off the grid's centre pixel (:func:`cdinn.model.fit.centre_offset`: by the usual convention, the beam
      centre the input assumed was that far off).
    """

    amplitude: np.ndarray
    phase: np.ndarray
    iterations: np.ndarray
    refined: np.ndarray
    masked: np.ndarray
    _mask: np.ndarray | None
    _unconstrained: np.ndarray | None
    _oversampling: np.ndarray | None
    _fit: np.ndarray | None
    _fit_before: np.ndarray | None
    _experiment: ExperimentFit | None
    _patterns: tuple[np.ndarray, np.ndarray | None] | None
    _single: bool

    def __new__(
        cls,
        amplitude,
        phase,
        fit,
        fit_before,
        iterations,
        refined,
        masked,
        oversampling,
        experiment: ExperimentFit | None = None,
        patterns: tuple[np.ndarray, np.ndarray | None] | None = None,
        single: bool = False,
        mask: np.ndarray | None = None,
        unconstrained: np.ndarray | None = None,
    ):
        """``experiment=None``: the fit through the forward model is computed on first access against
        ``patterns`` ((B, N, N) amplitudes, mask or None), and so is ``oversampling=None``; ``fit=None``:
        ``experiment.error``; ``fit_before=None``: the same as ``fit``; ``unconstrained=None``: computed on first
        access from the objects and ``mask``, the patterns' ((B, M, M), M = N or 2N; None: all measured).
        ``single``: the fields are one frame's (scalars)."""
        self = super().__new__(cls, (amplitude, phase))
        self.amplitude, self.phase, self.iterations, self.refined = amplitude, phase, iterations, refined
        self.masked, self._oversampling = masked, oversampling
        self._fit, self._fit_before, self._experiment = fit, fit_before, experiment
        self._patterns, self._single = patterns, single
        self._mask, self._unconstrained = mask, unconstrained
        return self

    @property
    def unconstrained(self) -> np.ndarray:
        if self._unconstrained is None:
            if self._single:
                value = unconstrained(self.amplitude[None], None if self._mask is None else self._mask[None])
                self._unconstrained = value[0]
            else:
                self._unconstrained = unconstrained(self.amplitude, self._mask)
        return self._unconstrained

    @property
    def oversampling(self) -> np.ndarray:
        if self._oversampling is None:
            if self._patterns is None:
                raise CdinnError("this reconstruction holds neither its oversampling nor the patterns")
            patterns, mask = self._patterns
            if self._single:
                patterns, mask = patterns[None], None if mask is None else mask[None]
            sigma = grid_oversampling(patterns, mask, False)
            self._oversampling = sigma[0] if self._single else sigma
        return self._oversampling

    @property
    def experiment(self) -> ExperimentFit:
        """The fit of the network's result through the forward model (:class:`cdinn.model.fit.ExperimentFit`)."""
        if self._experiment is None:
            if self._patterns is None:
                raise CdinnError("this reconstruction holds neither a fit nor the patterns to compute it")
            obj = complex_object(self.amplitude, self.phase)
            patterns, mask = self._patterns
            if self._single:
                obj, patterns, mask = obj[None], patterns[None], None if mask is None else mask[None]
            fitted = fit_experiment(obj, patterns, mask)
            self._experiment = fitted.take(0) if self._single else fitted
        return self._experiment

    @property
    def fit(self) -> np.ndarray:
        return self.experiment.error if self._fit is None else self._fit

    @property
    def fit_before(self) -> np.ndarray:
        return self.fit if self._fit_before is None else self._fit_before

    @property
    def coherence_sigma(self) -> np.ndarray:
        return self.experiment.coherence_sigma

    @property
    def background(self) -> np.ndarray:
        return self.experiment.background

    @property
    def centre_offset(self) -> np.ndarray:
        return self.experiment.centre_offset

    def fields(self) -> dict[str, np.ndarray]:
        """Every per-frame field by its output name (:data:`RECORD_FIELDS`)."""
        values = (
            self.amplitude,
            self.phase,
            self.fit,
            self.fit_before,
            self.iterations,
            self.refined,
            self.masked,
            self.unconstrained,
            self.oversampling,
            self.coherence_sigma,
            self.background,
            self.centre_offset,
        )
        return dict(zip(RECORD_FIELDS, values, strict=True))

    def take(self, index) -> Reconstruction:
        """The frames ``index`` selects (an index array or a boolean mask), every field evaluated but the
        unconstrained-mode figure: where not computed yet, it is computed for the frames taken alone, when it is
        asked for (:meth:`evaluated`)."""
        mask, figure = self._mask, self._unconstrained
        if figure is not None or np.ndim(index) == 0:  # computed, or one frame (no batch axis left): now
            figure, mask = np.asarray(self.unconstrained)[index], None
        elif mask is not None and mask.ndim == 3 and len(mask) > 1:
            mask = mask[index]  # per frame; a shared (M, M) or (1, M, M) mask holds for any frames
        return Reconstruction(
            self.amplitude[index],
            self.phase[index],
            np.asarray(self.fit)[index],
            np.asarray(self.fit_before)[index],
            self.iterations[index],
            self.refined[index],
            self.masked[index],
            np.asarray(self.oversampling)[index],
            self.experiment.take(index),
            mask=mask,
            unconstrained=figure,
        )

    def evaluated(self) -> Reconstruction:
        """This reconstruction with every field computed now (the fit, the oversampling, the unconstrained-mode
        figure), e.g. before it is written or published."""
        self.fields()
        return self

    def first(self) -> Reconstruction:
        """The result of a single-frame call: every field without its batch axis."""
        if self._experiment is None and self._patterns is not None:
            patterns = (self._patterns[0][0], None if self._patterns[1] is None else self._patterns[1][0])
            sigma = None if self._oversampling is None else self._oversampling[0]
            return Reconstruction(
                self.amplitude[0],
                self.phase[0],
                None,
                None,
                self.iterations[0],
                self.refined[0],
                self.masked[0],
                sigma,
                None,
                patterns,
                single=True,
                mask=patterns[1],
                unconstrained=None if self._unconstrained is None else self._unconstrained[0],
            )
        return self.take(0)


def parse_refine(refine: int | str | AutoRefineConfig) -> Refine:
    """``0`` (network only), ``K > 0`` iterations for every frame, ``"auto"`` or an :class:`AutoRefineConfig`."""
    if isinstance(refine, str) and refine == "auto":
        return AutoRefineConfig()
    if isinstance(refine, AutoRefineConfig) or (isinstance(refine, int | np.integer) and refine >= 0):
        return refine
    raise CdinnError(f"refine must be a number of iterations >= 0 or 'auto', got {refine!r}")


def refine_label(refine: int | str | AutoRefineConfig) -> str:
    """How a refinement is recorded in outputs: ``"none"``, the number of iterations, or ``"auto"``."""
    if isinstance(refine, AutoRefineConfig):
        return "auto"
    return str(refine) if refine else "none"


def masked_fraction(mask: np.ndarray | None, count: int) -> np.ndarray:
    """(B,) fraction of each pattern's pixels without a measurement."""
    return np.zeros(count, np.float32) if mask is None else mask.mean(axis=(1, 2), dtype=np.float32)


def grid_oversampling(patterns: np.ndarray, mask: np.ndarray | None, oversampled: bool) -> np.ndarray:
    """(B,) oversampling on the networks' grid estimated from (B, M, M) amplitudes (the smaller axis)."""
    sigma = oversampling(np.square(patterns, dtype=np.float32), mask).min(axis=1) / (2 if oversampled else 1)
    return sigma.astype(np.float32)


def parse_views(views: int) -> int:
    """How many views of each pattern the networks see (:data:`cdinn.model.views.VIEW_COUNTS`)."""
    if views not in VIEW_COUNTS:
        raise CdinnError(f"views must be one of {', '.join(map(str, VIEW_COUNTS))}, got {views!r}")
    return int(views)


def network_pass(
    engine,
    patterns: np.ndarray,
    mask: np.ndarray | None = None,
    oversampled: bool = False,
    sigma: np.ndarray | None = None,
    views: int = 1,
    centre: np.ndarray | None = None,
    seconds: dict[str, float] | None = None,
) -> Reconstruction:
    """The backend's reconstruction of (B, M, M) patterns (their every other pixel when ``oversampled``,
    M = 2N) with its fit through the forward model against the patterns themselves, computed; its
    unconstrained-mode figure when asked for (refinement replaces the objects it is a figure of). With ``views``
    > 1 the networks see that many views of each pattern (:mod:`cdinn.model.views`) in one batch, and each frame
    keeps the estimate that fits best. ``sigma`` (B,) and ``centre`` (B, 2): the patterns' oversampling and
    centre offset where already measured (:func:`cdinn.model.fit.pattern_centre`). ``seconds``: where given,
    the time this took is added to its ``inference`` (the views and the backend) and ``fit`` (the fit, the
    oversampling) entries."""
    started = time.perf_counter()
    count = len(patterns)
    seen, seen_mask = stack_views(patterns, views), None if mask is None else stack_views(mask, views)
    if oversampled:
        seen = subsample_oversampled(seen)
        seen_mask = None if seen_mask is None else subsample_oversampled(seen_mask)
    amplitude, phase = (unstack_views(x, views) for x in engine.infer(seen, seen_mask))
    inferred = time.perf_counter()
    obj = complex_object(amplitude, phase)
    fitted = fit_experiment(obj[:count], patterns, mask, centre=centre)  # the first view is the pattern itself
    if views > 1:  # the other views' estimates against the same patterns, whose centre offset is known now
        repeat = (views - 1, 1, 1)
        others = fit_experiment(
            obj[count:],
            np.tile(patterns, repeat),
            None if mask is None else np.tile(mask, repeat),
            centre=np.tile(fitted.centre_offset, (views - 1, 1)),
        )
        fitted = ExperimentFit.concatenate([fitted, others])
    best = slice(None) if views == 1 else fitted.error.reshape(views, count).argmin(axis=0) * count + np.arange(count)
    sigma = grid_oversampling(patterns, mask, oversampled) if sigma is None else np.asarray(sigma, np.float32)
    record = Reconstruction(
        amplitude[best],
        phase[best],
        None,
        None,
        np.zeros(count, np.int64),
        np.zeros(count, bool),
        masked_fraction(mask, count),
        sigma,
        fitted.take(best),
        mask=mask,  # the unconstrained-mode figure when asked for: after refinement, of the refined objects
    )
    if seconds is not None:
        seconds["inference"] += inferred - started
        seconds["fit"] += time.perf_counter() - inferred
    return record


def refine_frames(
    record: Reconstruction, patterns: np.ndarray, mask: np.ndarray | None, refine: Refine
) -> Reconstruction:
    """The network's ``record`` refined against its (B, 2N, 2N) ``patterns`` through the fitted experiment
    (partial coherence and background): ``refine`` iterations for every frame, or automatically
    (:func:`cdinn.model.refine.refine_auto`)."""
    count = len(record.amplitude)
    experiment = record.experiment
    if isinstance(refine, AutoRefineConfig):
        done = refine_auto(record.amplitude, record.phase, patterns, refine, mask, experiment)
        return Reconstruction(
            done.amplitude,
            done.phase,
            done.fit_after,
            done.fit_before,
            done.iterations,
            done.refined,
            record.masked,
            record.oversampling,
            experiment,
            mask=mask,
        )
    amplitude, phase = refine_objects(
        record.amplitude, record.phase, patterns, int(refine), mask=mask, experiment=experiment
    )
    after = fit_experiment(complex_object(amplitude, phase), patterns, mask, known=experiment).error
    return Reconstruction(
        amplitude,
        phase,
        after,
        record.fit,
        np.full(count, int(refine)),
        np.ones(count, bool),
        record.masked,
        record.oversampling,
        experiment,
        mask=mask,
    )


def invert(
    engine,
    patterns: np.ndarray,
    mask: np.ndarray | None = None,
    refine: Refine = 0,
    sigma: np.ndarray | None = None,
    views: int = 1,
) -> Reconstruction:
    """Reconstruct validated (B, M, M) patterns with ``engine`` (a :class:`cdinn.host.backends.base.Backend`):
    the networks, then no refinement (``refine=0``, M = N), ``refine`` iterations of NN-seeded ER/HIO for
    every frame or, with an :class:`AutoRefineConfig`, for the badly fitting ones (M = 2N). ``sigma``: the
    frames' oversampling where the caller measured it. ``views``: how many views of each pattern the networks
    see, the best-fitting estimate kept (:func:`network_pass`)."""
    oversampled = not (isinstance(refine, int | np.integer) and refine == 0)
    if not oversampled and views == 1:  # the fit is computed when it is asked for
        amplitude, phase = engine.infer(patterns, mask)
        count = len(amplitude)
        return Reconstruction(
            amplitude,
            phase,
            None,
            None,
            np.zeros(count, np.int64),
            np.zeros(count, bool),
            masked_fraction(mask, count),
            None if sigma is None else np.asarray(sigma, np.float32),
            patterns=(patterns, mask),
            mask=mask,
        )
    record = network_pass(engine, patterns, mask, oversampled, sigma, views)
    return refine_frames(record, patterns, mask, refine) if oversampled else record
