"""Where the artefacts of a network set live, resolved from its name in one place.

A network set has a name (``"default"`` is :data:`cdinn.model.inference.DEFAULT_NET`; shipped sets live in
``model/weights/<name>``): its float networks, its quantized networks ``model/weights/<name>-q`` (written by
``cdinn quantize``) and its firmware projects ``<build>/firmware/<name>/<part>`` (written by ``cdinn firmware``;
``part`` is ``shape``, ``phase`` or ``both``). ``<build>`` is ``$CDINN_BUILD_DIR`` if set, else ``build/`` in the
repository, outside every source package. Paths given explicitly are used as they are.

This module resolves paths only and imports nothing above :mod:`cdinn.model`. Artefacts are verified beside
the code that owns them, once, before any backend uses them: an ONNX export must match the sha256 recorded
when it was written and name the sha256 of the set's Keras networks
(:func:`cdinn.host.onnx_export.verified_onnx`); a firmware project's manifest must name the quantized networks
it was built from, and its emulation library must lie inside the project with the sha256 it was built with
(:func:`cdinn.firmware.manifest.verified_firmware`); model cards verify their own weights (:mod:`cdinn.cards`).
"""

from __future__ import annotations

import os
from pathlib import Path

from cdinn.model.inference import DEFAULT_NET, WEIGHTS_DIR


def build_dir() -> Path:
    """Where build outputs go: ``$CDINN_BUILD_DIR``, else the repository's ``build/``."""
    return Path(os.environ.get("CDINN_BUILD_DIR") or Path(__file__).resolve().parents[1] / "build")


def set_name(net: str) -> str:
    """The set's name: ``"default"`` resolved, a folder reduced to its last component."""
    return DEFAULT_NET if net == "default" else Path(net).name


def quantized_folder(net: str) -> Path:
    """The quantized networks of a set (``<name>-q`` beside the float ones) or the folder ``net`` itself."""
    if Path(net).is_dir() and (Path(net) / "shape.h5").is_file():
        return Path(net)
    name = set_name(net)
    return WEIGHTS_DIR / (name if name.endswith("-q") else f"{name}-q")


def firmware_build(net: str) -> Path:
    """The folder ``cdinn firmware`` writes a set's projects and report to."""
    return build_dir() / "firmware" / set_name(net).removesuffix("-q")


def firmware_project(net: str, part: str = "both") -> Path:
    """The firmware project ``part`` built for a set."""
    return firmware_build(net) / part
