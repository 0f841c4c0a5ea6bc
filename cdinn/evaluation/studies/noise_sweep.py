"""``cdinn noise-sweep``: every metric of a network set against the photon count per pattern.

The same objects (same seed) are simulated noiseless and with Poisson counting noise at each total photon
count; the networks see the noisy 32x32 amplitudes. The table also gives each median's change from the
noiseless one, in percent (positive = worse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdinn.api import reconstruct
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model import figures
from cdinn.model.metrics import METRICS
from cdinn.model.scoring import median_table, score_medians
from cdinn.model.test_set import test_set

HIGHER_IS_BETTER = {"support_iou"}


def noise_sweep(net: str, n: int, photons: list[float], out_dir: str | Path, command: str = "") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": command, "net": net, "n": n, "levels": {}}
    for level in [None, *photons]:
        data = test_set(n, photons=level)
        amplitude, phase = reconstruct(data.diffraction, net=net)
        name = "noiseless" if level is None else f"{level:.0e}"
        report["levels"][name] = score_medians(amplitude, phase, data)
    clean = report["levels"]["noiseless"]
    for values in report["levels"].values():
        values["worst_change_pct"] = max(
            100 * ((clean[k] - values[k]) if k in HIGHER_IS_BETTER else (values[k] - clean[k])) / abs(clean[k])
            for k in METRICS
        )
    write_json_atomic(out / "noise_sweep.json", report)
    write_text_atomic(out / "noise_sweep.md", markdown_table(report))
    _plot(report, out / "noise_sweep.png")
    return report


def _plot(report: dict, path: Path) -> None:
    levels = [k for k in report["levels"] if k != "noiseless"]
    values = {m: [report["levels"][k][m] for k in levels] for m in METRICS}
    figures.metric_panels(
        {"Poisson noise": ([float(k) for k in levels], values)},
        METRICS,
        path,
        "photons per pattern",
        ("noiseless", report["levels"]["noiseless"]),
        log_metrics=(),
    )


def markdown_table(report: dict) -> str:
    rows = [([level], m, [f"{m['worst_change_pct']:+.0f}%"]) for level, m in report["levels"].items()]
    head = f"Made by `{report['command']}` (network set `{report['net']}`, {report['n']} test patterns, medians)\n\n"
    return head + median_table(["photons"], ["worst change vs noiseless"], rows) + "\n"
