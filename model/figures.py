"""Figures like the paper's: loss curves (Fig. 2), examples (Fig. 3), chi^2 histogram with the best and
worst reconstructions (Figs. 4 and 5). All written as PNG with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def loss_curve(history: dict[str, list[float]], path: str | Path, title: str) -> Path:
    """Training and validation loss per epoch (paper Fig. 2)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax.plot(epochs, history["loss"], "o-", label="training")
    ax.plot(epochs, history["val_loss"], "s-", label="validation")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend()
    return save_figure(fig, path)


def reconstruction_grid(
    columns: dict[str, np.ndarray], path: str | Path, title: str, phase_rows: tuple[str, ...] = ()
) -> Path:
    """One row per named image stack (K, N, N), one column per example (paper Fig. 3 layout).

    Rows named in ``phase_rows`` use a cyclic colour map on [-pi, pi] radians.
    """
    names = list(columns)
    k = len(next(iter(columns.values())))
    fig, axes = plt.subplots(len(names), k, figsize=(1.6 * k, 1.6 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            ax = axes[r, c]
            if name in phase_rows:
                ax.imshow(columns[name][c], cmap="twilight", vmin=-np.pi, vmax=np.pi)
            else:
                ax.imshow(columns[name][c], cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def histogram(values: dict[str, np.ndarray], path: str | Path, xlabel: str, title: str) -> Path:
    """Overlaid log-binned histograms of a positive metric for several methods (paper Fig. 4A)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    positive = np.concatenate([v[v > 0] for v in values.values()])
    bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()), 40)
    for name, v in values.items():
        ax.hist(np.clip(v, bins[0], None), bins=bins.tolist(), alpha=0.5, label=name)
    ax.set(xscale="log", xlabel=xlabel, ylabel="patterns", title=title)
    ax.legend()
    return save_figure(fig, path)


def metric_panels(
    series: dict[str, tuple[list[float], dict[str, list[float]]]],
    metrics: tuple[str, ...],
    path: str | Path,
    xlabel: str,
    reference: tuple[str, dict[str, float]] | None = None,
    log_metrics: tuple[str, ...] = ("chi2",),
) -> Path:
    """One panel per metric: each series (label -> (x values, metric -> y values)) against a log x axis,
    and an optional horizontal reference line per metric (label, metric -> value)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2))
    for ax, metric in zip(axes, metrics, strict=True):
        for label, (x, values) in series.items():
            ax.plot(x, values[metric], "o-", label=label)
        if reference is not None:
            ax.axhline(reference[1][metric], color="gray", ls="--", label=reference[0])
        ax.set(xscale="log", xlabel=xlabel, title=metric)
        if metric in log_metrics:
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def scatter(x: np.ndarray, y: np.ndarray, path: str | Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Log-log scatter of two positive per-pattern quantities."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(np.clip(x, 1e-8, None), np.clip(y, 1e-8, None), s=4, alpha=0.5)
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    return save_figure(fig, path)
