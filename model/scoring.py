"""Scoring and its tables: per-pattern metrics -> summaries -> markdown, used by every report.

:data:`COLUMNS` are the metric columns every table shows (median, with chi^2's tail), so the header is
written once; :func:`method_rows` renders one row per method, :func:`regime_table` one row per (regime,
method), :func:`spearman` ranks a no-ground-truth score against a true error.
"""

from __future__ import annotations

import numpy as np

from cdinn.model.conventions import complex_object
from cdinn.model.metrics import reconstruction_metrics, summarise

COLUMNS = (
    "chi^2 median / p90 / max",
    "shape error median",
    "support IoU median / min",
    "phase RMSE (rad) median",
    "amp.-weighted phase RMSE (rad) median",
)
Row = tuple[list[str], dict, list[str]]
"""One table row: label cells, the metric summary (or medians), extra cells."""
MEDIAN_COLUMNS = ("chi^2", "shape error", "support IoU", "phase RMSE (rad)", "amp.-weighted phase RMSE (rad)")


def score(amplitude: np.ndarray, phase: np.ndarray, truth) -> dict[str, np.ndarray]:
    """Per-pattern registered metrics of a reconstruction ((B, N, N) amplitude in [0, 1] and phase in radians)
    against ``truth``, a :class:`cdinn.model.simulate.SimulatedBatch` (see :mod:`cdinn.model.metrics`)."""
    return reconstruction_metrics(complex_object(amplitude, phase), truth.amplitude, truth.phase)


def score_summary(amplitude: np.ndarray, phase: np.ndarray, truth) -> dict:
    """:func:`summarise` of :func:`score`: what a table row shows."""
    return summarise(score(amplitude, phase, truth))


def score_medians(amplitude: np.ndarray, phase: np.ndarray, truth) -> dict[str, float]:
    """The median of every :func:`score` metric (for curves against a parameter)."""
    return {name: float(np.median(values)) for name, values in score(amplitude, phase, truth).items()}


def metric_cells(summary: dict) -> list[str]:
    """The :data:`COLUMNS` cells of one :func:`cdinn.model.metrics.summarise` result."""
    s = summary
    return [
        f"{s['chi2']['median']:.3g} / {s['chi2']['p90']:.3g} / {s['chi2']['max']:.3g}",
        f"{s['shape_error']['median']:.3f}",
        f"{s['support_iou']['median']:.3f} / {s['support_iou']['min']:.2f}",
        f"{s['phase_rmse']['median']:.3f}",
        f"{s['phase_rmse_weighted']['median']:.3f}",
    ]


def table(first: list[str], extra: list[str], rows: list[Row]) -> str:
    """A markdown table: ``first`` label columns, the metric :data:`COLUMNS`, then ``extra`` columns; each row
    is (labels, summary, extra cells)."""
    head = [*first, *COLUMNS, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([*labels, *metric_cells(summary), *cells]) + " |" for labels, summary, cells in rows]
    return "\n".join(lines)


def median_table(first: list[str], extra: list[str], rows: list[Row]) -> str:
    """Like :func:`table`, with the :data:`MEDIAN_COLUMNS` of :func:`score_medians` results."""
    head = [*first, *MEDIAN_COLUMNS, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for labels, m, cells in rows:
        metric = [
            f"{m['chi2']:.3g}",
            f"{m['shape_error']:.3f}",
            f"{m['support_iou']:.3f}",
            f"{m['phase_rmse']:.3f}",
            f"{m['phase_rmse_weighted']:.3f}",
        ]
        lines.append("| " + " | ".join([*labels, *metric, *cells]) + " |")
    return "\n".join(lines)


def summarise_masked(metrics: dict[str, np.ndarray], mask: np.ndarray) -> dict | None:
    """:func:`summarise` of the patterns in ``mask``, or None if there are none."""
    return summarise({k: v[mask] for k, v in metrics.items()}) if mask.any() else None


def regime_table(metrics: dict[str, dict[str, np.ndarray]], masks: dict[str, np.ndarray]) -> str:
    """One row per regime and method (methods in ``metrics``), with the regime's pattern count."""
    rows: list = []
    for regime, mask in masks.items():
        for method, values in metrics.items():
            summary = summarise_masked(values, mask)
            if summary is not None:
                rows.append(([regime, str(int(mask.sum())), method], summary, []))
    return table(["regime", "patterns", "method"], [], rows)


def spearman(score: np.ndarray, truth: np.ndarray) -> float:
    """Spearman rank correlation of two (B,) arrays."""
    from scipy.stats import spearmanr

    return float(spearmanr(score, truth).statistic)
