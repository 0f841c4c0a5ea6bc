"""Training on several workers with tf.distribute: which strategy, which worker this is, where it writes.

``TF_CONFIG`` (the standard tf.distribute variable) describing a cluster of several workers selects
``MultiWorkerMirroredStrategy`` (synchronous data parallelism, gradients all-reduced between the workers);
several GPUs in one process select ``MirroredStrategy``; otherwise the default strategy. Worker 0 is the chief:
only it writes the networks, cards, logs and figures to the output folder; the others write their (identical)
copies to a scratch folder, as Keras's multi-worker saving needs every worker to save.

Data: each worker simulates its own shard of the fresh training data from its own seed stream
(:func:`cdinn.model.train.fresh_batches` with ``shards=[worker index]``), ``batch / workers`` examples per
step, so one process trained with ``data_shards = workers`` sees exactly the same global batches.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from cdinn.errors import CdinnError


@dataclass(frozen=True)
class Worker:
    """This process's place in the cluster: ``index`` of ``count`` workers (0 of 1 without TF_CONFIG)."""

    index: int = 0
    count: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0


def worker() -> Worker:
    """This process's place from ``TF_CONFIG``; one CdinnError line if the variable is malformed."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return Worker()
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        index = int(config["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CdinnError(f"TF_CONFIG is not a tf.distribute cluster description ({exc})") from None
    if config["task"].get("type", "worker") != "worker" or not 0 <= index < len(workers):
        raise CdinnError("TF_CONFIG: this task must be one of the cluster's workers (type 'worker', valid index)")
    return Worker(index, len(workers))


def strategy(place: Worker) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a multi-worker cluster, MirroredStrategy on several GPUs, else the
    default strategy."""
    if place.count > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def output_folder(out: Path, place: Worker) -> Path:
    """Where this worker writes: the output folder for the chief, a scratch folder for the others."""
    if place.chief:
        return out
    return Path(tempfile.mkdtemp(prefix=f"cdinn-worker{place.index}-"))
