import numpy as np
import tensorflow as tf

from cdinn.model.architectures import ArchitectureConfig, build_network, pair_model
from cdinn.model.conventions import ROLES
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.prune import hold_sparsity, prune, weight_sparsity
from cdinn.quantize.qat import quantized_network

TINY = ArchitectureConfig("tiny", filters=(4, 8), convs_per_stage=1, size=16)


def _fitter(x, y, epochs=2):
    def fit(models, callbacks):
        model = pair_model(models) if len(models) > 1 else models["shape"]
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
    pruned = prune({"shape": model}, 0.5, _fitter(x, y), steps=2 * 4)["shape"]
    s = weight_sparsity(pruned)
    assert 0.45 <= s["total"] <= 0.55
    assert all(0.4 <= v <= 0.6 for k, v in s.items() if k != "out_conv")
    assert not any("prune" in layer.name for layer in pruned.layers)


def test_sparsity_is_held_while_quantized_layers_fine_tune():
    tf.keras.utils.set_random_seed(1)
    x, y = _data()
    pruned = prune({"shape": build_network(TINY, "shape")}, 0.5, _fitter(x, y), steps=8)["shape"]
    q = quantized_network(pruned, QuantConfig(), x)
    held = hold_sparsity({"shape": q}, 0.5, _fitter(x, y, epochs=1))["shape"]
    assert weight_sparsity(held)["total"] >= 0.45


def test_a_pair_pruned_and_held_together_keeps_the_sparsity_in_both_networks():
    tf.keras.utils.set_random_seed(1)
    x, _ = _data()
    y = np.concatenate([x, 1 - x], axis=-1)  # pair output stacks [shape, phase]
    models = {role: build_network(TINY, role) for role in ROLES}
    pruned = prune(models, 0.5, _fitter(x, y), steps=8)
    quantized = {role: quantized_network(model, QuantConfig(), x) for role, model in pruned.items()}
    held = hold_sparsity(quantized, 0.5, _fitter(x, y, epochs=1))
    for role in ROLES:
        assert 0.45 <= weight_sparsity(pruned[role])["total"] <= 0.55
        assert weight_sparsity(held[role])["total"] >= 0.45
