"""The firmware's bit-accurate C++ emulation (hls4ml), via the combined project's manifest.

Inputs are normalised and put on the input quantizer's grid on the host, exactly as the detector-side
firmware would receive them; the logits it returns go through the sigmoid on the host.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdinn.artefacts import firmware_project, quantized_folder
from cdinn.firmware.emulate import Emulator
from cdinn.firmware.manifest import verified_firmware
from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import EmulatorOptions
from cdinn.model.conventions import GRID, sigmoid
from cdinn.quantize.grid import quantize_input


class EmulatorBackend(Backend[EmulatorOptions]):
    name = "emulator"
    tolerance = 0.02  # the quantized (10-bit, pruned) networks: 0.006-0.008 measured on edge (test_backends)

    def __init__(self, project: str | Path, quantized: str | Path):
        self.project = Path(project)
        self.manifest, spec = verified_firmware(self.project, quantized)
        self.emulator = Emulator(spec)
        self.channels = spec.input_size // (GRID * GRID)
        self.roles = self.manifest["roles"]

    @classmethod
    def from_options(cls, net: str, options: EmulatorOptions) -> EmulatorBackend:
        """``project`` defaults to the set's combined firmware project, ``quantized`` to its quantized networks."""
        return cls(options.project or firmware_project(net), options.quantized or quantized_folder(net))

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        codes = quantize_input(x, self.manifest["input_bits"])
        out = sigmoid(self.emulator.predict(codes)).reshape(len(x), len(self.roles), *x.shape[1:3])
        return out[:, self.roles.index("shape")], out[:, self.roles.index("phase")]

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "project": str(self.project),
            "library": self.manifest["library"],
            **{f"{role}_sha256": sha for role, sha in self.manifest["quantized_sha256"].items()},
        }
