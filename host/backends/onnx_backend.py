"""The float networks exported to one ONNX graph, run by onnxruntime (the default CPU backend)."""

from __future__ import annotations

import numpy as np

from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import OnnxOptions
from cdinn.host.onnx_export import session, verified_onnx


class OnnxBackend(Backend[OnnxOptions]):
    name = "onnx"
    tolerance = 1e-5  # float32 rounding: the same graph, another runtime

    def __init__(self, net: str = "default", threads: int | None = None):
        self.path, self.sources = verified_onnx(net)
        self.session = session(self.path, threads)
        self.channels = int(self.session.get_inputs()[0].shape[-1])
        self.threads = threads
        self._run = self.session.run

    @classmethod
    def from_options(cls, net: str, options: OnnxOptions) -> OnnxBackend:
        return cls(net, options.threads)

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape_out, phase_out = self._run(None, {"diffraction": x})
        return shape_out[..., 0], phase_out[..., 0]

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "onnx": str(self.path),
            "shape_sha256": self.sources["shape"],
            "phase_sha256": self.sources["phase"],
            "threads": self.threads or 0,
        }
