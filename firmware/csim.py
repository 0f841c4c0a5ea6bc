"""C simulation of a generated HLS project with its own test bench, as Vitis's ``csim_design`` would run it,
but with g++ and the ap_types headers hls4ml ships (no vendor tool).

The project's ``<project>_test.cpp`` is compiled with ``firmware/<project>.cpp`` and run in the project folder
(it reads ``tb_data/tb_input_features.dat`` and ``weights/*.txt``, writes ``tb_data/csim_results.log``); its
output is then compared with ``tb_data/tb_output_predictions.dat`` (the QKeras model's logits). The test bench
prints 6 significant digits, so values are compared within half an output LSB (the logits' fixed-point step,
from the project's manifest), not for string equality.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np

from cdinn.errors import CdinnError
from cdinn.firmware.manifest import read_manifest

RESULTS = Path("tb_data") / "csim_results.log"
EXPECTED = Path("tb_data") / "tb_output_predictions.dat"


def compile_testbench(project_dir: str | os.PathLike, project: str) -> Path:
    """g++ the project's test bench; returns the executable (``<project>/csim_tb``)."""
    project_dir = Path(project_dir)
    source = project_dir / f"{project}_test.cpp"
    if not source.is_file():
        raise CdinnError(f"no C test bench {source}: was the project written by `cdinn firmware`?")
    exe = project_dir / "csim_tb"
    cmd = [
        "g++",
        "-O2",
        "-std=c++14",
        "-Ifirmware",
        "-Ifirmware/ap_types",
        "-o",
        exe.name,
        source.name,
        f"firmware/{project}.cpp",
    ]
    try:
        subprocess.run(cmd, cwd=project_dir, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise CdinnError("g++ not found: the C simulation needs a C++ compiler") from None
    except subprocess.CalledProcessError as exc:
        first = next((line for line in exc.stderr.splitlines() if "error" in line), exc.stderr.strip()[:200])
        raise CdinnError(f"C test bench of {project_dir} does not compile: {first}") from None
    return exe


def run_csim(project_dir: str | os.PathLike) -> dict:
    """Build and run the project's C test bench; compare its outputs with the expected predictions.

    Returns ``{"patterns", "values", "max_abs_difference", "tolerance", "passed"}``; raises CdinnError when the
    test bench cannot be built or run, or writes no results."""
    project_dir = Path(project_dir)
    manifest, _ = read_manifest(project_dir)
    exe = compile_testbench(project_dir, manifest["project"])
    weights = project_dir / "weights"
    if not weights.exists():  # the test bench loads weights/*.txt relative to its working folder
        weights.symlink_to(Path("firmware") / "weights", target_is_directory=True)
    results = project_dir / RESULTS
    results.unlink(missing_ok=True)
    run = subprocess.run([f"./{exe.name}"], cwd=project_dir, capture_output=True, text=True)
    if run.returncode != 0 or not results.is_file():
        raise CdinnError(
            f"C simulation of {project_dir} failed (exit {run.returncode}): "
            f"{(run.stderr or run.stdout).strip().splitlines()[-1:] or 'no output'}"
        )
    got = np.loadtxt(results, ndmin=2)
    expected = np.loadtxt(project_dir / EXPECTED, ndmin=2)
    if got.shape != expected.shape and got.size == expected.size:
        got = got.reshape(expected.shape)  # a multi-output bench writes one line per output, pattern by pattern
    if got.shape != expected.shape:
        raise CdinnError(f"C simulation of {project_dir} wrote {got.shape} values, expected {expected.shape}")
    steps = np.concatenate(
        [
            np.full(size, 2.0**-bits)
            for size, bits in zip(manifest["output_sizes"], manifest["output_fraction_bits"], strict=True)
        ]
    )
    tolerance = steps / 2
    difference = np.abs(got - expected)
    return {
        "patterns": int(got.shape[0]),
        "values": int(got.size),
        "max_abs_difference": float(difference.max()),
        "tolerance": float(tolerance.min()),
        "passed": bool((difference <= tolerance).all()),
    }
