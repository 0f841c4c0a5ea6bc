"""Scoring and its tables: per-pattern metrics -> summaries -> markdown, used by every report.

:data:`COLUMNS` are the metric columns every table shows (median, with chi^2's tail), so the header is
written once; :func:`method_rows` renders one row per method, :func:`regime_table` one row per (regime,
method), :func:`spearman` ranks a no-ground-truth score against a true error.
"""

from __future__ import annotations

import numpy as np

from cdinn.model.metrics import summarise

COLUMNS = ("chi^2 median / p90 / max", "shape error median", "support IoU median / min", "phase RMSE (rad) median",
           "amp.-weighted phase RMSE (rad) median")


def metric_cells(summary: dict) -> list[str]:
    """The :data:`COLUMNS` cells of one :func:`cdinn.model.metrics.summarise` result."""
    s = summary
    return [f"{s['chi2']['median']:.3g} / {s['chi2']['p90']:.3g} / {s['chi2']['max']:.3g}",
            f"{s['shape_error']['median']:.3f}",
            f"{s['support_iou']['median']:.3f} / {s['support_iou']['min']:.2f}",
            f"{s['phase_rmse']['median']:.3f}", f"{s['phase_rmse_weighted']['median']:.3f}"]


def table(first: list[str], extra: list[str], rows: list[tuple[list[str], dict, list[str]]]) -> str:
    """A markdown table: ``first`` label columns, the metric :data:`COLUMNS`, then ``extra`` columns; each row
    is (labels, summary, extra cells)."""
    head = [*first, *COLUMNS, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([*labels, *metric_cells(summary), *cells]) + " |" for labels, summary, cells in rows]
    return "\n".join(lines)


def summarise_masked(metrics: dict[str, np.ndarray], mask: np.ndarray) -> dict | None:
    """:func:`summarise` of the patterns in ``mask``, or None if there are none."""
    return summarise({k: v[mask] for k, v in metrics.items()}) if mask.any() else None


def regime_table(metrics: dict[str, dict[str, np.ndarray]], masks: dict[str, np.ndarray]) -> str:
    """One row per regime and method (methods in ``metrics``), with the regime's pattern count."""
    rows = []
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
