"""``cdinn refine-curve``: reconstruction quality against iteration count for NN-seeded refinement and for
ER/HIO from random starts, measured in one run on the same test patterns (with the time each took)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cdinn.api import reconstruct
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model import figures
from cdinn.model.conventions import complex_object, crop_centred, pad_centred
from cdinn.model.metrics import METRICS, register
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.refine import refine
from cdinn.model.scoring import median_table, score_medians
from cdinn.model.test_set import TEST_SEED, test_set
from cdinn.model.timing import timed


def refine_curve(
    net: str, n: int, iterations: list[int], out_dir: str | Path, seed: int = TEST_SEED, command: str = ""
) -> dict:
    """Medians of every metric and seconds per pattern, per iteration count, for both methods."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = test_set(n, seed)
    size = data.amplitude.shape[-1]
    truth = pad_centred(complex_object(data.amplitude, data.phase), 2 * size)
    reconstruct(data.diffraction[:1], net=net)  # load the networks and build their graphs outside the timing
    (amplitude, phase), nn_seconds = timed(lambda: reconstruct(data.diffraction, net=net))
    report: dict[str, Any] = {"command": command, "net": net, "n": n, "iterations": iterations, "nn": {}, "erhio": {}}
    for k in iterations:
        (ra, rp), seconds = timed(partial(refine, amplitude, phase, data.oversampled, k))
        report["nn"][k] = dict(score_medians(ra, rp, data), seconds_per_pattern=(nn_seconds + seconds) / n)
        if k > 0:
            cfg = PhaseRetrievalConfig(
                iterations=k,
                cycle=min(100, k),
                hio_per_cycle=int(0.8 * min(100, k)),
                average_last=min(20, max(1, k // 5)),
            )
            result, seconds = timed(partial(phase_retrieve, data.oversampled, cfg))
            obj = crop_centred(register(result, truth), size)
            report["erhio"][k] = dict(score_medians(np.abs(obj), np.angle(obj), data), seconds_per_pattern=seconds / n)
        write_json_atomic(out / "refine_curve.json", report)
    _plot(report, out / "refine_curve.png")
    write_text_atomic(out / "refine_curve.md", markdown_table(report))
    return report


def _plot(report: dict, path: Path) -> None:
    series = {}
    for label, key in ((f"{report['net']} + refinement", "nn"), ("ER/HIO, random start", "erhio")):
        ks = [k for k in report["iterations"] if k in report[key] and k > 0]
        series[label] = (ks, {m: [report[key][k][m] for k in ks] for m in METRICS})
    reference = ("network alone", report["nn"][0]) if 0 in report["nn"] else None
    figures.metric_panels(series, METRICS, path, "ER/HIO iterations", reference)


def markdown_table(report: dict) -> str:
    rows = [
        ([label, str(k)], m, [f"{m['seconds_per_pattern'] * 1e3:.2f}"])
        for key, label in (("nn", f"{report['net']} + refinement"), ("erhio", "ER/HIO random start"))
        for k, m in report[key].items()
    ]
    head = f"Made by `{report['command']}` ({report['n']} test patterns, medians)\n\n"
    return head + median_table(["method", "iterations"], ["ms per pattern"], rows) + "\n"
