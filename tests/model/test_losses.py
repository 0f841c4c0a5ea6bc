import numpy as np
import tensorflow as tf

from cdinn.model.conventions import phase_to_unit, twin
from cdinn.model.losses import (
    CHI2_WEIGHT,
    get_loss,
    is_joint,
    joint_loss,
    pixel_bce,
    reciprocal_error,
    support_miss,
    twin_chi2_loss,
    twin_loss,
    twin_support_chi2_loss,
    twin_support_loss,
    twin_target,
)
from cdinn.model.metrics import chi2, support, support_iou


def _stacked_target(patterns, binary=True):
    amplitude = (patterns.amplitude > 0.5).astype(np.float32) if binary else patterns.amplitude
    return np.stack([amplitude, phase_to_unit(patterns.phase)], axis=-1).astype(np.float32)


def test_twin_target_is_the_twin_image(patterns):
    y = _stacked_target(patterns, binary=False)
    t = twin_target(tf.constant(y)).numpy()
    assert np.allclose(t[..., 0], twin(patterns.amplitude))
    assert np.allclose(t[..., 1], phase_to_unit(-twin(patterns.phase)), atol=1e-6)
    assert np.allclose(twin_target(tf.constant(t)).numpy(), y, atol=1e-6)


def test_twin_loss_is_zero_for_the_twin_of_the_target(patterns):
    y = tf.constant(_stacked_target(patterns))
    as_twin = twin_target(y)
    assert float(tf.reduce_max(twin_loss(y, as_twin))) < 1e-4
    assert float(tf.reduce_max(twin_loss(y, y))) < 1e-4
    assert float(tf.reduce_min(joint_loss(y, as_twin))) > 1e-2  # without the minimum the twin is penalised


def test_phase_error_ignores_the_wrap_and_the_outside(patterns):
    y = _stacked_target(patterns)
    wrapped = y.copy()
    wrapped[..., 1] = np.where(wrapped[..., 1] < 0.5, wrapped[..., 1] + 1.0, wrapped[..., 1])  # +2 pi
    outside = y.copy()
    outside[..., 1] = np.where(y[..., 0] == 0, 0.123, y[..., 1])
    for pred in (wrapped, outside):
        assert float(tf.reduce_max(joint_loss(tf.constant(y), tf.constant(pred)))) < 1e-4


def test_loss_registry():
    assert get_loss("bce") is pixel_bce and is_joint("twin") and not is_joint("bce")


def test_reciprocal_error_is_the_chi2_metric_and_blind_to_twin_shift_and_global_phase(patterns):
    y = _stacked_target(patterns, binary=False)
    truth = patterns.amplitude * np.exp(1j * patterns.phase)
    blurred = y.copy()
    blurred[..., 0] = np.clip(y[..., 0] * 1.2, 0, 1)
    blurred[..., 1] = np.mod(y[..., 1] + 0.05 * np.sin(np.arange(y.shape[2])), 1.0)
    pred = blurred[..., 0] * np.exp(1j * (2 * np.pi * blurred[..., 1] - np.pi))
    assert np.allclose(reciprocal_error(tf.constant(y), tf.constant(blurred)).numpy(), chi2(pred, truth), rtol=1e-3)
    moved = np.roll(twin_target(tf.constant(y)).numpy(), (3, -5), axis=(1, 2))
    moved[..., 1] = np.mod(moved[..., 1] + 0.3, 1.0)  # global phase offset
    assert float(tf.reduce_max(reciprocal_error(tf.constant(y), tf.constant(moved)))) < 1e-4
    assert float(tf.reduce_min(reciprocal_error(tf.constant(y), tf.constant(blurred)))) > 1e-3


def test_twin_chi2_loss_adds_the_reciprocal_error(patterns):
    y = tf.constant(_stacked_target(patterns))
    assert float(tf.reduce_max(twin_chi2_loss(y, twin_target(y)))) < 1e-3
    pred = tf.constant(np.clip(_stacked_target(patterns) * 0.8 + 0.1, 0, 1))
    expected = twin_loss(y, pred) + CHI2_WEIGHT * reciprocal_error(y, pred)
    assert np.allclose(twin_chi2_loss(y, pred).numpy(), expected.numpy()) and is_joint("twin+chi2")


def test_reciprocal_error_gradient_matches_finite_differences():
    """The complex FFT inside the loss must hand back the gradient of the real-valued error."""
    rng = np.random.default_rng(0)
    y_true = tf.constant(rng.random((2, 8, 8, 2)), tf.float64)
    y_pred = tf.Variable(rng.random((2, 8, 8, 2)))

    def total(v):
        return tf.reduce_sum(reciprocal_error(tf.cast(y_true, tf.float32), tf.cast(v, tf.float32)))

    with tf.GradientTape() as tape:
        loss = total(y_pred)
    grad = tape.gradient(loss, y_pred).numpy()
    for index in [(0, 1, 2, 0), (1, 3, 4, 1), (0, 7, 7, 1)]:
        step = np.zeros(y_pred.shape)
        step[index] = 1e-3
        numeric = (total(y_pred + step) - total(y_pred - step)).numpy() / 2e-3
        assert np.isclose(grad[index], numeric, rtol=1e-2, atol=1e-4)


def test_support_miss_follows_one_minus_the_support_iou(patterns):
    """Near zero for the target itself, and tracks 1 - IoU of the metric's supports as the shape moves."""
    truth = patterns.amplitude[..., None].astype(np.float32)
    assert float(tf.reduce_max(support_miss(tf.constant(truth), tf.constant(truth)))) < 0.08
    for step in (1, 2, 4):
        moved = np.roll(truth, step, axis=1)
        miss = support_miss(tf.constant(truth), tf.constant(moved)).numpy()
        assert np.allclose(miss, 1 - support_iou(support(truth[..., 0]), support(moved[..., 0])), atol=0.08)


def test_support_miss_pushes_pixels_at_the_threshold_only(patterns):
    """The gradient lives on the pixels whose amplitude sits near the support threshold."""
    truth = tf.constant(patterns.amplitude[:1, ..., None].astype(np.float32))
    pred = tf.Variable(np.clip(np.roll(patterns.amplitude[:1, ..., None], 1, axis=1), 0, 1).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(support_miss(truth, pred))
    grad = np.abs(tape.gradient(loss, pred).numpy())
    near = np.abs(pred.numpy() - 0.1 * pred.numpy().max()) < 0.05
    assert grad[near].mean() > 30 * grad[~near].mean()


def test_twin_support_losses_accept_the_twin_and_add_their_terms(patterns):
    y = tf.constant(_stacked_target(patterns))
    assert np.allclose(twin_support_loss(y, twin_target(y)).numpy(), twin_support_loss(y, y).numpy(), atol=1e-4)
    assert float(tf.reduce_max(twin_support_loss(y, y))) < 1e-3
    pred = tf.constant(np.roll(_stacked_target(patterns), 2, axis=1))
    assert np.all(twin_support_loss(y, pred).numpy() > twin_loss(y, pred).numpy() + 0.05)
    expected = twin_support_loss(y, pred) + CHI2_WEIGHT * reciprocal_error(y, pred)
    assert np.allclose(twin_support_chi2_loss(y, pred).numpy(), expected.numpy()) and is_joint("twin+support+chi2")
