"""``cdinn firmware`` (options from :class:`cdinn.firmware.build.FirmwareBuildConfig`), ``cdinn csim`` and
``cdinn synth``."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command
from cdinn.cli.options import add_config_options, config_from
from cdinn.errors import CdinnError


def firmware_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.firmware.build import FirmwareBuildConfig

    add_config_options(p, FirmwareBuildConfig)


def firmware_run(args: argparse.Namespace) -> None:
    from cdinn.firmware.build import FirmwareBuildConfig, build
    from cdinn.firmware.report import markdown_report

    report = build(config_from(FirmwareBuildConfig, args))
    print(markdown_report(report))
    if "validate" in report["steps"] and not report.get("bit_exact"):
        out = report["config"]["out_dir"]
        raise CdinnError(f"emulation is not bit-exact with the QKeras model; see {out}/report.md")


def csim_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--build", help="firmware build folder or one project folder (default: the default network set's build)"
    )


def csim_run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from cdinn.artefacts import firmware_build
    from cdinn.firmware.csim import run_csim

    build = Path(args.build) if args.build else firmware_build("default")
    projects = sorted(p.parent for p in build.glob("*/manifest.json")) or [build]
    failed = []
    for project in projects:
        r = run_csim(project)
        print(
            f"{project}: {r['patterns']} patterns, {r['values']} values, max |csim - expected| "
            f"{r['max_abs_difference']:.3g} (tolerance {r['tolerance']:.3g}): {'PASS' if r['passed'] else 'FAIL'}"
        )
        failed += [] if r["passed"] else [str(project)]
    if failed:
        raise CdinnError(f"C simulation differs from the expected predictions in {', '.join(failed)}")


def synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", help="project folder (default: the default set's shape project)")
    p.add_argument("--no-cosim", action="store_true", help="skip RTL co-simulation")


def synth_run(args: argparse.Namespace) -> None:
    from cdinn.artefacts import firmware_project
    from cdinn.firmware.synth import require_vendor_tool, synthesize

    project = args.project or str(firmware_project("default", "shape"))
    require_vendor_tool(project)
    import hls4ml

    from cdinn.firmware.convert import tf_keras_as_keras

    with tf_keras_as_keras():
        model = hls4ml.converters.link_existing_project(project)
    print(synthesize(model, project, cosim=not args.no_cosim))


COMMANDS = [
    Command(
        "firmware",
        "hls4ml projects, bit-exact emulation, C simulation, estimates",
        "Convert a set's quantized networks with hls4ml (settings from a checked-in YAML), write one HLS "
        "project per network and one for both, compile the C++ emulation with g++, validate it bit for bit "
        "against QKeras, run each project's C test bench, estimate resources and timing (summary.json), and "
        "compare float / QAT / emulation metrics.",
        firmware_arguments,
        firmware_run,
    ),
    Command(
        "csim",
        "C simulation: each HLS project's own test bench, built with g++",
        "Build every project's <project>_test.cpp under --build (or the one project --build names) with g++ "
        "and the ap_types headers hls4ml ships, run it, and compare its outputs with "
        "tb_data/tb_output_predictions.dat within half an output LSB (what Vitis's C simulation checks). Exit "
        "status 2 if any project differs.",
        csim_arguments,
        csim_run,
        units=False,
    ),
    Command(
        "synth",
        "vendor C synthesis / co-simulation of a firmware project",
        "Run hls4ml's build (Vitis HLS C synthesis, co-simulation, export) on a project written by `cdinn "
        "firmware`; fails with one line if the vendor tool is not on PATH.",
        synth_arguments,
        synth_run,
        units=False,
    ),
]
