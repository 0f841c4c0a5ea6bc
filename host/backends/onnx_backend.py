"""The float networks exported to one ONNX graph, run by onnxruntime (the default CPU backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.host.onnx_export import COMBINED, onnx_sources, session
from cdinn.model.conventions import network_input
from cdinn.model.inference import network_folder, outputs_to_object


class OnnxBackend:
    name = "onnx"

    def __init__(self, net: str = "edge", threads: int | None = None):
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

    def infer(self, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape_out, phase_out = self.session.run(None, {"diffraction": network_input(amplitudes)})
        return outputs_to_object(shape_out[..., 0], phase_out[..., 0])

    def provenance(self) -> dict:
        return {"backend": self.name, "onnx": str(self.path), "shape_sha256": self.sources["shape"],
                "phase_sha256": self.sources["phase"], "threads": self.threads or 0}
