"""The hls4ml accelerator on a PYNQ board (Zynq UltraScale+ / Alveo through PYNQ's XRT layer).

The bitstream (``.bit`` + ``.hwh``, or an ``.xclbin``) comes from a synthesized firmware project; it holds
the combined network behind an AXI DMA (``axi_dma_0``). Frames are sent as the input fixed-point codes
(int16 words holding the ``input_bits``-bit input quantizer code) and the two logit maps come back as
int16 codes of the ``logits`` type, scaled by the fractional bits the firmware manifest records and passed
through the sigmoid on the host.

Without a board (no ``pynq`` package, no bitstream, or no device) the constructor fails with one line: it
never falls back to another backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cdinn.errors import CdinnError
from cdinn.firmware.manifest import read_manifest
from cdinn.model.conventions import network_input, sigmoid
from cdinn.model.inference import outputs_to_object
from cdinn.quantize.grid import input_codes


class FpgaBackend:
    name = "fpga"

    def __init__(self, bitstream: str = "firmware/build/edge/both/cdinn.bit",
                 project: str = "firmware/build/edge/both"):
        try:
            import pynq
        except ImportError:
            raise CdinnError("fpga backend: no FPGA runtime here (python package 'pynq' is not installed); run on a "
                             "PYNQ/XRT board with the bitstream from `make synth`, or use --backend emulator") from None
        if not Path(bitstream).is_file():
            raise CdinnError(f"fpga backend: bitstream {bitstream} not found (build it with `make synth`)")
        self.manifest, _ = read_manifest(project)
        if "output_fraction_bits" not in self.manifest:
            raise CdinnError(f"fpga backend: {project}/manifest.json predates output scaling; "
                             "rebuild with `cdinn firmware`")
        try:
            self.overlay = pynq.Overlay(bitstream)
            self.dma = self.overlay.axi_dma_0
        except Exception as exc:  # pynq raises many types when no device is present
            raise CdinnError(f"fpga backend: cannot load {bitstream} on a device: {str(exc).splitlines()[0]}") from None
        self._allocate = pynq.allocate
        self.bitstream = bitstream
        self.output_scale = np.repeat(2.0 ** np.asarray(self.manifest["output_fraction_bits"], np.float64),
                                      self.manifest["output_sizes"])

    def infer(self, amplitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = network_input(amplitudes).reshape(len(amplitudes), -1)
        codes = input_codes(x, self.manifest["input_bits"]).astype(np.int16)
        n_out = sum(self.manifest["output_sizes"])
        inbuf = self._allocate(shape=codes.shape, dtype=np.int16)
        outbuf = self._allocate(shape=(len(codes), n_out), dtype=np.int16)
        inbuf[:] = codes
        self.dma.sendchannel.transfer(inbuf)
        self.dma.recvchannel.transfer(outbuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        logits = np.asarray(outbuf, np.float32) / self.output_scale
        out = sigmoid(logits).reshape(len(codes), 2, *amplitudes.shape[1:])
        nets = self.manifest["nets"]
        return outputs_to_object(out[:, nets.index("shape")], out[:, nets.index("phase")])

    def provenance(self) -> dict:
        return {"backend": self.name, "bitstream": self.bitstream,
                **{f"{net}_sha256": sha for net, sha in self.manifest["quantized_sha256"].items()}}
