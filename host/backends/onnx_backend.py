"""The float networks exported to one ONNX graph, run by onnxruntime (the default CPU backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.host.backends.base import Backend
from cdinn.host.onnx_export import COMBINED, onnx_sources, session
from cdinn.model.inference import network_folder


class OnnxBackend(Backend):
    name = "onnx"

    def __init__(self, net: str = "default", threads: int | None = None):
        folder = network_folder(net)
        self.path = Path(folder) / COMBINED
        if not self.path.is_file():
            raise CdinnError(f"no ONNX export at {self.path}: run `cdinn export-onnx --net {net}`")
        self.sources = onnx_sources(self.path)
        for name in ("shape", "phase"):
            card = read_card(Path(folder) / f"{name}.keras")
            if self.sources.get(name) != card["sha256"]:
                raise CdinnError(f"{self.path} was exported from other {name} weights than {folder}; "
                                 f"re-run `cdinn export-onnx --net {net}`")
        self.session = session(self.path, threads)
        self.threads = threads
        self._run = self.session.run

    @classmethod
    def from_options(cls, net: str = "default", threads: int | None = None) -> OnnxBackend:  # type: ignore[override]
        return cls(net, threads)

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape_out, phase_out = self._run(None, {"diffraction": x})
        return shape_out[..., 0], phase_out[..., 0]

    def provenance(self) -> dict:
        return {"backend": self.name, "onnx": str(self.path), "shape_sha256": self.sources["shape"],
                "phase_sha256": self.sources["phase"], "threads": self.threads or 0}
