"""The frame-interval / latency / multiplier front of a network set's firmware, from the estimate model
(:mod:`cdinn.firmware.estimate`), to choose the reuse factors of ``firmware/configs/<arch>.yml``.

For each target frame interval T (cycles), every convolution gets the largest reuse factor hls4ml accepts
(its validity rule for the Resource strategy) whose cycles per frame (output pixels x reuse) stay within T;
the float network of the set (up to its logits) is converted with those factors and estimated. Printed per T:
the II, the latency at the part's clock and the multipliers of both networks (the combined design).

Usage: python experiments/firmware_front.py [NET] [T ...]
"""

import dataclasses
import math
import sys

# isort: off
import cdinn  # noqa: F401  (before TensorFlow: sets TF_USE_LEGACY_KERAS)
import tf_keras as keras
# isort: on
from cdinn.firmware.config import load_config
from cdinn.firmware.convert import convert
from cdinn.firmware.estimate import estimate_layers, summarise_estimate
from cdinn.model.inference import load_network, network_folder


def valid_reuse(n_in: int, n_out: int, reuse: int) -> bool:
    """hls4ml's rule for a Resource-strategy dense/conv kernel of n_in inputs and n_out outputs."""
    mult_limit = math.ceil(n_in * n_out / min(n_in, reuse))
    ok = mult_limit % n_out == 0 or reuse >= n_in
    ok = ok and (reuse % n_in == 0 or reuse < n_in)
    return ok and (n_in * n_out) % reuse == 0


net = sys.argv[1] if len(sys.argv) > 1 else "default"
targets = [int(t) for t in sys.argv[2:]] or [1500, 2300, 3000, 3500, 4700]
model, card = load_network(str(network_folder(net)), "shape")
logits = keras.Model(model.input, model.get_layer("out_conv").output)
base = load_config(card["architecture"]["name"])
print(f"{net} ({card['architecture']['name']}): {card['macs']} MACs per network; part {base.Part}, "
      f"clock {base.ClockPeriod} ns; both networks")
print("target | II (cycles) | frame interval (us) | latency (us) | multipliers | BRAM18 | reuse factors")
for target in targets:
    reuse = {}
    for layer in logits.layers:
        if isinstance(layer, keras.layers.Conv2D):
            n_in = layer.kernel_size[0] * layer.kernel_size[1] * layer.input_shape[-1]
            pixels = layer.output_shape[1] * layer.output_shape[2]
            reuse[layer.name] = max(r for r in range(1, n_in * layer.filters + 1)
                                    if valid_reuse(n_in, layer.filters, r) and pixels * r <= max(target, pixels))
    cfg = dataclasses.replace(base, ReuseFactor={"default": 1, **reuse})
    layers = estimate_layers(convert(logits, cfg, f"build/firmware_front/{target}"))
    s = summarise_estimate(layers, cfg.ClockPeriod, cfg.Part)
    print(f"{target} | {s['initiation_interval_cycles']} | {s['frame_interval_us']:.2f} | {s['latency_us']:.1f} "
          f"| {2 * s['multipliers']} | {2 * s['bram18']} | {reuse}")
