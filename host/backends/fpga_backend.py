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

from cdinn.artefacts import firmware_project
from cdinn.errors import CdinnError
from cdinn.firmware.manifest import verified_firmware
from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import FpgaOptions
from cdinn.model.conventions import GRID, sigmoid
from cdinn.quantize.grid import input_codes


class FpgaBackend(Backend[FpgaOptions]):
    name = "fpga"
    tolerance = 0.02  # the emulator's: the bitstream is synthesised from the same bit-exact C++

    def __init__(self, bitstream: str | Path, project: str | Path):
        try:
            import pynq
        except ImportError:
            raise CdinnError(
                "fpga backend: no FPGA runtime here (python package 'pynq' is not installed); run on a "
                "PYNQ/XRT board with the bitstream from `make synth`, or use --backend emulator"
            ) from None
        if not Path(bitstream).is_file():
            raise CdinnError(f"fpga backend: bitstream {bitstream} not found (build it with `make synth`)")
        self.manifest, _ = verified_firmware(project)
        if "output_fraction_bits" not in self.manifest:
            raise CdinnError(
                f"fpga backend: {project}/manifest.json predates output scaling; rebuild with `cdinn firmware`"
            )
        try:
            self.overlay = pynq.Overlay(bitstream)
            self.dma = self.overlay.axi_dma_0
        except Exception as exc:  # pynq raises many types when no device is present
            raise CdinnError(f"fpga backend: cannot load {bitstream} on a device: {str(exc).splitlines()[0]}") from None
        self._allocate = pynq.allocate
        self.channels = int(self.manifest["input_size"]) // (GRID * GRID)
        self.bitstream = bitstream
        self.output_scale = np.repeat(
            2.0 ** np.asarray(self.manifest["output_fraction_bits"], np.float64), self.manifest["output_sizes"]
        )

    @classmethod
    def from_options(cls, net: str, options: FpgaOptions) -> FpgaBackend:
        """``project`` defaults to the set's combined firmware project, ``bitstream`` to its ``cdinn.bit``."""
        folder = Path(options.project) if options.project else firmware_project(net)
        return cls(options.bitstream or folder / "cdinn.bit", folder)

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = x.reshape(len(x), -1)
        codes = input_codes(flat, self.manifest["input_bits"]).astype(np.int16)
        n_out = sum(self.manifest["output_sizes"])
        inbuf = self._allocate(shape=codes.shape, dtype=np.int16)
        outbuf = self._allocate(shape=(len(codes), n_out), dtype=np.int16)
        inbuf[:] = codes
        self.dma.sendchannel.transfer(inbuf)
        self.dma.recvchannel.transfer(outbuf)
        self.dma.sendchannel.wait()
        self.dma.recvchannel.wait()
        logits = np.asarray(outbuf, np.float32) / self.output_scale
        out = sigmoid(logits).reshape(len(codes), 2, *x.shape[1:3])
        roles = self.manifest["roles"]
        return out[:, roles.index("shape")], out[:, roles.index("phase")]

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "bitstream": self.bitstream,
            **{f"{role}_sha256": sha for role, sha in self.manifest["quantized_sha256"].items()},
        }
