"""The frame-interval / latency / multiplier front of a network set's firmware, from the estimate model
(:mod:`cdinn.firmware.estimate`), to choose the strategies and reuse factors of ``firmware/configs/<arch>.yml``.

The float network of the set (up to its logits) is converted once; each candidate design sets every
convolution's strategy (Latency or Resource) and reuse factor (for Resource, one that hls4ml accepts) on the
converted graph and is estimated. For each price ``lam`` (latency cycles per multiplier) a coordinate search
minimises ``latency + lam * multipliers`` with the frame interval within ``II_MAX`` cycles; then, from the best
point that fits the part, the lowest latency within its multipliers. Printed: the II, latency and multipliers of
both networks (the combined design) and the choices.

Usage: python experiments/firmware_front.py [NET] [II_MAX]
"""

import sys

# isort: off
import cdinn  # noqa: F401  (before TensorFlow: sets TF_USE_LEGACY_KERAS)
import tf_keras as keras

# isort: on
from cdinn.firmware.config import load_config
from cdinn.firmware.convert import convert
from cdinn.firmware.estimate import DEVICES, estimate_layers, summarise_estimate
from cdinn.model.inference import load_network, network_folder


def options(layer, backend) -> list[tuple[str, int]]:
    """(strategy, reuse) choices of one convolution: Latency with reuse 1-16, Resource with every reuse factor
    the backend accepts for its kernel (hls4ml's own rule)."""
    n_in = layer.get_attr("filt_height") ** 2 * layer.get_attr("n_chan")
    n_out = layer.get_attr("n_filt")
    latency = [("latency", r) for r in range(1, 17)]
    resource = [("resource", r) for r in backend.get_valid_reuse_factors(n_in, n_out)]
    return latency + resource


def evaluate(hls_model, choice: dict, clock_ns: float, part: str) -> dict:
    for layer in hls_model.get_layers():
        if layer.name in choice:
            layer.set_attr("strategy", choice[layer.name][0])
            layer.set_attr("reuse_factor", choice[layer.name][1])
    return summarise_estimate(estimate_layers(hls_model), clock_ns, part)


net = sys.argv[1] if len(sys.argv) > 1 else "default"
ii_max = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
model, card = load_network(str(network_folder(net)), "shape")
logits = keras.Model(model.input, model.get_layer("out_conv").output)
base = load_config(card["architecture"]["name"])
hls_model = convert(logits, base, f"build/firmware_front/{net}")
backend = hls_model.config.backend
convs = {
    layer.name: options(layer, backend) for layer in hls_model.get_layers() if layer.class_name.startswith("Conv2D")
}
print(
    f"{net} ({card['architecture']['name']}): {card['macs']} MACs per network; part {base.Part}, clock "
    f"{base.ClockPeriod} ns; both networks; II <= {ii_max} cycles"
)


def search(choice: dict, cost) -> dict:
    """Coordinate descent from ``choice``: one convolution's (strategy, reuse) at a time, while ``cost`` falls."""
    best = cost(evaluate(hls_model, choice, base.ClockPeriod, base.Part))
    for _ in range(6):
        changed = False
        for name, opts in convs.items():
            for opt in opts:
                trial = {**choice, name: opt}
                c = cost(evaluate(hls_model, trial, base.ClockPeriod, base.Part))
                if c < best:
                    best, choice, changed = c, trial, True
        if not changed:
            break
    return choice


def show(label: str, choice: dict) -> dict:
    s = evaluate(hls_model, choice, base.ClockPeriod, base.Part)
    compact = {name: f"{st[0].upper()}{r}" for name, (st, r) in choice.items()}
    feasible = "" if s["initiation_interval_cycles"] <= ii_max else " (II over the limit)"
    print(
        f"{label} | {s['initiation_interval_cycles']} | {s['frame_interval_us']:.2f} | {s['latency_us']:.1f} "
        f"| {2 * s['multipliers']} | {compact}{feasible}",
        flush=True,
    )
    return s


budget = DEVICES[base.Part.split("-")[0]]["dsp"]
print(
    "price (latency cycles per multiplier) | II (cycles) | frame interval (us) | latency (us) | multipliers "
    "| choices (L = Latency, R = Resource, with the reuse factor)"
)
fitting, previous = [], None
for lam in (1, 2, 3, 4, 5, 6, 7, 8, 10, 12):

    def priced(s: dict, lam=lam) -> float:
        return s["latency_cycles"] + lam * s["multipliers"] + 1e9 * (s["initiation_interval_cycles"] > ii_max)

    starts = [{name: ("latency", 16) for name in convs}] + ([previous] if previous else [])  # cheap, or warm
    choice = min(
        (search(start, priced) for start in starts),
        key=lambda c: priced(evaluate(hls_model, c, base.ClockPeriod, base.Part)),
    )
    previous = choice
    s = show(str(lam), choice)
    if s["initiation_interval_cycles"] <= ii_max and 2 * s["multipliers"] <= budget:
        fitting.append(choice)


def within_budget(s: dict) -> float:
    return s["latency_cycles"] + 1e9 * (s["initiation_interval_cycles"] > ii_max or 2 * s["multipliers"] > budget)


best = min(
    (search(choice, within_budget) for choice in fitting),
    key=lambda c: within_budget(evaluate(hls_model, c, base.ClockPeriod, base.Part)),
)
show(f"lowest latency within {budget} multipliers", best)

# How far the chosen design's numbers depend on the cycle constants read off hls4ml's code
import cdinn.firmware.estimate as model  # noqa: E402

print("sensitivity of that design | II (cycles) | latency (us)")
for pixel, window, depth in ((2, 4, 4), (4, 7, 8), (6, 10, 12), (8, 14, 16)):
    model.RESOURCE_PIXEL_CYCLES, model.RESOURCE_WINDOW_CYCLES, model.LATENCY_DEPTH_CYCLES = pixel, window, depth
    s = evaluate(hls_model, best, base.ClockPeriod, base.Part)
    print(
        f"Resource {pixel} cycles a pixel + R + {window} a window, Latency depth {depth} | "
        f"{s['initiation_interval_cycles']} | {s['latency_us']:.1f}"
    )
