"""What quantization and pruning cost a network pair before any fine-tuning, scored on the evaluation test set
(broad distribution, random positions, seed 20181009):

* quantization alone: the float networks put through ``quantized_network`` (the calibrated QKeras twin that
  ``cdinn quantize`` fine-tunes) at several weight and activation bit widths;
* pruning alone: in every convolution the given fraction of the kernel weights with the smallest magnitude set
  to zero (the criterion of tfmot's ``prune_low_magnitude``), no quantization.

This is the starting point of the fine-tuning; ``model/weights/<set>-q/table.md`` is where it ends.

Usage: python experiments/compression_cost.py [N] [NET]   (defaults: 1000, default)
"""

import sys

import numpy as np

# isort: off
import cdinn  # noqa: F401  (before TensorFlow: sets TF_USE_LEGACY_KERAS)
import tf_keras as keras

# isort: on
from cdinn.model.conventions import ROLES
from cdinn.model.inference import load_network, network_folder
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.pipeline import fine_tuning_data, markdown_table, score_variants
from cdinn.quantize.qat import quantized_network

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
net = sys.argv[2] if len(sys.argv) > 2 else "default"
folder = str(network_folder(net))
# 2000 calibration patterns drawn as cdinn quantize draws them (its default seed)
x = fine_tuning_data(folder, ROLES, QuantConfig(examples=2000, val=0))[1]
floats = {role: load_network(folder, role)[0] for role in ROLES}
variants = {"float": floats}
for weight_bits, activation_bits in ((6, 10), (7, 10), (8, 10), (9, 10), (10, 10), (12, 10), (8, 12), (10, 8)):
    cfg = QuantConfig(weight_bits=weight_bits, activation_bits=activation_bits)
    variants[f"weights {weight_bits} b, activations {activation_bits} b"] = {
        role: quantized_network(model, cfg, x) for role, model in floats.items()
    }


def magnitude_pruned(model: keras.Model, sparsity: float) -> keras.Model:
    pruned = keras.models.clone_model(model)
    pruned.set_weights(model.get_weights())
    for layer in pruned.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, *rest = layer.get_weights()
            cut = np.quantile(np.abs(kernel), sparsity)
            layer.set_weights([np.where(np.abs(kernel) <= cut, 0.0, kernel), *rest])
    return pruned


for sparsity in (0.1, 0.25, 0.5):
    variants[f"pruned {sparsity:.0%}, float"] = {role: magnitude_pruned(m, sparsity) for role, m in floats.items()}
print(markdown_table(score_variants(variants, ROLES, n, f"python experiments/compression_cost.py {n} {net}")))
