"""Steady-state training steps per second of a network pair, in a process of its own (run by
``test_bench_train.py``, since TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, when it is imported).

Usage: ``python benchmarks/training_steps.py CONFIG STEPS``; prints one JSON line with ``steps_per_s``
(Adam steps of batch 64 with the ``twin+support+chi2`` loss, after three warm-up steps) and ``onednn``
(whether TensorFlow ran its oneDNN kernels).
"""

import json
import sys
import time

import numpy as np

import cdinn  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from cdinn.model.architectures import build_network, get_architecture, pair_model
from cdinn.model.conventions import ROLES, network_input
from cdinn.model.dataset import stacked_targets
from cdinn.model.losses import get_loss
from cdinn.model.simulate import broad, simulate
from cdinn.model.train import onednn_enabled

BATCH = 64


def main(config: str, steps: int) -> None:
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    arch = get_architecture(config)
    pair = pair_model({role: build_network(arch, role) for role in ROLES})
    pair.compile(optimizer=keras.optimizers.Adam(1e-4), loss=get_loss("twin+support+chi2"))
    data = simulate(BATCH, seed=1, config=broad(position="random"))
    x, y = network_input(data.diffraction), stacked_targets(data)
    for _ in range(3):
        pair.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = pair.train_on_batch(x, y)
    rate = steps / (time.perf_counter() - start)
    print(json.dumps({"steps_per_s": rate, "onednn": onednn_enabled(), "finite": bool(np.isfinite(loss))}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
