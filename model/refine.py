"""NN-seeded refinement: the network's object as the starting point of a short ER/HIO run.

The network's (N, N) complex object is placed in the centre of the 2x oversampled (2N, 2N) grid; its support
(amplitude above 0.1 of the maximum, dilated by ``dilate`` pixels) is the initial support; ``iterations`` of
HIO then ER with shrink-wrap run against the measured 2N x 2N amplitudes (the recipe of
:class:`RefineConfig`), and the result is cropped back to N x N with its amplitude divided by its maximum
(the networks' [0, 1] convention). Registration and metrics are unchanged. With a ``mask`` (fftshifted
(B, 2N, 2N) bool, True = no measurement) the modulus constraint and every fit use the measured pixels only.
With an ``experiment`` (the network result's :func:`cdinn.model.fit.fit_experiment`: per-frame coherence
width and background) the modulus constraint models both (partially coherent CDI,
:class:`cdinn.model.phase_retrieval.PartialCoherence`) and every fit goes through the same forward model.

:func:`refine_auto` refines only the frames whose fit error (:mod:`cdinn.model.fit`) against the oversampled
pattern exceeds a threshold, in blocks of iterations, each frame until its fit stops improving (or a cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_dilation

from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object, crop_centred, pad_centred
from cdinn.model.fit import ExperimentFit, fit_experiment
from cdinn.model.metrics import support
from cdinn.model.phase_retrieval import PartialCoherence, PhaseRetrievalConfig, iterate


@dataclass(frozen=True)
class RefineConfig:
    """A short ER/HIO recipe: HIO for the first ``hio_fraction`` of the iterations, ER for the rest, the
    last ``average_fraction`` averaged; shrink-wrap every ``shrinkwrap_every`` iterations at sigma 1 px and
    ``threshold`` of the maximum (tighter than the 0.1 of a random start: the seed is already close).
    Defaults chosen on a tuning set separate from the evaluation set (docs/quality.md)."""

    hio_fraction: float = 0.8
    average_fraction: float = 0.2
    shrinkwrap_every: int = 3
    threshold: float = 0.15
    dilate: int = 1
    beta: float = 0.9

    def recipe(self, iterations: int) -> PhaseRetrievalConfig:
        hio = int(round(self.hio_fraction * iterations))
        return PhaseRetrievalConfig(
            iterations=iterations,
            cycle=iterations,
            hio_per_cycle=hio,
            beta=self.beta,
            shrinkwrap_every=self.shrinkwrap_every,
            sigma_start=1.0,
            sigma_end=1.0,
            threshold=self.threshold,
            average_last=max(1, int(self.average_fraction * iterations)),
        )


def _check(amplitude: np.ndarray, oversampled: np.ndarray) -> None:
    n = amplitude.shape[-1]
    if oversampled.shape[-2:] != (2 * n, 2 * n) or len(oversampled) != len(amplitude):
        raise CdinnError(
            f"refinement needs one (2N, 2N) = ({2 * n}, {2 * n}) oversampled pattern per frame, got {oversampled.shape}"
        )


def _start(amplitude: np.ndarray, phase: np.ndarray, cfg: RefineConfig) -> tuple[np.ndarray, np.ndarray]:
    """The network's objects and dilated supports on the (2N, 2N) grid, in the unshifted layout."""
    n = amplitude.shape[-1]
    start = pad_centred(complex_object(amplitude, phase), 2 * n)
    supp = pad_centred(binary_dilation(support(amplitude), iterations=cfg.dilate, axes=(-2, -1)), 2 * n)
    return np.fft.ifftshift(start, axes=(-2, -1)), np.fft.ifftshift(supp, axes=(-2, -1))


def _measured(oversampled: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.fft.ifftshift(oversampled, axes=(-2, -1)), dtype=np.float32)


def _missing(mask: np.ndarray | None) -> np.ndarray | None:
    """The mask in the unshifted layout the iterations use (None: every pixel measured)."""
    return None if mask is None or not mask.any() else np.fft.ifftshift(mask, axes=(-2, -1))


def _coherence(experiment: ExperimentFit | None) -> PartialCoherence | None:
    """The fitted experiment on the (2N, 2N) grid (widths in network pixels, twice as many there)."""
    if experiment is None:
        return None
    return PartialCoherence(2.0 * experiment.coherence_sigma, experiment.offset.astype(np.float32))


def _fit(
    obj: np.ndarray, oversampled: np.ndarray, mask: np.ndarray | None, experiment: ExperimentFit | None
) -> np.ndarray:
    """The fit through the forward model: each frame at its own fitted width (the best width without one)."""
    return fit_experiment(obj, oversampled, mask, known=experiment).error


def _cropped(obj: np.ndarray, network_amplitude: np.ndarray) -> np.ndarray:
    """Unshifted (B, 2N, 2N) iterates -> centred (B, N, N) objects on the network's amplitude scale.

    ER/HIO's object comes out in the measured pattern's units (detector counts^0.5, arbitrary); the
    network's amplitude is in the [0, 1] convention (1 = the object's full density). Each refined object is
    multiplied by the least-squares factor that best matches its amplitude to the network's seed, so refined
    and unrefined frames share one scale."""
    n = network_amplitude.shape[-1]
    out = crop_centred(np.fft.fftshift(obj, axes=(-2, -1)), n)
    amp = np.abs(out)
    scale = (amp * network_amplitude).sum(axis=(-2, -1)) / np.maximum((amp * amp).sum(axis=(-2, -1)), 1e-30)
    return (out * scale[:, None, None]).astype(np.complex64)


def _split(obj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex objects -> (amplitude clipped to [0, 1], phase in radians), float32."""
    return np.minimum(np.abs(obj), 1.0).astype(np.float32), np.angle(obj).astype(np.float32)


def refine(
    amplitude: np.ndarray,
    phase: np.ndarray,
    oversampled: np.ndarray,
    iterations: int,
    config: RefineConfig | None = None,
    mask: np.ndarray | None = None,
    experiment: ExperimentFit | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine network outputs (B, N, N) against (B, 2N, 2N) fftshifted amplitudes (measured where ``mask``
    is False); returns (amplitude in [0, 1], phase in radians) (B, N, N) float32. ``iterations=0`` returns
    the inputs unchanged."""
    cfg = config or RefineConfig()
    _check(amplitude, oversampled)
    if iterations <= 0:
        return amplitude.astype(np.float32), phase.astype(np.float32)
    start, supp = _start(amplitude, phase, cfg)
    result, _ = iterate(
        _measured(oversampled),
        start,
        supp,
        cfg.recipe(iterations),
        missing=_missing(mask),
        coherence=_coherence(experiment),
    )
    return _split(_cropped(result, amplitude))


@dataclass(frozen=True)
class AutoRefineConfig:
    """When and how far :func:`refine_auto` refines. ``threshold``: fit error against the oversampled
    pattern above which a frame is refined. 0.02 was chosen from the fit-vs-error curve of the default
    networks on a tuning set apart from the evaluation set (``experiments/auto_threshold.py``, table in
    docs/results.md): about the median fit, above which the network's true chi^2 median exceeds ~0.03; it
    refines about half the frames at ~12x the speed of 620-iteration ER/HIO;
    blocks of ``block`` iterations (the :class:`RefineConfig` recipe) run until ``patience`` blocks in a row
    improve the frame's best fit by less than the fraction ``min_gain``, or ``max_iterations`` are spent."""

    threshold: float = 0.02
    block: int = 10
    max_iterations: int = 200
    min_gain: float = 0.02
    patience: int = 2
    recipe: RefineConfig = field(default_factory=RefineConfig)

    def __post_init__(self) -> None:
        if (
            self.threshold < 0
            or self.block < 1
            or self.max_iterations < self.block
            or not 0 <= self.min_gain < 1
            or self.patience < 1
        ):
            raise CdinnError(
                "auto refinement needs threshold >= 0, block >= 1, max_iterations >= block, "
                "0 <= min_gain < 1 and patience >= 1"
            )


@dataclass
class AutoRefined:
    """Per-frame result of :func:`refine_auto`: amplitude (B, N, N) in [0, 1], phase (B, N, N) radians,
    ``fit_before``/``fit_after`` (B,) against the oversampled pattern, ``iterations`` (B,) spent and
    ``refined`` (B,) bool (frames at or below the threshold pass through unchanged)."""

    amplitude: np.ndarray
    phase: np.ndarray
    fit_before: np.ndarray
    fit_after: np.ndarray
    iterations: np.ndarray
    refined: np.ndarray


def refine_auto(
    amplitude: np.ndarray,
    phase: np.ndarray,
    oversampled: np.ndarray,
    config: AutoRefineConfig | None = None,
    mask: np.ndarray | None = None,
    experiment: ExperimentFit | None = None,
) -> AutoRefined:
    """Refine the network outputs (B, N, N) of the frames that fit their (B, 2N, 2N) pattern (measured where
    ``mask`` is False) badly, each until its fit stops improving; the best iterate seen (by fit) is kept for
    every frame."""
    cfg = config or AutoRefineConfig()
    _check(amplitude, oversampled)
    amplitude, phase = amplitude.astype(np.float32), phase.astype(np.float32)
    mask = None if mask is None or not mask.any() else mask
    best = complex_object(amplitude, phase)
    # the network's fit, as the inversion measured it through the same model (computed here without one)
    fit_before = experiment.error.copy() if experiment is not None else _fit(best, oversampled, mask, None)
    best_fit = fit_before.copy()
    iterations = np.zeros(len(amplitude), np.int64)
    active = np.flatnonzero(fit_before > cfg.threshold)
    refined = np.zeros(len(amplitude), bool)
    refined[active] = True
    stalled = np.zeros(len(amplitude), np.int64)  # blocks in a row without enough gain
    if active.size:
        obj, supp = _start(amplitude[active], phase[active], cfg.recipe)
        measured = _measured(oversampled[active])
        recipe = cfg.recipe.recipe(cfg.block)
        while active.size:
            frames_mask = None if mask is None else mask[active]
            frames_experiment = None if experiment is None else experiment.take(active)
            obj, supp = iterate(
                measured, obj, supp, recipe, missing=_missing(frames_mask), coherence=_coherence(frames_experiment)
            )
            iterations[active] += cfg.block
            candidate = _cropped(obj, amplitude[active])
            fit = _fit(candidate, oversampled[active], frames_mask, frames_experiment)
            better = fit < best_fit[active]
            best[active[better]] = candidate[better]
            gain = (best_fit[active] - fit) / np.maximum(best_fit[active], 1e-30)
            best_fit[active] = np.minimum(best_fit[active], fit)
            stalled[active] = np.where(gain >= cfg.min_gain, 0, stalled[active] + 1)
            go_on = (stalled[active] < cfg.patience) & (iterations[active] + cfg.block <= cfg.max_iterations)
            active, obj, supp, measured = active[go_on], obj[go_on], supp[go_on], measured[go_on]
    out_amplitude, out_phase = _split(best)
    out_amplitude[~refined], out_phase[~refined] = amplitude[~refined], phase[~refined]
    return AutoRefined(out_amplitude, out_phase, fit_before, best_fit, iterations, refined)
