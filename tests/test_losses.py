import numpy as np
import tensorflow as tf

from cdinn.model.conventions import phase_to_unit, twin
from cdinn.model.losses import get_loss, is_joint, joint_loss, pixel_bce, twin_loss, twin_target


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
