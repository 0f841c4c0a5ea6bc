"""``cdinn.reconstruct``: diffraction patterns in, object amplitude and phase out, with the float networks.

Named network sets ship inside the package (``model/weights/<name>/{shape,phase}.keras``, each with its
model card); ``net`` may also be a folder holding such a pair.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.model.conventions import network_input, subsample_oversampled, unit_to_phase
from cdinn.model.metrics import support
from cdinn.model.validation import validate_frames

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_NET = "paper"


def network_folder(net: str) -> Path:
    """The folder of a named network set ('default', 'paper', 'edge') or a user folder."""
    name = DEFAULT_NET if net == "default" else net
    folder = WEIGHTS_DIR / name
    if folder.is_dir():
        return folder
    folder = Path(net)
    if folder.is_dir():
        return folder
    known = sorted(p.name for p in WEIGHTS_DIR.iterdir() if p.is_dir()) if WEIGHTS_DIR.is_dir() else []
    raise CdinnError(f"no network set {net!r}: not a shipped name {known} nor a folder")


@lru_cache(maxsize=8)
def load_network(folder: str, net: str):
    """Load ``<folder>/<net>.keras`` after checking it against its model card; returns (model, card)."""
    import tensorflow as tf

    path = Path(folder) / f"{net}.keras"
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


def reconstruct_with(shape_model, phase_model, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude, phase) from validated (B, N, N) amplitudes with a given pair of Keras networks."""
    x = network_input(amplitudes)
    return outputs_to_object(predict(shape_model, x), predict(phase_model, x))


def reconstruct(diffraction, net: str = "default", intensity: bool = False,
                refine: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reconstruct objects from far-field diffraction.

    ``diffraction``: (N, 32, 32) or (32, 32) amplitudes at any scale (normalised per frame), zero
    frequency at [16, 16]; with ``intensity=True`` intensities instead. With ``refine=K`` > 0 the frames
    must be the 2x oversampled (64, 64) patterns: the networks see every other pixel and their result seeds
    K iterations of ER/HIO against the full pattern (:mod:`cdinn.model.refine`). Returns
    ``(amplitude, phase)``, float32 (..., 32, 32): amplitude in [0, 1] (refined: in the pattern's units),
    phase in radians (0 outside the support).
    """
    single = np.ndim(diffraction) == 2
    amplitudes = validate_frames(diffraction, 64 if refine else 32, intensity)
    folder = str(network_folder(net))
    nn_input = subsample_oversampled(amplitudes) if refine else amplitudes
    amplitude, phase = reconstruct_with(load_network(folder, "shape")[0], load_network(folder, "phase")[0],
                                        nn_input)
    if refine:
        from cdinn.model.refine import refine as refine_objects

        amplitude, phase = refine_objects(amplitude, phase, amplitudes, refine)
    return (amplitude[0], phase[0]) if single else (amplitude, phase)
