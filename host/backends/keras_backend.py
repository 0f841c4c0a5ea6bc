"""The float networks run by TensorFlow (tf-keras)."""

from __future__ import annotations

import numpy as np

from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import NoOptions
from cdinn.model.architectures import input_channels
from cdinn.model.inference import load_network, network_folder
from cdinn.model.timing import keras_callable


class KerasBackend(Backend[NoOptions]):
    name = "keras"
    tolerance = 0.0

    def __init__(self, net: str = "default"):
        folder = str(network_folder(net))
        self.folder = folder
        (shape, self._shape_card), (phase, self._phase_card) = (load_network(folder, n) for n in ("shape", "phase"))
        self._forward = [keras_callable(shape), keras_callable(phase)]
        self.channels = input_channels(shape)

    @classmethod
    def from_options(cls, net: str, options: NoOptions) -> KerasBackend:
        return cls(net)

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape_out, phase_out = (np.asarray(f(x))[..., 0] for f in self._forward)
        return shape_out, phase_out

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "networks": self.folder,
            "shape_sha256": self._shape_card["sha256"],
            "phase_sha256": self._phase_card["sha256"],
        }
