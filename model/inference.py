"""The float networks in Keras: named network sets, loading (checked against the model cards) and prediction.

Named network sets ship inside the package (``model/weights/<name>/{shape,phase}.keras``, each with its
model card); ``net`` may also be a folder holding such a pair. The public API (``cdinn.reconstruct``) is
:mod:`cdinn.api`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.model.conventions import network_input, unit_to_phase
from cdinn.model.metrics import support

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_NET = "robust"


def network_folder(net: str) -> Path:
    """The folder of a network set: a shipped name ('default', 'robust', 'paper', 'edge', ...; a plain name
    only ever means a shipped set) or, when ``net`` looks like a path (it holds a path separator or starts
    with '.' or '~'), that folder."""
    if as_set_path(net) != net:  # a plain name
        folder = WEIGHTS_DIR / (DEFAULT_NET if net == "default" else net)
        if net and folder.is_dir():
            return folder
        known = sorted(p.name for p in WEIGHTS_DIR.iterdir() if p.is_dir()) if WEIGHTS_DIR.is_dir() else []
        raise CdinnError(
            f"no shipped network set {net!r} (shipped: {', '.join(known)}); name a folder as a path, e.g. ./{net}"
        )
    folder = Path(net).expanduser()
    if folder.is_dir():
        return folder
    raise CdinnError(f"network set folder not found: {net}")


def as_set_path(folder: str | os.PathLike) -> str:
    """A folder written as ``--net`` takes it as a folder (a path), never as a shipped set's name."""
    text = str(folder)
    return text if "/" in text or os.sep in text or text.startswith((".", "~")) else f"./{text}"


@lru_cache(maxsize=8)
def load_network(folder: str, role: str):
    """Load ``<folder>/<role>.keras`` after checking it against its model card; returns (model, card)."""
    import tensorflow as tf

    path = Path(folder) / f"{role}.keras"
    card = read_card(path)
    try:
        model = tf.keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as exc:
        raise CdinnError(f"cannot load network weights {path}: {str(exc).splitlines()[0]}") from None
    return model, card


def predict(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run a Keras network on (B, N, N, 1) inputs; returns (B, N, N) float32."""
    return model.predict(x, batch_size=batch, verbose=0)[..., 0].astype(np.float32)


def outputs_to_object(shape_out: np.ndarray, phase_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs in [0, 1] -> (amplitude, phase in radians), phase set to 0 outside the predicted
    support (amplitude below 0.1 of its maximum), as in the paper."""
    phase = np.where(support(shape_out), unit_to_phase(phase_out), 0.0).astype(np.float32)
    return shape_out.astype(np.float32), phase


def reconstruct_with(
    shape_model, phase_model, amplitudes: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, phase) from validated (B, N, N) amplitudes (and their mask, True = no measurement) with a
    given pair of Keras networks."""
    from cdinn.model.architectures import input_channels  # TensorFlow: only for callers that hold Keras networks

    x = network_input(amplitudes, mask, input_channels(shape_model))
    return outputs_to_object(predict(shape_model, x), predict(phase_model, x))
