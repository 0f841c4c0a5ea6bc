"""Where the artefacts of a network set live, resolved from its name in one place.

A network set has a name (``"default"`` is :data:`cdinn.model.inference.DEFAULT_NET`; shipped sets live in
``model/weights/<name>``): its float networks, its quantized networks ``model/weights/<name>-q`` (written by
``cdinn quantize``) and its firmware projects ``<build>/firmware/<name>/<part>`` (written by ``cdinn firmware``;
``part`` is ``shape``, ``phase`` or ``both``). ``<build>`` is ``$CDINN_BUILD_DIR`` if set, else ``build/`` in the
repository, outside every source package. Paths given explicitly are used as they are.

Artefacts are verified here, once, before any backend uses them: an ONNX export must match the sha256 recorded
when it was written and name the sha256 of the set's Keras networks (:func:`verified_onnx`); a firmware
project's manifest must name the quantized networks it was built from, and its emulation library must lie inside
the project with the sha256 it was built with (:func:`verified_firmware`); model cards verify their own weights
(:mod:`cdinn.cards`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cdinn.cards import read_card, sha256
from cdinn.errors import CdinnError
from cdinn.io import read_json
from cdinn.model.inference import DEFAULT_NET, WEIGHTS_DIR, network_folder


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


def verified_onnx(net: str) -> tuple[Path, dict[str, str]]:
    """The set's combined ONNX graph and the sha256 of the networks it was exported from. The graph's own
    sha256 must be the one its export recorded, and the networks it names must be the set's Keras networks
    (their cards)."""
    from cdinn.host.onnx_export import COMBINED_ONNX, ONNX_RECORD, onnx_sources

    folder = network_folder(net)
    path = folder / COMBINED_ONNX
    if not path.is_file():
        raise CdinnError(f"no ONNX export at {path}: run `cdinn export-onnx --net {net}`")
    recorded = read_json(folder / ONNX_RECORD, "ONNX record", f"re-run `cdinn export-onnx --net {net}`")
    if recorded.get(COMBINED_ONNX) != sha256(path):
        raise CdinnError(
            f"{path} does not match the sha256 its export recorded in {folder / ONNX_RECORD} "
            f"(changed or corrupt); re-run `cdinn export-onnx --net {net}`"
        )
    sources = onnx_sources(path)
    for name in ("shape", "phase"):
        if sources.get(name) != read_card(folder / f"{name}.keras")["sha256"]:
            raise CdinnError(
                f"{path} was exported from other {name} weights than {folder}; re-run `cdinn export-onnx --net {net}`"
            )
    return path, sources


def verified_firmware(project: str | os.PathLike, quantized: str | os.PathLike | None = None) -> tuple[dict, Any]:
    """A firmware project's manifest and emulator spec. The project must stream both networks; with
    ``quantized`` (a folder of quantized networks) its manifest must name exactly those networks' sha256s."""
    from cdinn.firmware.manifest import check_models_match, read_manifest

    manifest, spec = read_manifest(project)
    if sorted(manifest["nets"]) != ["phase", "shape"]:
        raise CdinnError(
            f"{project} implements {manifest['nets']}; a backend needs the project that streams "
            "both networks (<build>/firmware/<set>/both)"
        )
    if quantized is not None:
        check_models_match(manifest, {net: read_card(Path(quantized) / f"{net}.h5") for net in manifest["nets"]})
    return manifest, spec
