import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tf_keras as keras

from cdinn.model.architectures import build_network, get_architecture
from cdinn.model.losses import get_loss

BATCH = 256


@pytest.mark.parametrize("config", ["paper", "edge"])
@pytest.mark.parametrize("net", ["shape", "phase"])
def test_training_step(benchmark, config, net):
    """One Adam step on a batch of 256 patterns."""
    model = build_network(get_architecture(config), net)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce"))
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 32, 32, 1)).astype(np.float32)
    y = rng.random((BATCH, 32, 32, 1)).astype(np.float32)
    model.train_on_batch(x, y)  # build the training function outside the timing
    benchmark.extra_info["patterns_per_call"] = BATCH
    loss = benchmark.pedantic(model.train_on_batch, args=(x, y), rounds=10, warmup_rounds=1)
    assert np.isfinite(loss)


def _training_steps(config: str, onednn: bool, steps: int) -> dict:
    """Steady-state steps per second of ``benchmarks/training_steps.py`` in a fresh process with TensorFlow's
    oneDNN kernels on or off."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1" if onednn else "0")
    run = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("training_steps.py")), config, str(steps)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("config", ["paper", "robust"])
def test_training_kernels_side_by_side(benchmark, config):
    """A network pair's training steps per second (batch 64, ``twin+support+chi2``) with TensorFlow's own
    kernels and with oneDNN (what ``cdinn train`` uses), one process each, in the same run. The benchmark's
    time is the whole oneDNN process (start-up included); the steady-state rates and their ratio are in
    ``extra_info``."""
    own = _training_steps(config, False, 8)
    onednn = benchmark.pedantic(_training_steps, args=(config, True, 8), rounds=1, iterations=1)
    assert onednn["onednn"] and not own["onednn"] and own["finite"] and onednn["finite"]
    benchmark.extra_info.update(
        patterns_per_call=8 * 64,
        tensorflow_steps_per_s=own["steps_per_s"],
        onednn_steps_per_s=onednn["steps_per_s"],
        onednn_speedup=onednn["steps_per_s"] / own["steps_per_s"],
    )
