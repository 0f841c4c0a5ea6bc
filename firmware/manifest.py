"""The manifest of a firmware project: which emulation library it built, its I/O sizes and the quantized
models (by sha256) it implements. Backends check it before running, so a model that does not match its
firmware is refused rather than silently giving other numbers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cdinn.cards import read_card, sha256
from cdinn.errors import CdinnError
from cdinn.firmware.config import FirmwareConfig
from cdinn.firmware.emulate import EmulatorSpec
from cdinn.io import read_json, write_json_atomic

MANIFEST = "manifest.json"


def write_manifest(
    project_dir: str | os.PathLike,
    spec: EmulatorSpec,
    roles: tuple[str, ...],
    model_sha256: dict[str, str],
    input_bits: int,
    output_fraction_bits: list[int],
    fw_config: FirmwareConfig,
) -> Path:
    """Record a compiled project; the library path is stored relative to the project folder.
    ``output_fraction_bits``: per output, the fractional bits of its fixed-point logits (what a hardware
    driver divides the raw integer codes by, as a power of two)."""
    project_dir = Path(project_dir)
    payload = {
        "project": spec.project,
        "library": os.path.relpath(spec.library, project_dir),
        "library_sha256": sha256(spec.library),
        "input_size": spec.input_size,
        "output_sizes": list(spec.output_sizes),
        "roles": list(roles),
        "quantized_sha256": model_sha256,
        "input_bits": input_bits,
        "output_fraction_bits": output_fraction_bits,
        "firmware_config": fw_config.as_dict(),
    }
    path = project_dir / MANIFEST
    write_json_atomic(path, payload)
    return path


def read_manifest(project_dir: str | os.PathLike) -> tuple[dict, EmulatorSpec]:
    """The manifest and the emulator spec of a compiled project. The library must lie inside the project
    folder (links resolved) and, where the manifest records it, have the sha256 it was built with: checked
    before anything loads it, since loading a shared library runs its code."""
    path = Path(project_dir) / MANIFEST
    manifest = read_json(path, "firmware manifest", "run `cdinn firmware` to build the project")
    missing = sorted({"project", "library", "input_size", "output_sizes", "roles"} - set(manifest))
    if missing:
        raise CdinnError(f"{path} lacks {', '.join(missing)} (built by another cdinn?); rebuild with `cdinn firmware`")
    root = Path(project_dir).resolve()
    library = (root / str(manifest["library"])).resolve()
    if not library.is_relative_to(root):
        raise CdinnError(
            f"{path}: the emulation library {manifest['library']} lies outside the project folder {root}; refused"
        )
    if "library_sha256" in manifest and library.is_file() and sha256(library) != manifest["library_sha256"]:
        raise CdinnError(
            f"{library} does not match the sha256 its manifest records (changed or corrupt); "
            "rebuild with `cdinn firmware`"
        )
    spec = EmulatorSpec(str(library), manifest["project"], int(manifest["input_size"]), tuple(manifest["output_sizes"]))
    return manifest, spec


def check_models_match(manifest: dict, cards: dict[str, dict]) -> None:
    """Raise if any network's model card sha256 differs from the one the firmware was built from."""
    for role, sha in manifest["quantized_sha256"].items():
        actual = cards.get(role, {}).get("sha256")
        if actual != sha:
            raise CdinnError(
                f"the {role} model does not match its firmware {manifest['project']} "
                f"(model sha256 {str(actual)[:12]}..., firmware built from {sha[:12]}...); "
                "rebuild with `cdinn firmware`"
            )


def verified_firmware(project: str | os.PathLike, quantized: str | os.PathLike | None = None) -> tuple[dict, Any]:
    """A firmware project's manifest and emulator spec. The project must stream both networks; with
    ``quantized`` (a folder of quantized networks) its manifest must name exactly those networks' sha256s."""
    manifest, spec = read_manifest(project)
    if sorted(manifest["roles"]) != ["phase", "shape"]:
        raise CdinnError(
            f"{project} implements {manifest['roles']}; a backend needs the project that streams "
            "both networks (<build>/firmware/<set>/both)"
        )
    if quantized is not None:
        check_models_match(manifest, {role: read_card(Path(quantized) / f"{role}.h5") for role in manifest["roles"]})
    return manifest, spec
