"""Small, shared timing helpers (wall-clock, perf_counter) used by evaluation and the CPU baselines."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> np.ndarray:
    """Seconds taken by each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn`` once; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def latency_summary(seconds: np.ndarray) -> dict[str, float]:
    """Median and 99th percentile in microseconds."""
    return {"median_us": float(np.median(seconds) * 1e6), "p99_us": float(np.percentile(seconds, 99) * 1e6)}


def keras_callable(model):
    """A traced ``tf.function`` of the model's forward pass (inference mode): the fastest way to call a
    Keras model for one small batch, free of ``predict``'s per-call set-up."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def forward(x):
        return model(x, training=False)

    return forward
