"""Network inputs and targets from simulated batches, and the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cdinn.model.conventions import phase_to_unit
from cdinn.model.simulate import SimulatedBatch


def network_target(batch: SimulatedBatch, net: str) -> np.ndarray:
    """(B, N, N, 1) float32 target in [0, 1]: the amplitude (shape net) or the phase mapped to [0, 1]."""
    target = batch.amplitude if net == "shape" else phase_to_unit(batch.phase)
    return target.astype(np.float32)[..., None]


def make_dataset(x: np.ndarray, y: np.ndarray, batch: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batched, prefetched dataset of (input, target); reshuffled each epoch from ``seed`` if asked."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(len(x), 50_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)
