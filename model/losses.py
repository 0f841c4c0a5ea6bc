"""Training losses, by name. ``bce`` is the paper's per-pixel binary cross-entropy.

Every loss takes ``(y_true, y_pred)`` of shape (B, N, N, 1) in [0, 1] (amplitude, or phase mapped to
[0, 1]) and returns a per-example loss (B,), as Keras expects.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from cdinn.errors import CdinnError

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def pixel_bce(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean per-pixel binary cross-entropy, per example (nats)."""
    eps = tf.keras.backend.epsilon()
    p = tf.clip_by_value(y_pred, eps, 1.0 - eps)
    bce = -(y_true * tf.math.log(p) + (1.0 - y_true) * tf.math.log(1.0 - p))
    return tf.reduce_mean(bce, axis=[1, 2, 3])


LOSSES: dict[str, LossFn] = {"bce": pixel_bce}


def get_loss(name: str) -> LossFn:
    """Look up a loss by name."""
    try:
        return LOSSES[name]
    except KeyError:
        raise CdinnError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}") from None
