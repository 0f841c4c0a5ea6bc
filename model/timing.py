"""Small helpers: the wall time of one call (for the studies' time-per-pattern columns) and the fastest way to
call a Keras model. Latency itself is measured by the benchmark suite (``make bench``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def keras_callable(model):
    """A traced ``tf.function`` of the model's forward pass (inference mode): the fastest way to call a
    Keras model for one small batch, free of ``predict``'s per-call set-up."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(x):
        return model(x, training=False)

    return forward
