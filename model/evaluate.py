"""Side-by-side evaluation on a fresh simulated test set: float networks vs ER/HIO phase retrieval.

The test objects sit at random positions; each network gets the N x N pattern, ER/HIO the 2x oversampled
2N x 2N pattern of the same object (the N x N one is its every other pixel). Every result is registered to
the truth before scoring (:mod:`cdinn.model.metrics`). Time per pattern is measured in the same run for
each method, at batch 1 (latency) and over the whole batch (throughput).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cdinn.cards import card_path
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model import figures
from cdinn.model.conventions import complex_object, crop_centred, network_input, pad_centred
from cdinn.model.inference import load_network, network_folder, reconstruct_with
from cdinn.model.metrics import METRICS, reconstruction_metrics, register, summarise
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.simulate import SimulatedBatch, SimulationConfig, simulate_many
from cdinn.model.timing import keras_callable, latency_summary, time_calls, timed

ERHIO = "ER/HIO"


@dataclass
class EvaluateConfig:
    """``n`` test patterns from ``seed``; ``nets`` are network sets by name or folder."""

    n: int = 1000
    seed: int = 20_181_009
    nets: tuple[str, ...] = ("paper", "edge")
    phase_retrieval: PhaseRetrievalConfig = field(default_factory=PhaseRetrievalConfig)
    photons: float | None = None
    latency_repeats: int = 200
    erhio_latency_patterns: int = 5
    refine: int = 0  # >0: also the first network set seeding this many ER/HIO iterations


def test_set(cfg: EvaluateConfig) -> SimulatedBatch:
    """The evaluation patterns: random positions, oversampled pattern included."""
    sim = SimulationConfig(position="random", photons=cfg.photons)
    return simulate_many(cfg.n, cfg.seed, sim, oversampled=True)


def _network_results(name: str, data: SimulatedBatch, repeats: int) -> dict:
    folder = str(network_folder(name))
    models = {net: load_network(folder, net)[0] for net in ("shape", "phase")}
    (amplitude, phase), seconds = timed(lambda: reconstruct_with(models["shape"], models["phase"], data.diffraction))
    forwards = [keras_callable(m) for m in models.values()]
    one = network_input(data.diffraction[:1])
    latency = time_calls(lambda: [f(one) for f in forwards], repeats, warmup=3)
    return {"amplitude": amplitude, "phase": phase, "object": complex_object(amplitude, phase),
            "latency": latency_summary(latency), "throughput_s_per_pattern": seconds / len(data.diffraction)}


def _refined_results(name: str, nn: dict, data: SimulatedBatch, cfg: EvaluateConfig) -> dict:
    """The network set's objects refined by ``cfg.refine`` ER/HIO iterations; latency = network + refinement
    of one pattern at batch 1."""
    from cdinn.model.refine import refine

    (amplitude, phase), seconds = timed(lambda: refine(nn["amplitude"], nn["phase"], data.diffraction_oversampled,
                                                       cfg.refine))
    k = min(cfg.erhio_latency_patterns, len(data.diffraction))
    singles = iter(range(k))

    def one():
        i = next(singles)
        refine(nn["amplitude"][i : i + 1], nn["phase"][i : i + 1], data.diffraction_oversampled[i : i + 1], cfg.refine)

    refine_latency = time_calls(one, k, warmup=0)
    latency = latency_summary(refine_latency + nn["latency"]["median_us"] * 1e-6)
    return {"amplitude": amplitude, "phase": phase, "object": complex_object(amplitude, phase), "latency": latency,
            "throughput_s_per_pattern": seconds / len(data.diffraction) + nn["throughput_s_per_pattern"]}


def _erhio_results(data: SimulatedBatch, cfg: EvaluateConfig) -> dict:
    pr = cfg.phase_retrieval
    with tqdm(total=pr.iterations, desc="ER/HIO (batch)", unit="it", leave=False) as bar:
        result, seconds = timed(lambda: phase_retrieve(data.diffraction_oversampled, pr,
                                                       record=lambda i, _: bar.update(1)))
    k = min(cfg.erhio_latency_patterns, len(data.diffraction))
    singles = iter(data.diffraction_oversampled[i : i + 1] for i in range(k))
    latency = time_calls(lambda: phase_retrieve(next(singles), pr), k, warmup=0)
    size = data.amplitude.shape[-1]
    truth = pad_centred(complex_object(data.amplitude, data.phase), 2 * size)
    obj = crop_centred(register(result, truth), size).astype(np.complex64)
    return {"amplitude": np.abs(obj), "phase": np.angle(obj), "object": obj,
            "latency": latency_summary(latency),
            "throughput_s_per_pattern": seconds / len(data.diffraction)}


def markdown_table(report: dict) -> str:
    """The metrics and timing table (medians, tails) of an evaluation report, as markdown."""
    head = ("| method | chi^2 median / p90 / max | shape error median | support IoU median / min "
            "| phase RMSE (rad) median | amp.-weighted phase RMSE (rad) median "
            "| latency batch 1 (ms) | throughput (ms/pattern) | speed-up vs ER/HIO (batch 1) |")
    rows = [head, "|" + "---|" * 9]
    erhio_latency = report["methods"][ERHIO]["latency"]["median_us"]
    for name, method in report["methods"].items():
        s = method["summary"]
        lat = method["latency"]["median_us"]
        rows.append(
            f"| {name} | {s['chi2']['median']:.3g} / {s['chi2']['p90']:.3g} / {s['chi2']['max']:.3g} "
            f"| {s['shape_error']['median']:.3f} | {s['support_iou']['median']:.3f} / {s['support_iou']['min']:.2f} "
            f"| {s['phase_rmse']['median']:.3f} | {s['phase_rmse_weighted']['median']:.3f} "
            f"| {lat / 1e3:.3f} | {method['throughput_s_per_pattern'] * 1e3:.3f} | {erhio_latency / lat:.0f}x |")
    return "\n".join(rows)


def _figures(data: SimulatedBatch, results: dict, metrics: dict, out: Path, main: str) -> None:
    k = 6
    truth = {"|FT| (log)": np.log10(data.diffraction[:k] + 1e-3), "true amplitude": data.amplitude[:k],
             "true phase": data.phase[:k]}
    for name in (main, ERHIO):
        aligned = register(results[name]["object"][:k], complex_object(data.amplitude[:k], data.phase[:k]))
        truth[f"{name} amplitude"] = np.abs(aligned)
        truth[f"{name} phase"] = np.where(np.abs(aligned) > 0.1 * np.abs(aligned).max(), np.angle(aligned), 0)
    phase_rows = tuple(n for n in truth if n.endswith("phase"))
    figures.reconstruction_grid(truth, out / "fig3_examples.png", "test examples (registered)", phase_rows)
    figures.histogram({n: m["chi2"] for n, m in metrics.items()}, out / "fig4_chi2_histogram.png",
                      "chi^2", "reciprocal-space error")
    order = np.argsort(metrics[main]["chi2"])
    for label, idx in (("best", order[:5]), ("worst", order[-5:][::-1])):
        pred = register(results[main]["object"][idx], complex_object(data.amplitude[idx], data.phase[idx]))
        grid = {"|FT| (log)": np.log10(data.diffraction[idx] + 1e-3),
                "predicted |FT| (log)": np.log10(np.abs(np.fft.fftshift(np.fft.fft2(pred), axes=(-2, -1))) + 1e-3),
                "true amplitude": data.amplitude[idx], f"{main} amplitude": np.abs(pred),
                "true phase": data.phase[idx], f"{main} phase": np.angle(pred)}
        figures.reconstruction_grid(grid, out / f"fig{4 if label == 'best' else 5}_{label}.png",
                                    f"{label} 5 by chi^2 ({main})", ("true phase", f"{main} phase"))


def evaluate(cfg: EvaluateConfig, out_dir: str | Path, update_cards: bool = False, command: str = "") -> dict:
    """Run every method on the same test set; write report.json, table.md and figures to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = test_set(cfg)
    results = {name: _network_results(name, data, cfg.latency_repeats) for name in cfg.nets}
    if cfg.refine:
        first = cfg.nets[0]
        results[f"{first} + {cfg.refine} ER/HIO"] = _refined_results(first, results[first], data, cfg)
    results[ERHIO] = _erhio_results(data, cfg)
    metrics = {name: reconstruction_metrics(r["object"], data.amplitude, data.phase)
               for name, r in results.items()}
    report = {
        "command": command,
        "test_set": {"n": cfg.n, "seed": cfg.seed, "position": "random", "photons": cfg.photons},
        "refine_iterations": cfg.refine,
        "phase_retrieval": cfg.phase_retrieval.as_dict(),
        "methods": {name: {"summary": summarise(metrics[name]), "latency": r["latency"],
                           "throughput_s_per_pattern": r["throughput_s_per_pattern"]}
                    for name, r in results.items()},
    }
    np.savez_compressed(out / "per_pattern_metrics.npz",
                        **{f"{n.replace('/', '_')}_{m}": metrics[n][m] for n in metrics for m in METRICS})
    _figures(data, results, metrics, out, cfg.nets[0])
    write_json_atomic(out / "report.json", report)
    table = markdown_table(report)
    write_text_atomic(out / "table.md", f"Made by `{command}`\n\n{table}\n" if command else table + "\n")
    if update_cards:
        for name in cfg.nets:
            for net in ("shape", "phase"):
                path = card_path(network_folder(name) / f"{net}.keras")
                card = json.loads(path.read_text())
                card["test_metrics"] = dict(report["methods"][name], test_set=report["test_set"])
                write_json_atomic(path, card)
    return report
