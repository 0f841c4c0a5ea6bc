"""Network inputs and targets from simulated batches, and the tf.data pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cdinn.model.conventions import phase_to_unit
from cdinn.model.simulate import SimulatedBatch


def network_target(batch: SimulatedBatch, role: str) -> np.ndarray:
    """(B, N, N, 1) float32 target in [0, 1]: the amplitude (the shape network) or the phase mapped to [0, 1]."""
    target = batch.amplitude if role == "shape" else phase_to_unit(batch.phase)
    return target.astype(np.float32)[..., None]


def stacked_targets(batch: SimulatedBatch) -> np.ndarray:
    """(B, N, N, 2) targets ``[amplitude, phase unit]`` for the joint losses."""
    return np.concatenate([network_target(batch, "shape"), network_target(batch, "phase")], axis=-1)


def oriented_targets(data: SimulatedBatch, shape_out: np.ndarray, phase_out: np.ndarray) -> dict[str, np.ndarray]:
    """Per-network targets for fine-tuning jointly trained networks one at a time: each example's target
    or its twin, whichever the networks' current outputs (B, N, N) are closer to under the joint loss.
    Returns {'shape': (B, N, N, 1) amplitude, 'phase': (B, N, N, 2) [phase unit, amplitude]}."""
    from cdinn.model.losses import joint_loss, twin_target

    stacked = stacked_targets(data)
    pred = np.stack([shape_out, phase_out], axis=-1).astype(np.float32)
    flipped = twin_target(tf.constant(stacked)).numpy()
    use_twin = joint_loss(flipped, pred).numpy() < joint_loss(stacked, pred).numpy()
    oriented = np.where(use_twin[:, None, None, None], flipped, stacked)
    return {"shape": oriented[..., :1], "phase": np.concatenate([oriented[..., 1:], oriented[..., :1]], axis=-1)}


def make_dataset(x: np.ndarray, y: np.ndarray, batch: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batched, prefetched dataset of (input, target); reshuffled each epoch from ``seed`` if asked."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(len(x), 50_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)
