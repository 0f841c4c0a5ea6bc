"""``cdinn ablation``: train variants of the recipe on the same data budget and score them on one test set.

Each variant changes one thing with respect to the previous row (see :data:`VARIANTS`); all are trained
from the same seed on the same number of simulated examples and evaluated on the same fresh test set
(objects at random positions, registered metrics). The result is the ablation table in ``docs/quality.md``.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model.conventions import ROLES
from cdinn.model.inference import load_network, outputs_to_object, reconstruct_with
from cdinn.model.scoring import Row, score_summary, table
from cdinn.model.test_set import TEST_N, test_set
from cdinn.model.train import PAPER_RECIPE, TrainConfig, train

BUDGET = ("config", "examples", "val", "epochs", "seed")  # what must match to keep an earlier run's rows
# name -> (what changes, overrides of the paper's recipe (PAPER_RECIPE), two_head)
VARIANTS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "paper": ("two networks, per-pixel cross-entropy (the paper)", {"loss": "bce"}, False),
    "joint": ("+ trained together, phase loss 1-cos weighted by the true amplitude", {"loss": "joint"}, False),
    "twin": ("+ twin image accepted as correct (min over target and twin)", {"loss": "twin"}, False),
    "twin+cosine": ("+ cosine learning-rate decay", {"loss": "twin", "lr_schedule": "cosine"}, False),
    "twin+cosine+noise": (
        "+ Poisson noise augmentation, 1e4-1e7 photons on 75% of examples",
        {"loss": "twin", "lr_schedule": "cosine", "photon_range": (1e4, 1e7)},
        False,
    ),
    "twin+batch64": (
        "twin with batch 64 instead of 256 (4x the optimizer steps, same data)",
        {"loss": "twin", "batch": 64},
        False,
    ),
    "twin+batch64+cosine": (
        "+ cosine learning-rate decay",
        {"loss": "twin", "batch": 64, "lr_schedule": "cosine"},
        False,
    ),
    "twin+batch64+cosine+fresh": (
        "+ a newly simulated training set every epoch (the default recipe)",
        {"loss": "twin", "batch": 64, "lr_schedule": "cosine", "fresh": True},
        False,
    ),
    "twin+batch64+cosine+chi2": (
        "+ reciprocal-space error (chi^2) of the predicted object added to the loss",
        {"loss": "twin+chi2", "batch": 64, "lr_schedule": "cosine"},
        False,
    ),
    "twin+batch64+cosine+support": (
        "+ soft support-IoU term (1 - soft IoU at the metric's threshold) in the loss",
        {"loss": "twin+support", "batch": 64, "lr_schedule": "cosine"},
        False,
    ),
    "two-head": (
        "twin+cosine with one shared encoder and two decoders (PtychoNN style)",
        {"loss": "twin", "lr_schedule": "cosine"},
        True,
    ),
}


def _two_head_run(cfg: TrainConfig, x_test: np.ndarray):
    import tf_keras as keras

    from cdinn.model.architectures import build_two_head, get_architecture
    from cdinn.model.dataset import make_dataset, network_target
    from cdinn.model.losses import get_loss
    from cdinn.model.train import optimizer, training_data

    keras.utils.set_random_seed(cfg.seed)
    model = build_two_head(get_architecture(cfg.config))
    model.compile(optimizer=optimizer(cfg), loss=get_loss(cfg.loss))
    x, data = training_data(cfg)
    y = np.concatenate([network_target(data, role) for role in ROLES], axis=-1)
    model.fit(
        make_dataset(x[: cfg.examples], y[: cfg.examples], cfg.batch, True, cfg.seed),
        validation_data=make_dataset(x[cfg.examples :], y[cfg.examples :], cfg.batch, False, cfg.seed),
        epochs=cfg.epochs,
        verbose=0,
    )
    out_maps = model.predict(x_test, batch_size=256, verbose=0)
    return outputs_to_object(out_maps[..., 0], out_maps[..., 1])


def run_ablation(
    base: TrainConfig, out_dir: str | Path, test_n: int = TEST_N, variants: list[str] | None = None, command: str = ""
) -> dict:
    """Train and score each variant (``base``'s budget and seed with the paper's recipe plus the variant's
    changes); write report.json and table.md to ``out_dir``."""
    from cdinn.model.conventions import network_input

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = replace(base, **PAPER_RECIPE)
    data = test_set(test_n)
    x_test = network_input(data.diffraction)
    report: dict[str, Any] = {
        "commands": [command],
        "base": {k: v for k, v in vars(base).items() if k != "simulation"},
        "test_n": test_n,
        "variants": {},
    }
    previous = out / "report.json"
    if previous.is_file():  # keep the variants of an earlier run with the same budget (re-run only some)
        earlier = json.loads(previous.read_text())
        same_budget = all(earlier.get("base", {}).get(k) == report["base"][k] for k in BUDGET)
        if same_budget and earlier.get("test_n") == test_n:
            report["variants"] = earlier["variants"]
            report["commands"] = list(dict.fromkeys(earlier.get("commands", [earlier.get("command")]) + [command]))
    for name in variants or list(VARIANTS):
        what, overrides, two_head = VARIANTS[name]
        cfg = replace(base, **overrides)
        start = time.perf_counter()
        if two_head:
            amplitude, phase = _two_head_run(cfg, x_test)
        else:
            folder = out / name
            train(cfg, folder, progress=False)
            load_network.cache_clear()
            models = [load_network(str(folder), role)[0] for role in ROLES]
            amplitude, phase = reconstruct_with(models[0], models[1], data.diffraction)
        report["variants"][name] = {
            "change": what,
            "summary": score_summary(amplitude, phase, data),
            "seconds": round(time.perf_counter() - start, 1),
        }
        write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "table.md", markdown_table(report))
    return report


def markdown_table(report: dict) -> str:
    rows: list[Row] = [
        ([name, report["variants"][name]["change"]], report["variants"][name]["summary"], [])
        for name in sorted(report["variants"], key=list(VARIANTS).index)
    ]
    made = " then ".join(f"`{c}`" for c in report["commands"])
    head = f"Made by {made} ({report['test_n']} test patterns)\n\n"
    return head + table(["variant", "change"], [], rows) + "\n"
