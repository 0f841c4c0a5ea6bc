"""What quantization alone costs the default pair: the float networks put through ``quantized_network`` (the
calibrated QKeras twin ``cdinn quantize`` fine-tunes) with no pruning and no fine-tuning, at several weight
and activation bit widths, scored on the evaluation test set (broad distribution, random positions, seed
20181009). This is the starting point quantization-aware fine-tuning works from; the table in
``model/weights/<set>-q/table.md`` is where it ends.

Usage: python experiments/weight_bits.py [N] [NET]   (defaults: 1000, default)
"""

import sys

from cdinn.model.architectures import NETS
from cdinn.model.inference import load_network, network_folder
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.pipeline import fine_tuning_data, markdown_table, score_variants
from cdinn.quantize.qat import quantized_network

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
net = sys.argv[2] if len(sys.argv) > 2 else "default"
folder = str(network_folder(net))
# 2000 calibration patterns drawn as cdinn quantize draws them (its default seed)
x = fine_tuning_data(folder, NETS, QuantConfig(examples=2000, val=0))[1]
floats = {role: load_network(folder, role)[0] for role in NETS}
variants = {"float": floats}
for weight_bits, activation_bits in ((6, 10), (7, 10), (8, 10), (9, 10), (10, 10), (12, 10), (8, 12), (10, 8)):
    cfg = QuantConfig(weight_bits=weight_bits, activation_bits=activation_bits)
    variants[f"weights {weight_bits} b, activations {activation_bits} b"] = {
        role: quantized_network(model, cfg, x) for role, model in floats.items()}
print(markdown_table(score_variants(variants, NETS, n, f"python experiments/weight_bits.py {n} {net}")))
