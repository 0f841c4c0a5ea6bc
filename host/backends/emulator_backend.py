"""The firmware's bit-accurate C++ emulation (hls4ml), via the combined project's manifest.

Inputs are normalised and put on the input quantizer's grid on the host, exactly as the detector-side
firmware would receive them; the logits it returns go through the sigmoid on the host.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.firmware.emulate import Emulator
from cdinn.firmware.manifest import check_models_match, read_manifest
from cdinn.model.conventions import network_input, sigmoid
from cdinn.model.inference import outputs_to_object
from cdinn.quantize.grid import quantize_input


class EmulatorBackend:
    name = "emulator"

    def __init__(self, project: str = "firmware/build/edge/both", quantized: str = "model/weights/edge-q"):
        self.project = Path(project)
        self.manifest, spec = read_manifest(self.project)
        if sorted(self.manifest["nets"]) != ["phase", "shape"]:
            raise CdinnError(f"{project} implements {self.manifest['nets']}; the emulator backend needs the "
                             "project that streams both networks (firmware/build/<config>/both)")
        cards = {net: read_card(Path(quantized) / f"{net}.h5") for net in self.manifest["nets"]}
        check_models_match(self.manifest, cards)
        self.emulator = Emulator(spec)
        self.nets = self.manifest["nets"]

    def infer(self, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = quantize_input(network_input(amplitudes), self.manifest["input_bits"])
        out = sigmoid(self.emulator.predict(x)).reshape(len(x), len(self.nets), *amplitudes.shape[1:])
        return outputs_to_object(out[:, self.nets.index("shape")], out[:, self.nets.index("phase")])

    def provenance(self) -> dict:
        return {"backend": self.name, "project": str(self.project), "library": self.manifest["library"],
                **{f"{net}_sha256": sha for net, sha in self.manifest["quantized_sha256"].items()}}
