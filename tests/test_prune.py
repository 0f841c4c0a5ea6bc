import numpy as np
import tensorflow as tf

from cdinn.model.architectures import ArchitectureConfig, build_network
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.prune import hold_sparsity, prune, weight_sparsity
from cdinn.quantize.qat import quantized_network

TINY = ArchitectureConfig("tiny", filters=(4, 8), convs_per_stage=1, size=16)


def _fitter(x, y, epochs=2):
    def fit(model, callbacks):
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse")
        model.fit(x, y, batch_size=16, epochs=epochs, callbacks=callbacks, verbose=0)

    return fit


def _data():
    rng = np.random.default_rng(2)
    x = rng.random((64, 16, 16, 1)).astype(np.float32)
    return x, x


def test_pruning_reaches_the_target_sparsity():
    tf.keras.utils.set_random_seed(1)
    x, y = _data()
    model = build_network(TINY, "shape")
    assert weight_sparsity(model)["total"] == 0
    pruned = prune(model, 0.5, _fitter(x, y), steps=2 * 4)
    s = weight_sparsity(pruned)
    assert 0.45 <= s["total"] <= 0.55
    assert all(0.4 <= v <= 0.6 for k, v in s.items() if k != "out_conv")
    assert not any("prune" in layer.name for layer in pruned.layers)


def test_sparsity_is_held_while_quantized_layers_fine_tune():
    tf.keras.utils.set_random_seed(1)
    x, y = _data()
    pruned = prune(build_network(TINY, "shape"), 0.5, _fitter(x, y), steps=8)
    q = quantized_network(pruned, QuantConfig(), x)
    held = hold_sparsity(q, 0.5, _fitter(x, y, epochs=1))
    assert weight_sparsity(held)["total"] >= 0.45
