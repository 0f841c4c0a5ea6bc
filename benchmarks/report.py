"""The latest pytest-benchmark run as a markdown table and a PNG plot (``python benchmarks/report.py``; ``make
bench`` runs it), with the speed-up of every method over ER/HIO (620 iterations) at the same batch size,
measured in the same run, and the overhead ratios of the speed issues: ER/HIO per iteration over a bare FFT
pair, ``cdinn.reconstruct`` over a bare onnxruntime ``session.run``, ``cdinn reconstruct --cluster local:1`` over
the plain command; and the ratios benchmarks measured side by side themselves (``extra_info["ratios"]``: each
source's runner over the networks alone on the same frames)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from cdinn.cards import library_versions
from cdinn.errors import CdinnError
from cdinn.io import write_text_atomic

REFERENCE = "ER/HIO"
OVERHEADS = (
    ("ER/HIO", "FFT pair floor", "ER/HIO iteration / bare FFT pair"),
    ("cdinn.reconstruct", "bare session.run", "cdinn.reconstruct / bare session.run"),
    ("reconstruct (local:1)", "reconstruct (none)", "cdinn reconstruct --cluster local:1 / plain"),
    ("reconstruct (local:2)", "reconstruct (local:1)", "cdinn reconstruct --cluster local:2 / local:1"),
)


def machine_info() -> dict:
    """CPU model, core count and library versions, saved with every benchmark run to compare nodes honestly."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "versions": library_versions()}


def _ratio(value: float) -> str:
    """A speed-up as '3172x', or with two significant digits below 10 ('2.4x', '0.39x')."""
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def latest_run(storage: str | os.PathLike) -> Path:
    """The newest saved run (``NNNN_*.json``) under a pytest-benchmark storage folder, or a JSON file."""
    storage = Path(storage)
    if storage.is_file():
        return storage
    runs = sorted(storage.glob("*/[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: p.name)
    if not runs:
        raise CdinnError(f"no saved benchmark runs under {storage}: run `make bench` first")
    return runs[-1]


def rows(run: dict) -> list[dict]:
    """One row per benchmark: name, backend/config/batch and median seconds per call and per pattern."""
    out = []
    for bench in run["benchmarks"]:
        info = bench.get("extra_info", {})
        per_call = bench["stats"]["median"]
        patterns = info.get("patterns_per_call", 1)
        out.append(
            {
                "name": bench["name"],
                "backend": info.get("backend", ""),
                "config": info.get("config", ""),
                "batch": info.get("batch", ""),
                "median_s": per_call,
                "per_pattern_s": per_call / patterns,
            }
        )
    reference = {r["batch"]: r["per_pattern_s"] for r in out if r["backend"] == REFERENCE}
    for r in out:
        ref = reference.get(r["batch"], reference.get(1))  # same batch; batch 1 for adaptive batches
        r["speedup_vs_erhio"] = ref / r["per_pattern_s"] if ref and r["backend"] else None
    return out


def overheads(table: list[dict]) -> list[tuple[str, object, float]]:
    """(what, batch, ratio) for each pair of :data:`OVERHEADS` measured at the same batch in the run."""
    by_key = {(r["backend"], r["batch"]): r["median_s"] for r in table}
    out = []
    for slow, fast, label in OVERHEADS:
        for (backend, batch), seconds in by_key.items():
            if backend == slow and (fast, batch) in by_key:
                out.append((label, batch, seconds / by_key[(fast, batch)]))
    return out


def markdown(run: dict, source: Path) -> str:
    machine = run.get("machine_info", {}).get("cdinn", {})
    lines = [
        f"Benchmark run `{source.name}` ({run.get('datetime', '')}), {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores; per-pattern medians; speed-up over ER/HIO 620 iterations at "
        "the same batch size (batch 1 for adaptive batches), measured in the same run.",
        "",
        "| benchmark | per call (ms) | per pattern (µs) | speed-up vs ER/HIO |",
        "|---|---|---|---|",
    ]
    table = rows(run)
    for r in table:
        speedup = _ratio(r["speedup_vs_erhio"]) if r["speedup_vs_erhio"] else ""
        lines.append(f"| {r['name']} | {r['median_s'] * 1e3:.3f} | {r['per_pattern_s'] * 1e6:.1f} | {speedup} |")
    ratios = overheads(table)
    if ratios:
        lines += ["", "| overhead (same run) | batch | ratio |", "|---|---|---|"]
        lines += [f"| {label} | {batch} | {ratio:.2f} |" for label, batch, ratio in ratios]
    measured = [
        (bench["name"], label, value)
        for bench in run["benchmarks"]
        for label, value in bench.get("extra_info", {}).get("ratios", {}).items()
    ]
    if measured:
        lines += ["", "| ratio (measured side by side in one benchmark) | benchmark | ratio |", "|---|---|---|"]
        lines += [f"| {label} | {name} | {value:.2f} |" for name, label, value in measured]
    return "\n".join(lines) + "\n"


def plot(run: dict, path: Path) -> None:
    from cdinn.model.figures import plt, save_figure

    data = [r for r in rows(run) if r["backend"]]
    labels = [
        f"{r['backend']} {r['config']} " + (f"b{r['batch']}" if isinstance(r["batch"], int) else str(r["batch"]))
        for r in data
    ]
    values = np.array([r["per_pattern_s"] * 1e6 for r in data])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(data) + 1.2))
    ax.barh(labels, values, color="tab:blue")
    for i, r in enumerate(data):
        if r["speedup_vs_erhio"]:
            ax.text(values[i], i, f" {_ratio(r['speedup_vs_erhio'])}", va="center", fontsize=7)
    ax.set(xscale="log", xlabel="per-pattern latency (µs, median)", title="cdinn latency benchmarks")
    save_figure(fig, path)


def report(storage: str | os.PathLike, out_prefix: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``<out_prefix>.md`` and ``<out_prefix>.png`` from the latest run; returns both paths."""
    source = latest_run(storage)
    try:
        run = json.loads(source.read_text())
    except json.JSONDecodeError as exc:
        raise CdinnError(f"{source} is not valid JSON: {exc.msg}") from None
    out = Path(out_prefix)
    md, png = out.with_suffix(".md"), out.with_suffix(".png")
    write_text_atomic(md, markdown(run, source))
    plot(run, png)
    return md, png


def main(argv: list[str] | None = None) -> int:
    """Print the table of the newest run under ``--storage`` and write it (.md) and its plot (.png)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description="Summarise the latest benchmark run (markdown table and PNG plot).")
    p.add_argument(
        "--storage",
        default="results/benchmarks",
        help="pytest-benchmark storage folder or a JSON file (default: results/benchmarks)",
    )
    p.add_argument(
        "--out",
        default="results/benchmarks/summary",
        help="output prefix; .md and .png are added (default: results/benchmarks/summary)",
    )
    args = p.parse_args(argv)
    try:
        md, png = report(args.storage, args.out)
    except CdinnError as exc:
        print(f"benchmarks/report.py: {exc}", file=sys.stderr)
        return 2
    print(md.read_text())
    print(f"table {md}, plot {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
