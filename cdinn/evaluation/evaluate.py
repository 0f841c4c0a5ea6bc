"""Side-by-side evaluation on a fresh simulated test set: networks vs ER/HIO phase retrieval.

The test set is drawn from the broad distribution by default (:data:`cdinn.model.simulate.BROAD`; objects at
random positions); each network gets the N x N pattern, ER/HIO the 2x oversampled 2N x 2N pattern of the
same object (the N x N one is its every other pixel). Every result is registered to the truth before
scoring (:mod:`cdinn.model.metrics`). Reported besides the overall table: every method by regime (phase
gradient, object size: :mod:`cdinn.model.regimes`), the networks on phase-field families they never trained
on, and how well the first network's fit error (no ground truth) ranks its true error.

The chi^2 of the tables is the paper's, on the absolute intensity scale; the
"chi^2 at the best scale" column is the same error after the least-squares global intensity scale (the fit
error against the true pattern), which a measurement in arbitrary units cannot fix either: networks and the
refinement report amplitudes on the [0, 1] convention, ER/HIO in the pattern's units.

Networks run the way users call them, ``cdinn.reconstruct`` (onnxruntime, fit included). Speed is measured in
one place, the benchmark suite (``make bench``), not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cdinn.errors import CdinnError
from cdinn.inversion import parse_views
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model import figures
from cdinn.model.constraint import unconstrained
from cdinn.model.conventions import ROLES, complex_object, crop_centred, pad_centred
from cdinn.model.effects import EFFECTS
from cdinn.model.fit import fit_error
from cdinn.model.metrics import METRICS, reconstruction_metrics, register, summarise
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.regimes import regimes
from cdinn.model.scoring import Row, regime_table, spearman, summarise_masked, table
from cdinn.model.simulate import HELD_OUT_FAMILIES, SimulatedBatch
from cdinn.model.test_set import TEST_N, TEST_SEED, test_set
from cdinn.options import option, refine_budget

ERHIO = "ER/HIO"


@dataclass
class EvaluateConfig:
    """``n`` test patterns from ``seed`` of the distribution ``data`` ('broad' or 'paper'); ``nets`` are
    network sets by name or folder; ``families``: held-out phase families scored with ``family_n`` patterns
    each; ``refine``: 0, K iterations or 'auto' for the first set seeding ER/HIO."""

    n: int = option(TEST_N, "test patterns", flag="test_n")
    seed: int = option(TEST_SEED, "seed of the test set")
    data: str = option(
        "broad",
        "test distribution: 'broad' (phase gradients to ~2 rad/px, objects from ~15 px) "
        "or 'paper' (the paper's Methods ranges)",
    )
    nets: tuple[str, ...] = option(("default", "paper", "edge"), "comma-separated network sets (names or folders)")
    phase_retrieval: PhaseRetrievalConfig = field(default_factory=PhaseRetrievalConfig)
    photons: float | None = option(None, "Poisson noise at this total photon count per pattern (none: noiseless)")
    refine: int | str = option(
        0,
        "none, K ER/HIO iterations seeded by the first set, or 'auto' (only badly "
        "fitting patterns, each until its fit stops improving)",
        parse=refine_budget,
        metavar="none|K|auto",
    )
    families: tuple[str, ...] = option(HELD_OUT_FAMILIES, "held-out phase families scored beside the test set")
    family_n: int = option(300, "patterns per held-out family")
    effects: tuple[str, ...] = option(
        tuple(EFFECTS),
        "detector effects scored beside the ideal patterns (labels of cdinn.model.effects.EFFECTS; empty: none)",
    )
    effect_n: int = option(300, "patterns per detector effect")
    views: int = option(
        1,
        "views of each pattern (1, 2, 4, 8: cdinn.model.views) the first set also sees, the best-fitting estimate "
        "kept per frame: above 1, a row of its own, and the refinement's seed",
    )


def _entry(result, **extra) -> dict:
    """One method's entry: the ``cdinn.reconstruct`` result and its object."""
    return {"result": result, "object": complex_object(result.amplitude, result.phase), **extra}


def _network_results(name: str, data: SimulatedBatch, views: int = 1) -> dict:
    from cdinn.api import reconstruct

    return _entry(reconstruct(data.diffraction, net=name, mask=data.mask, views=views))


def _refined_results(name: str, data: SimulatedBatch, cfg: EvaluateConfig) -> dict:
    """The network set seeding ER/HIO (``cfg.refine``: K iterations or 'auto') on the oversampled patterns."""
    from cdinn.api import reconstruct

    result = reconstruct(data.oversampled, net=name, refine=cfg.refine, mask=data.mask_oversampled, views=cfg.views)
    return _entry(
        result, refined_fraction=float(np.mean(result.refined)), iterations_mean=float(np.mean(result.iterations))
    )


def erhio_objects(data: SimulatedBatch, pr: PhaseRetrievalConfig | None = None) -> np.ndarray:
    """(B, N, N) complex64: the paper's ER/HIO (``pr``, its 620 iterations unless told) on the oversampled
    patterns, mask-aware (the modulus constraint skips unmeasured pixels), registered to the truth and cropped
    to the networks' grid."""
    pr = pr or PhaseRetrievalConfig()
    with tqdm(total=pr.iterations, desc="ER/HIO (batch)", unit="it", leave=False) as bar:
        result = phase_retrieve(data.oversampled, pr, record=lambda i, _: bar.update(1), mask=data.mask_oversampled)
    size = data.amplitude.shape[-1]
    truth = pad_centred(complex_object(data.amplitude, data.phase), 2 * size)
    return crop_centred(register(result, truth), size).astype(np.complex64)


def markdown_table(report: dict) -> str:
    """The metrics table (medians, tails) of an evaluation report, as markdown. Speed is measured by the
    benchmark suite (``make bench``), not here."""
    rows: list[Row] = []
    for name, method in report["methods"].items():
        refined = (
            f"{method['refined_fraction']:.0%} refined, {method['iterations_mean']:.0f} iterations on average"
            if "refined_fraction" in method
            else ""
        )
        rows.append(([name], method["summary"], [f"{method['chi2_best_scale_median']:.3g}", refined]))
    return table(["method"], ["chi^2 at the best scale median", "refinement"], rows)


def family_table(report: dict) -> str:
    """Medians of each network on each held-out phase family."""
    rows: list[Row] = [
        ([family, name], summary, [])
        for family, methods in report["held_out_families"].items()
        for name, summary in methods.items()
    ]
    return table(["held-out family", "method"], [], rows)


def _figures(data: SimulatedBatch, results: dict, metrics: dict, out: Path, main: str) -> None:
    k = 6
    truth = {
        "|FT| (log)": np.log10(data.diffraction[:k] + 1e-3),
        "true amplitude": data.amplitude[:k],
        "true phase": data.phase[:k],
    }
    for name in (main, ERHIO):
        aligned = register(results[name]["object"][:k], complex_object(data.amplitude[:k], data.phase[:k]))
        truth[f"{name} amplitude"] = np.abs(aligned)
        truth[f"{name} phase"] = np.where(np.abs(aligned) > 0.1 * np.abs(aligned).max(), np.angle(aligned), 0)
    phase_rows = tuple(n for n in truth if n.endswith("phase"))
    figures.reconstruction_grid(truth, out / "fig3_examples.png", "test examples (registered)", phase_rows)
    figures.histogram(
        {n: m["chi2"] for n, m in metrics.items()}, out / "fig4_chi2_histogram.png", "chi^2", "reciprocal-space error"
    )
    order = np.argsort(metrics[main]["chi2"])
    for label, idx in (("best", order[:5]), ("worst", order[-5:][::-1])):
        pred = register(results[main]["object"][idx], complex_object(data.amplitude[idx], data.phase[idx]))
        grid = {
            "|FT| (log)": np.log10(data.diffraction[idx] + 1e-3),
            "predicted |FT| (log)": np.log10(np.abs(np.fft.fftshift(np.fft.fft2(pred), axes=(-2, -1))) + 1e-3),
            "true amplitude": data.amplitude[idx],
            f"{main} amplitude": np.abs(pred),
            "true phase": data.phase[idx],
            f"{main} phase": np.angle(pred),
        }
        figures.reconstruction_grid(
            grid,
            out / f"fig{4 if label == 'best' else 5}_{label}.png",
            f"{label} 5 by chi^2 ({main})",
            ("true phase", f"{main} phase"),
        )


def _fit_ranking(result, metrics: dict[str, np.ndarray], out: Path, name: str) -> dict:
    """How well the network's own fit (no ground truth) ranks its true errors: Spearman correlations and a
    scatter plot against the true chi^2."""
    fit = np.asarray(result.fit, np.float64)
    figures.scatter(
        fit,
        metrics["chi2"],
        out / "fit_vs_chi2.png",
        "fit error (measured pattern only)",
        "true chi^2",
        f"{name}: fit error vs true error",
    )
    return {f"spearman_{m}": spearman(fit, metrics[m]) for m in ("chi2", "shape_error", "phase_rmse_weighted")}


def _held_out(cfg: EvaluateConfig) -> dict:
    """Median summaries of every network on each held-out phase family (``family_n`` patterns each)."""
    from cdinn.api import reconstruct

    out: dict[str, dict] = {}
    for family in cfg.families:
        data = test_set(cfg.family_n, cfg.seed, cfg.data, cfg.photons, family)
        out[family] = {}
        for name in cfg.nets:
            r = reconstruct(data.diffraction, net=name)
            out[family][name] = summarise(
                reconstruction_metrics(complex_object(r.amplitude, r.phase), data.amplitude, data.phase)
            )
    return out


def _methods(cfg: EvaluateConfig, data: SimulatedBatch) -> dict[str, dict]:
    """Every method's result on ``data``: each network set, the first with ``cfg.views`` views, the first seeding
    ER/HIO (``cfg.refine``, with those views), ER/HIO."""
    results = {name: _network_results(name, data) for name in cfg.nets}
    first = cfg.nets[0] if cfg.views == 1 else f"{cfg.nets[0]}, {cfg.views} views"
    if cfg.views > 1:
        results[first] = _network_results(cfg.nets[0], data, cfg.views)
    if cfg.refine:
        results[f"{first} + {cfg.refine} ER/HIO"] = _refined_results(cfg.nets[0], data, cfg)
    results[ERHIO] = {"object": erhio_objects(data, cfg.phase_retrieval)}
    return results


def _by_effect(cfg: EvaluateConfig) -> dict:
    """Summaries of every method under each detector effect of ``cfg.effects`` (``effect_n`` patterns each,
    the same objects for every effect), beside the ideal patterns."""
    unknown = sorted(set(cfg.effects) - set(EFFECTS))
    if unknown:
        raise CdinnError(f"unknown detector effect(s) {unknown}; known: {list(EFFECTS)}")
    out: dict[str, dict] = {}
    for label in ("ideal", *cfg.effects):
        regime, model = ("ideal", None) if label == "ideal" else EFFECTS[label]
        data = test_set(cfg.effect_n, cfg.seed, cfg.data, experiment=model)
        results = _methods(cfg, data)
        out[label] = {
            "regime": regime,
            "masked_fraction": 0.0 if data.mask is None else float(data.mask.mean()),
            "methods": {
                name: summarise(reconstruction_metrics(r["object"], data.amplitude, data.phase))
                for name, r in results.items()
            },
            "unconstrained": {
                name: float(np.median(unconstrained(np.abs(r["object"]), data.mask))) for name, r in results.items()
            },
        }
    return out


def effect_table(report: dict) -> str:
    """Medians and tails of every method under each detector effect, with the median of its results'
    unconstrained-mode figure (:mod:`cdinn.model.constraint`, on the networks' grid)."""
    rows: list[Row] = [
        ([label, entry["regime"], name], summary, [f"{entry['unconstrained'][name]:.2f}"])
        for label, entry in report["effects"].items()
        for name, summary in entry["methods"].items()
    ]
    return table(["detector effect", "regime", "method"], ["unconstrained (median)"], rows)


def evaluate(cfg: EvaluateConfig, out_dir: str | Path, update_cards: bool = False, command: str = "") -> dict:
    """Run every method on the same test set; write report.json, table.md (overall, by regime, held-out
    families, fit ranking), per-pattern metrics and figures to ``out_dir``."""
    parse_views(cfg.views)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = test_set(cfg.n, cfg.seed, cfg.data, cfg.photons)
    results = _methods(cfg, data)
    metrics = {name: reconstruction_metrics(r["object"], data.amplitude, data.phase) for name, r in results.items()}
    masks = regimes(data.amplitude, data.phase)
    report: dict[str, Any] = {
        "command": command,
        "test_set": {"n": cfg.n, "seed": cfg.seed, "data": cfg.data, "position": "random", "photons": cfg.photons},
        "refine": cfg.refine,
        "views": cfg.views,
        "phase_retrieval": cfg.phase_retrieval.as_dict(),
        "methods": {
            name: {
                "summary": summarise(metrics[name]),
                "chi2_best_scale_median": float(np.median(fit_error(r["object"], data.diffraction))),
                **{k: r[k] for k in ("refined_fraction", "iterations_mean") if k in r},
            }
            for name, r in results.items()
        },
        "regimes": {
            regime: {"count": int(mask.sum()), "methods": {n: summarise_masked(m, mask) for n, m in metrics.items()}}
            for regime, mask in masks.items()
        },
        "fit_ranking": _fit_ranking(results[cfg.nets[0]]["result"], metrics[cfg.nets[0]], out, cfg.nets[0]),
        "held_out_families": _held_out(cfg),
        "effects": _by_effect(cfg) if cfg.effects else {},
    }
    arrays = {f"{n.replace('/', '_')}_{m}": metrics[n][m] for n in metrics for m in METRICS}
    np.savez_compressed(out / "per_pattern_metrics.npz", fit=np.asarray(results[cfg.nets[0]]["result"].fit), **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
    _figures(data, results, metrics, out, cfg.nets[0])
    write_json_atomic(out / "report.json", report)
    ranking = ", ".join(f"{k.removeprefix('spearman_')} {v:.3f}" for k, v in report["fit_ranking"].items())
    text = "\n\n".join(
        [
            markdown_table(report),
            "By regime:\n\n" + regime_table(metrics, masks),
            f"Held-out phase families ({cfg.family_n} patterns each):\n\n" + family_table(report),
            *(
                [
                    f"Detector effects ({cfg.effect_n} patterns each, the same objects; networks get the "
                    "mask of unmeasured pixels, ER/HIO is mask-aware):\n\n" + effect_table(report)
                ]
                if cfg.effects
                else []
            ),
            f"Spearman correlation of {cfg.nets[0]}'s fit error with its true errors: {ranking}",
        ]
    )
    write_text_atomic(out / "table.md", (f"Made by `{command}`\n\n" if command else "") + text + "\n")
    if update_cards:
        from cdinn.cards import update_card
        from cdinn.model.inference import network_folder

        for name in cfg.nets:
            for role in ROLES:
                update_card(
                    network_folder(name) / f"{role}.keras",
                    test_metrics=dict(report["methods"][name], test_set=report["test_set"]),
                )
    return report
