"""Training losses, by name.

Per-network losses take ``(y_true, y_pred)`` of shape (B, N, N, 1) in [0, 1] (amplitude, or phase mapped to
[0, 1]) and return a per-example loss (B,):

* ``bce``: the paper's per-pixel binary cross-entropy.
* ``phase_cos``: the phase term of the joint losses for the phase network alone; ``y_true`` stacks
  ``[phase unit, amplitude]`` (B, N, N, 2), the amplitude being the weight (used to fine-tune networks that
  were trained jointly, with targets oriented by :func:`cdinn.model.dataset.oriented_targets`).

Joint losses train the shape and phase networks together (:func:`cdinn.model.train.train` wraps them in one
model whose output stacks both maps as channels ``[shape, phase]``; targets are ``[amplitude, phase unit]``):

* ``twin``: per example, the smaller of the loss against the target and against its twin (inversion about
  the centre pixel with the phase negated), so the twin image — which has exactly the same diffraction
  pattern — counts as a correct answer, and both networks must agree on which of the two they return.
  Shape term: BCE. Phase term: ``1 - cos(phase_pred - phase_true)`` weighted by the true amplitude, so the
  phase outside the object (meaningless) costs nothing and the loss has no jump where the phase wraps
  at +-pi.
* ``joint``: the same shape and phase terms without the twin minimum (for the ablation).
* ``twin+support``: ``twin`` with ``SUPPORT_WEIGHT`` times :func:`support_miss` (one minus a soft support
  IoU: the support metric made differentiable) added inside the twin minimum; ``twin+support+chi2`` adds the
  chi^2 term below to it.
* ``twin+chi2``: ``twin`` plus ``CHI2_WEIGHT`` times the reciprocal-space error chi^2 of the predicted object
  (``sum (I_true - I_pred)^2 / sum I_true^2`` with ``I = |FFT2(amplitude * exp(i phase))|^2``, the metric of
  :func:`cdinn.model.metrics.chi2`). Intensities ignore shift, twin and global phase, so this term needs no
  minimum; it weights examples by how badly they miss the measured pattern, which the pixel terms do not.
* ``twin+support+logchi2``: ``twin+support`` plus ``CHI2_WEIGHT * log(1 + chi^2)``: the same for small
  errors, bounded growth for the catastrophic ones (a network that has never seen a beamstop starts with
  chi^2 in the hundreds on such frames, which would otherwise be the whole loss).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from cdinn.errors import CdinnError
from cdinn.model.metrics import SUPPORT_THRESHOLD

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
TWO_PI = 6.283185307179586
PHASE_WEIGHT = 1.0
CHI2_WEIGHT = 4.0
SUPPORT_WEIGHT = 3.0
SUPPORT_SOFTNESS = 0.015  # sigmoid scale (amplitude): soft support 27 % this far below the threshold, 73 % above


def pixel_bce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean per-pixel binary cross-entropy, per example (nats)."""
    eps = 1e-7
    p = tf.clip_by_value(y_pred, eps, 1.0 - eps)
    bce = -(y_true * tf.math.log(p) + (1.0 - y_true) * tf.math.log(1.0 - p))
    return tf.reduce_mean(bce, axis=[1, 2, 3])


def weighted_phase_error(amplitude: tf.Tensor, unit_true: tf.Tensor, unit_pred: tf.Tensor) -> tf.Tensor:
    """Amplitude-weighted mean of ``1 - cos(phase difference)`` per example; inputs (B, N, N, 1)."""
    error = 1.0 - tf.cos(TWO_PI * (unit_pred - unit_true))
    weights = amplitude + 1e-6
    return tf.reduce_sum(weights * error, axis=[1, 2, 3]) / tf.reduce_sum(weights, axis=[1, 2, 3])


def twin_target(y: tf.Tensor) -> tf.Tensor:
    """The twin of a stacked target ``[amplitude, phase unit]`` (B, N, N, 2): inversion about pixel N/2
    (``x -> N - x``), phase negated (``u -> 1 - u``)."""
    inverted = tf.roll(tf.reverse(y, axis=[1, 2]), shift=[1, 1], axis=[1, 2])
    return tf.concat([inverted[..., :1], 1.0 - inverted[..., 1:]], axis=-1)


def _joint_terms(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    shape = pixel_bce(y_true[..., :1], y_pred[..., :1])
    phase = weighted_phase_error(y_true[..., :1], y_true[..., 1:], y_pred[..., 1:])
    return shape + PHASE_WEIGHT * phase


def support_miss(amplitude_true: tf.Tensor, amplitude_pred: tf.Tensor) -> tf.Tensor:
    """One minus a soft IoU of the supports, per example; inputs (B, N, N, 1) amplitudes.

    The true support is :func:`cdinn.model.metrics.support` (pixels above ``SUPPORT_THRESHOLD`` of the maximum);
    the predicted one replaces that step with a sigmoid of width ``SUPPORT_SOFTNESS``, so the loss pushes
    exactly the pixels near the threshold that decide the support IoU."""
    axes = [1, 2, 3]
    truth = tf.cast(
        amplitude_true > SUPPORT_THRESHOLD * tf.reduce_max(amplitude_true, axis=axes, keepdims=True),
        amplitude_pred.dtype,
    )
    level = SUPPORT_THRESHOLD * tf.reduce_max(amplitude_pred, axis=axes, keepdims=True)
    floor = tf.sigmoid(-level / SUPPORT_SOFTNESS)  # rescaled so that zero amplitude is exactly outside
    soft = (tf.sigmoid((amplitude_pred - level) / SUPPORT_SOFTNESS) - floor) / (1.0 - floor)
    overlap = tf.reduce_sum(soft * truth, axis=axes)
    union = tf.reduce_sum(soft + truth - soft * truth, axis=axes)
    return 1.0 - overlap / (union + 1e-6)


def _support_terms(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    return _joint_terms(y_true, y_pred) + SUPPORT_WEIGHT * support_miss(y_true[..., :1], y_pred[..., :1])


def _twin_minimum(terms: LossFn, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    return tf.minimum(terms(y_true, y_pred), terms(twin_target(y_true), y_pred))


def joint_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Shape BCE + amplitude-weighted phase error, per example; stacked (B, N, N, 2) inputs."""
    return _joint_terms(y_true, y_pred)


def twin_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """:func:`joint_loss` against the target or its twin, whichever is smaller, per example."""
    return _twin_minimum(_joint_terms, y_true, y_pred)


def twin_support_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """:func:`twin_loss` with the :func:`support_miss` term inside the minimum, per example."""
    return _twin_minimum(_support_terms, y_true, y_pred)


def _intensity(stacked: tf.Tensor) -> tf.Tensor:
    """``|FFT2(amplitude * exp(i phase))|^2`` (B, N, N) of a stacked ``[amplitude, phase unit]`` map."""
    amplitude = tf.cast(stacked[..., 0], tf.complex64)
    phase = tf.cast(TWO_PI * stacked[..., 1], tf.complex64)  # a constant offset: intensities ignore it
    spectrum = tf.signal.fft2d(amplitude * tf.exp(1j * phase))
    return tf.math.real(spectrum * tf.math.conj(spectrum))


def reciprocal_error(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """chi^2 per example between the intensities of the stacked target and prediction (B, N, N, 2)."""
    i_true, i_pred = _intensity(y_true), _intensity(y_pred)
    return tf.reduce_sum(tf.square(i_true - i_pred), axis=[1, 2]) / tf.reduce_sum(tf.square(i_true), axis=[1, 2])


def twin_chi2_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """:func:`twin_loss` plus ``CHI2_WEIGHT`` times :func:`reciprocal_error`, per example."""
    return twin_loss(y_true, y_pred) + CHI2_WEIGHT * reciprocal_error(y_true, y_pred)


def twin_support_chi2_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """:func:`twin_support_loss` plus ``CHI2_WEIGHT`` times :func:`reciprocal_error`, per example."""
    return twin_support_loss(y_true, y_pred) + CHI2_WEIGHT * reciprocal_error(y_true, y_pred)


def twin_support_logchi2_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """:func:`twin_support_loss` plus ``CHI2_WEIGHT`` times ``log(1 + chi^2)``, per example."""
    return twin_support_loss(y_true, y_pred) + CHI2_WEIGHT * tf.math.log1p(reciprocal_error(y_true, y_pred))


def phase_cos(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Amplitude-weighted phase error for the phase network alone; ``y_true`` = [phase unit, amplitude]."""
    return weighted_phase_error(y_true[..., 1:], y_true[..., :1], y_pred)


LOSSES: dict[str, LossFn] = {"bce": pixel_bce, "phase_cos": phase_cos}
JOINT_LOSSES: dict[str, LossFn] = {
    "joint": joint_loss,
    "twin": twin_loss,
    "twin+chi2": twin_chi2_loss,
    "twin+support": twin_support_loss,
    "twin+support+chi2": twin_support_chi2_loss,
    "twin+support+logchi2": twin_support_logchi2_loss,
}


def is_joint(name: str) -> bool:
    """Whether a loss trains the shape and phase networks together."""
    return name in JOINT_LOSSES


def get_loss(name: str) -> LossFn:
    """Look up a loss by name (per-network or joint)."""
    try:
        return LOSSES.get(name) or JOINT_LOSSES[name]
    except KeyError:
        raise CdinnError(f"unknown loss {name!r}; choose from {sorted(LOSSES) + sorted(JOINT_LOSSES)}") from None
