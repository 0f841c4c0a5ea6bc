"""The float networks run by TensorFlow (tf-keras)."""

from __future__ import annotations

import numpy as np

from cdinn.model.conventions import network_input
from cdinn.model.inference import load_network, network_folder, outputs_to_object
from cdinn.model.timing import keras_callable


class KerasBackend:
    name = "keras"

    def __init__(self, net: str = "edge"):
        folder = str(network_folder(net))
        self.folder = folder
        (shape, self._shape_card), (phase, self._phase_card) = (load_network(folder, n) for n in ("shape", "phase"))
        self._forward = [keras_callable(shape), keras_callable(phase)]

    def infer(self, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = network_input(amplitudes)
        shape_out, phase_out = (np.asarray(f(x))[..., 0] for f in self._forward)
        return outputs_to_object(shape_out, phase_out)

    def provenance(self) -> dict:
        return {"backend": self.name, "networks": self.folder, "shape_sha256": self._shape_card["sha256"],
                "phase_sha256": self._phase_card["sha256"]}
