"""``cdinn export-onnx``: the ONNX export of a set."""

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
]
