"""The float networks' ONNX graph (the one the onnx backend runs, checked the same way) compiled by OpenVINO
for the CPU: the same numbers (float32 inference precision) from another runtime's kernels
(``experiments/runtimes.py`` measures both side by side)."""

from __future__ import annotations

import threading

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import OpenvinoOptions
from cdinn.host.onnx_export import verified_onnx
from cdinn.model.conventions import GRID, ROLES


class OpenvinoBackend(Backend[OpenvinoOptions]):
    name = "openvino"
    tolerance = 1e-5  # float32 rounding: the same graph, another runtime

    def __init__(self, net: str = "default", threads: int | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise CdinnError("the openvino backend needs the 'openvino' package (pip install openvino)") from None
        self.path, self.sources = verified_onnx(net)
        core = ov.Core()
        model = core.read_model(str(self.path))
        self.channels = model.input(0).partial_shape[3].get_length()
        model.reshape({model.input(0): [-1, GRID, GRID, self.channels]})  # any batch
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, "CPU", config)
        self._outputs = [compiled.output(role) for role in ROLES]
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: calls from several threads take turns
        self.threads = threads
        self.version = ov.__version__.split("-")[0]

    @classmethod
    def from_options(cls, net: str, options: OpenvinoOptions) -> OpenvinoBackend:
        return cls(net, options.threads)

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            out = self._request.infer({0: x})
            shape_out, phase_out = (np.array(out[o], copy=True) for o in self._outputs)
        return shape_out[..., 0], phase_out[..., 0]

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "onnx": str(self.path),
            "openvino": self.version,
            "shape_sha256": self.sources["shape"],
            "phase_sha256": self.sources["phase"],
            "threads": self.threads or 0,
        }
