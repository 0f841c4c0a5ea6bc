"""Pilot: architecture candidates for the default network, each trained briefly on the broad distribution
with the same budget and seed, scored on one broad test set (random positions, registered metrics).

Usage: python experiments/pilot_architectures.py OUT_DIR [EXAMPLES] [EPOCHS]
Writes OUT_DIR/pilot.json and prints one markdown row per candidate.
"""

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import cdinn  # noqa: F401
from cdinn.model import architectures
from cdinn.model.inference import load_network, reconstruct_with
from cdinn.model.regimes import regimes
from cdinn.model.scoring import score
from cdinn.model.simulate import broad, simulate_many
from cdinn.model.train import TrainConfig, train

base = architectures.ARCHITECTURES["robust"]
CANDIDATES = {
    "r12": base,
    "r12-skips": replace(base, skips=True),
    "r16-bottleneck": replace(base, filters=(16, 32, 64), bottleneck_convs=1),
}

out = Path(sys.argv[1])
examples = int(sys.argv[2]) if len(sys.argv) > 2 else 25_600
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 1
test = simulate_many(500, 777, broad(position="random"))
masks = regimes(test.amplitude, test.phase)
rows = {}
for name, arch in CANDIDATES.items():
    architectures.ARCHITECTURES[name] = replace(arch, name=name)
    cfg = TrainConfig(config=name, examples=examples, val=2000, epochs=epochs, simulation=broad(), seed=0)
    start = time.perf_counter()
    train(cfg, out / name, progress=False)
    wall = time.perf_counter() - start
    folder = str(out / name)
    amp, ph = reconstruct_with(load_network(folder, "shape")[0], load_network(folder, "phase")[0], test.diffraction)
    m = score(amp, ph, test)
    strong = masks["strong phase (> 1 rad/px)"]
    small = masks["small objects (< 50 px)"]
    rows[name] = {
        "macs": architectures.describe(architectures.ARCHITECTURES[name])["macs"],
        "train_s": wall,
        **{k: float(np.median(v)) for k, v in m.items()},
        "chi2_strong": float(np.median(m["chi2"][strong])),
        "chi2_small": float(np.median(m["chi2"][small])),
        "iou_small": float(np.median(m["support_iou"][small])),
    }
    print(name, json.dumps(rows[name]), flush=True)
(out / "pilot.json").write_text(json.dumps({"examples": examples, "epochs": epochs, "rows": rows}, indent=1))
