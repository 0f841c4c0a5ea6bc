"""Model cards: JSON files that say what produced a set of weights, checked whenever weights are loaded.

A card sits beside its weights (``shape.keras`` -> ``shape.card.json``) and records the network and data
configuration, the training recipe, test metrics, library versions and the sha256 of the weights file.
"""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

from cdinn.errors import CdinnError
from cdinn.io import read_json, write_json_atomic

TRACKED_LIBRARIES = ("cdinn", "tensorflow", "tf-keras", "numpy", "h5py", "qkeras", "hls4ml", "onnxruntime")


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose behaviour the weights depend on."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def card_path(weights: str | os.PathLike) -> Path:
    """Where the card of a weights file lives."""
    weights = Path(weights)
    return weights.with_name(weights.name.split(".")[0] + ".card.json")


def write_card(weights: str | os.PathLike, fields: dict) -> Path:
    """Write the card for ``weights`` with ``fields`` plus its sha256 and the library versions."""
    card = dict(fields, weights=Path(weights).name, sha256=sha256(weights), versions=library_versions())
    path = card_path(weights)
    write_json_atomic(path, card)
    return path


def read_card(weights: str | os.PathLike, verify: bool = True) -> dict:
    """Read the card of ``weights``; with ``verify`` check that the weights are the ones it describes."""
    path = card_path(weights)
    if not Path(weights).is_file():
        raise CdinnError(f"weights file not found: {weights}")
    card = read_json(path, "model card", f"every weights file needs its card beside it ({weights})")
    if verify and card.get("sha256") != sha256(weights):
        raise CdinnError(f"weights {weights} do not match their model card {path} (sha256 differs)")
    return card


def update_card(weights: str | os.PathLike, **fields) -> Path:
    """Set ``fields`` in the (verified) card of ``weights``, keeping everything else it records."""
    card = dict(read_card(weights), **fields)
    path = card_path(weights)
    write_json_atomic(path, card)
    return path
