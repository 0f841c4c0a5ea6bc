"""Vendor synthesis (C synthesis, co-simulation, export) through hls4ml's build, when the tools exist.

Vitis HLS / Vivado cannot be installed on every machine: :func:`require_vendor_tool` fails with one line
naming the missing program and the ready project, and :func:`read_synthesis_report` parses a report that
a synthesis run (here or elsewhere) left in a project folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cdinn.errors import CdinnError

VENDOR_TOOLS = ("vitis_hls", "vitis-run")


def require_vendor_tool(project_dir: str | Path) -> str:
    """The first vendor HLS program found on PATH, or a CdinnError saying what is missing."""
    for tool in VENDOR_TOOLS:
        if shutil.which(tool):
            return tool
    raise CdinnError(
        f"vendor HLS tool not found on PATH ({' or '.join(VENDOR_TOOLS)}); install AMD Vitis and "
        f"source its settings64.sh. The HLS project is ready in {project_dir} (build_prj.tcl)"
    )


def synthesize(hls_model, project_dir: str | Path, cosim: bool = True) -> dict:
    """Run C synthesis (and co-simulation, export) with hls4ml's build; returns the parsed report."""
    require_vendor_tool(project_dir)
    from cdinn.firmware.convert import tf_keras_as_keras

    with tf_keras_as_keras():
        hls_model.build(csim=False, synth=True, cosim=cosim, export=True)
    return read_synthesis_report(project_dir) or {}


def read_synthesis_report(project_dir: str | Path) -> dict | None:
    """hls4ml's parse of a Vivado/Vitis HLS report in ``project_dir``, or None when there is none."""
    import hls4ml

    project_dir = Path(project_dir)
    if not any(project_dir.glob("*_prj/solution1/syn/report/*.xml")):
        return None
    return hls4ml.report.parse_vivado_report(str(project_dir))
