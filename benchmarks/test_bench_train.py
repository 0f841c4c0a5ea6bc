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
