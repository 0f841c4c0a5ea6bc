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

:func:`fit_experiment` is the fit through the detector forward model (:mod:`cdinn.model.forward`): the
predicted intensity blurred by partial coherence (a Gaussian of the width, from :data:`COHERENCE_WIDTHS`,
that fits best) plus a constant background ``c >= 0``, ``fit = min sum (I_meas - s J_sigma - c)^2 /
sum I_meas^2``; it returns the fitted width and background too (what the tool assumed of the experiment), and
how far the measured pattern's intensity centroid lies off the grid's centre pixel (:func:`centre_offset`: the
beam centre the input assumed, by the usual convention, was that far off).
Networks trained on the forward model return the coherent object of a blurred pattern, whose own pattern
does not show the blur: this is the fit that judges them fairly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID
from cdinn.model.forward import blur, expected_intensity, predicted_intensity

COHERENCE_WIDTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
"""Partial-coherence widths (Gaussian sigma of the intensity blur, network-grid pixels) :func:`fit_experiment`
tries, in this order."""
WIDER_GAIN = 0.8
"""A wider blur replaces the best so far only if its error is below this fraction of it: a blur also hides an
imperfect object's wrong fringes, so a coherent pattern must not be read as a blurred one for a small gain."""


def fit_error(
    obj: np.ndarray,
    measured_amplitude: np.ndarray,
    mask: np.ndarray | None = None,
    experiment: dict[str, float] | None = None,
) -> np.ndarray:
    """(B,) fit of complex objects (B, N, N) to measured fftshifted amplitudes (B, M, M), M = N or 2N, over
    the pixels ``mask`` (B, M, M) bool does not flag (all pixels without one). ``experiment``: compare with
    the detector's expected intensity under these forward-model parameters (``coherence_sigma``,
    ``background``: :func:`cdinn.model.forward.expected_intensity`) instead of the coherent one."""
    m = measured_amplitude.shape[-1]
    _check(obj, measured_amplitude, mask)
    i_meas = np.square(measured_amplitude, dtype=np.float32)
    if experiment:
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


def _check(obj: np.ndarray, measured_amplitude: np.ndarray, mask: np.ndarray | None) -> None:
    n, m = obj.shape[-1], measured_amplitude.shape[-1]
    if m not in (n, 2 * n) or len(obj) != len(measured_amplitude):
        raise CdinnError(
            f"fit error needs one (N, N) or (2N, 2N) pattern per (N, N) object, got objects "
            f"{obj.shape} and patterns {measured_amplitude.shape}"
        )
    if mask is not None and mask.shape != measured_amplitude.shape:
        raise CdinnError(f"fit error needs one mask per pattern, got {mask.shape} for {measured_amplitude.shape}")


@dataclass
class ExperimentFit:
    """Per frame (B,): the fit error through the forward model, the fitted partial-coherence width
    ``coherence_sigma`` (network-grid pixels) and the fitted ``background`` (fraction of the pattern's total
    intensity per pixel, the forward model's unit) and ``offset`` (the same background in the measured
    pattern's intensity units per pixel, what the refinement subtracts); per frame (B, 2): ``centre_offset``
    (rows, cols; network-grid pixels), how far the measured intensity's centroid lies off the grid's centre
    pixel (:func:`centre_offset`)."""

    error: np.ndarray
    coherence_sigma: np.ndarray
    background: np.ndarray
    offset: np.ndarray
    centre_offset: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[ExperimentFit]) -> ExperimentFit:
        """The fits of several batches as one, in order."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))

    def take(self, index) -> ExperimentFit:
        """The frames ``index`` selects."""
        return ExperimentFit(
            self.error[index],
            self.coherence_sigma[index],
            self.background[index],
            self.offset[index],
            self.centre_offset[index],
        )


CENTRE_ROUNDS = 3
""":func:`centre_offset` re-centres its symmetric window on the nearest pixel up to this many times."""


def centre_offset(intensity: np.ndarray, measured: np.ndarray | None = None) -> np.ndarray:
    """(B, 2) float32 (rows, cols), pixels of the patterns' grid: how far the intensity centroid of (B, M, M)
    fftshifted patterns lies off the grid's centre pixel (M // 2, M // 2). The centroid is taken over the pixels
    measured (``measured`` bool, None: all) at both sides of a window symmetric about the pixel nearest the
    estimate so far (starting from the grid's centre; again while that pixel moves, at most
    :data:`CENTRE_ROUNDS` times), so that neither the grid's edge nor a gap or a beamstop on one side pulls it.
    That is the usual convention for where the beam centre lies: at the zero frequency for objects without an
    overall phase gradient (an object's mean phase gradient moves the centroid as much as a beam-centre error
    does, and a pattern cannot tell the two apart; the networks return such a gradient as phase)."""
    b = intensity.shape[0]
    values = intensity.astype(np.float64)
    ok = None if measured is None else np.broadcast_to(np.asarray(measured, bool), intensity.shape)
    estimate = np.zeros((b, 2))
    centre = np.zeros((b, 2), int)  # the window's centre, pixels off the grid's
    todo = np.arange(b)
    for _ in range(CENTRE_ROUNDS):
        every = len(todo) == b  # the whole batch (the first round): no copies of it
        estimate[todo] = _windowed_centroid(
            values if every else values[todo],
            None if ok is None else ok if every else ok[todo],
            centre if every else centre[todo],
        )
        nearest = np.round(estimate[todo]).astype(int)
        moved = (nearest != centre[todo]).any(axis=1)
        centre[todo] = nearest
        todo = todo[moved]
        if not len(todo):
            break
    return estimate.astype(np.float32)


def _windowed_centroid(values: np.ndarray, ok: np.ndarray | None, centre: np.ndarray) -> np.ndarray:
    """:func:`centre_offset`'s centroid (B, 2) of (B, M, M) ``values`` over the pixels ``ok`` (None: all) whose
    mirror about ``centre`` (B, 2; pixels off the grid's centre) is on the grid and ``ok`` too."""
    m = values.shape[-1]
    index = np.arange(m)
    shared = bool((centre == centre[0]).all())  # one window for every frame (the usual case)
    partner = 2 * (m // 2 + (centre[:1] if shared else centre))[:, :, None] - index  # (B or 1, 2, M): mirrors
    inside = (partner >= 0) & (partner < m)
    pair = inside[:, 0, :, None] & inside[:, 1, None, :]  # (B or 1, M, M)
    if ok is not None:
        mirror = np.clip(partner, 0, m - 1)
        if shared:  # one gather
            mirrored = ok[:, mirror[0, 0]][:, :, mirror[0, 1]]
        else:
            mirrored = ok[np.arange(len(ok))[:, None, None], mirror[:, 0, :, None], mirror[:, 1, None, :]]
        pair = pair & ok & mirrored
    weighted = np.where(pair, values, 0.0)
    total = np.maximum(weighted.sum(axis=(-2, -1)), 1e-300)
    rows = weighted.sum(axis=-1) @ index / total
    cols = weighted.sum(axis=-2) @ index / total
    return np.stack([rows, cols], axis=1) - m // 2


def pattern_centre(measured_amplitude: np.ndarray, mask: np.ndarray | None = None, grid: int = GRID) -> np.ndarray:
    """(B, 2) float32, pixels of the objects' ``grid``: :func:`centre_offset` of (B, M, M) fftshifted amplitudes
    (M = grid or 2 grid) over their measured pixels, as :func:`fit_experiment` reports it. It depends on the
    patterns alone, so it can be measured where the patterns are made (the runner's front end does) and passed
    to the fit."""
    return _centre(_measured(measured_amplitude, mask)[1], mask, measured_amplitude.shape[-1] // grid)


def _measured(measured_amplitude: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The float32 0/1 weight of the measured pixels of (B, M, M) amplitudes and their intensity (0 elsewhere)."""
    weight = np.ones(measured_amplitude.shape, np.float32) if mask is None else (~mask).astype(np.float32)
    return weight, np.square(measured_amplitude, dtype=np.float32) * weight


def _centre(i_meas: np.ndarray, mask: np.ndarray | None, scale: int) -> np.ndarray:
    """:func:`centre_offset` of measured intensities on a grid ``scale`` times the objects', in object pixels."""
    return centre_offset(i_meas, None if mask is None else ~mask) / scale


def fit_experiment(
    obj: np.ndarray,
    measured_amplitude: np.ndarray,
    mask: np.ndarray | None = None,
    widths: tuple[float, ...] = COHERENCE_WIDTHS,
    known: ExperimentFit | None = None,
    centre: np.ndarray | None = None,
) -> ExperimentFit:
    """The fit through the forward model (module docstring) of objects (B, N, N) to fftshifted amplitudes
    (B, M, M), M = N or 2N, over the measured pixels; the best of ``widths`` per frame, or, with ``known`` (an
    experiment already fitted to these patterns, e.g. before refinement), each frame at its known width, keeping
    its centre offset (a property of the patterns alone). ``centre``: (B, 2) the patterns' centre offset where
    it was already measured (:func:`pattern_centre`; e.g. the same patterns fitted for another estimate)."""
    _check(obj, measured_amplitude, mask)
    b, m = len(obj), measured_amplitude.shape[-1]
    scale = m // obj.shape[-1]
    weight, i_meas = _measured(measured_amplitude, mask)
    axes = (-2, -1)
    count = weight.sum(axis=axes, dtype=np.float64)
    s_i = i_meas.sum(axis=axes, dtype=np.float64)
    s_ii = np.square(i_meas).sum(axis=axes, dtype=np.float64)
    coherent = predicted_intensity(obj, m)
    if known is not None:
        where = known.centre_offset
    elif centre is not None:
        where = np.asarray(centre, np.float32)
    else:
        where = _centre(i_meas, mask, scale)
    best = ExperimentFit(
        np.full(b, np.inf, np.float32),
        np.zeros(b, np.float32),
        np.zeros(b, np.float32),
        np.zeros(b, np.float32),
        where,
    )
    trials = [np.full(b, w) for w in widths] if known is None else [np.asarray(known.coherence_sigma, np.float64)]
    for width in trials:
        model = blur(coherent, width, scale)
        j = model * weight
        s_j, s_jj = j.sum(axis=axes, dtype=np.float64), np.square(j).sum(axis=axes, dtype=np.float64)
        s_ij = (i_meas * j).sum(axis=axes, dtype=np.float64)
        det = count * s_jj - s_j**2
        gain = np.where(det > 0, (count * s_ij - s_j * s_i) / np.maximum(det, 1e-300), 0.0)
        offset = (s_i - gain * s_j) / np.maximum(count, 1)
        alone = (offset < 0) | (gain <= 0)  # a negative background: the scale alone
        gain = np.where(alone, s_ij / np.maximum(s_jj, 1e-300), gain)
        offset = np.where(alone, 0.0, offset)
        # sum w (I - g J - c)^2, expanded over the sums above (w is 0/1)
        residual = (
            s_ii - 2 * gain * s_ij - 2 * offset * s_i + gain**2 * s_jj + 2 * gain * offset * s_j + offset**2 * count
        )
        error = (np.maximum(residual, 0.0) / np.maximum(s_ii, 1e-300)).astype(np.float32)
        better = error < (best.error * WIDER_GAIN if known is None and width.any() else best.error)
        total = model[..., ::scale, ::scale].sum(axis=axes, dtype=np.float64)
        best.error[better] = error[better]
        best.coherence_sigma[better] = width[better]
        best.background[better] = (offset / np.maximum(gain * total, 1e-300))[better]
        best.offset[better] = offset[better]
    return best
