"""Each backend's options: one frozen dataclass per backend, every field made with
:func:`cdinn.options.option` (help text and default in one place), from which the command line builds
``cdinn run``'s backend options. Kept free of the backends' runtimes (TensorFlow, onnxruntime, hls4ml), so
building the command line imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

from cdinn.options import option


@dataclass(frozen=True)
class NoOptions:
    """The options of a backend that takes none."""


@dataclass(frozen=True)
class RuntimeOptions:
    """What the backends that run the ONNX graph on the CPU share."""

    threads: int | None = option(
        None,
        "onnx, openvino: inference threads (default: the runtime's choice; for "
        "cdinn run one, the reader and the preprocessing use the other core)",
    )


@dataclass(frozen=True)
class OnnxOptions(RuntimeOptions):
    """onnxruntime's CPU provider."""


@dataclass(frozen=True)
class OpenvinoOptions(RuntimeOptions):
    """OpenVINO's CPU plugin."""


@dataclass(frozen=True)
class FirmwareOptions:
    """What the backends that run the firmware (emulated or on a board) share."""

    project: str | None = option(None, "emulator, fpga: firmware project (default: the set's combined project)")


@dataclass(frozen=True)
class EmulatorOptions(FirmwareOptions):
    quantized: str | None = option(None, "emulator: quantized networks (default: the set's model/weights/<set>-q)")


@dataclass(frozen=True)
class FpgaOptions(FirmwareOptions):
    bitstream: str | None = option(None, "fpga: bitstream (default: cdinn.bit in the project)")
