"""Where the artefacts of a network set live, resolved from its name in one place.

A network set has a name (``"default"`` is :data:`cdinn.model.inference.DEFAULT_NET`; shipped sets live in
``model/weights/<name>``): its float networks, its quantized networks ``model/weights/<name>-q`` (written by
``cdinn quantize``) and its firmware projects ``firmware/build/<name>/<part>`` (written by ``cdinn firmware``;
``part`` is ``shape``, ``phase`` or ``both``). Paths given explicitly are used as they are.
"""

from __future__ import annotations

from pathlib import Path

from cdinn.model.inference import DEFAULT_NET, WEIGHTS_DIR

FIRMWARE_BUILD = Path(__file__).resolve().parents[1] / "firmware" / "build"


def set_name(net: str) -> str:
    """The set's name: ``"default"`` resolved, a folder reduced to its last component."""
    return DEFAULT_NET if net == "default" else Path(net).name


def quantized_folder(net: str) -> Path:
    """The quantized networks of a set (``<name>-q`` beside the float ones) or the folder ``net`` itself."""
    if Path(net).is_dir() and (Path(net) / "shape.h5").is_file():
        return Path(net)
    name = set_name(net)
    return WEIGHTS_DIR / (name if name.endswith("-q") else f"{name}-q")


def firmware_project(net: str, part: str = "both") -> Path:
    """The firmware project ``part`` built for a set."""
    return FIRMWARE_BUILD / set_name(net).removesuffix("-q") / part
