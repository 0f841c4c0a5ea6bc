"""``cdinn export-onnx`` and ``cdinn bench-report``: the ONNX export of a set and the benchmark summary."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command
from cdinn.cli.options import add_net


def export_onnx_arguments(p: argparse.ArgumentParser) -> None:
    add_net(p)
    p.add_argument("--out", help="output folder (default: beside the Keras weights)")


def export_onnx_run(args: argparse.Namespace) -> None:
    from cdinn.host.onnx_export import export_onnx

    report = export_onnx(args.net, args.out)
    for name, diff in report["max_abs_difference"].items():
        print(f"{report['folder']}/{name}: max |onnxruntime - keras| = {diff:.2e}")


def bench_report_arguments(p: argparse.ArgumentParser) -> None:
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


def bench_report_run(args: argparse.Namespace) -> None:
    from cdinn.host.bench_report import report

    md, png = report(args.storage, args.out)
    print(md.read_text())
    print(f"table {md}, plot {png}")


COMMANDS = [
    Command(
        "export-onnx",
        "export the float networks to ONNX and check them against Keras",
        "Write shape.onnx, phase.onnx and cdinn.onnx (both outputs) for a network set and report the largest "
        "difference from Keras on simulated patterns.",
        export_onnx_arguments,
        export_onnx_run,
        units=False,
    ),
    Command(
        "bench-report",
        "summarise the latest benchmark run (markdown + PNG)",
        "Turn the newest pytest-benchmark JSON under --storage into a table and a plot of per-pattern latency "
        "per backend and batch, with speed-ups over ER/HIO from the same run. The benchmark suite (`make "
        "bench`) is the one place latency is measured.",
        bench_report_arguments,
        bench_report_run,
        units=False,
    ),
]
