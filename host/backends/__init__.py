"""Inference backends, all with one interface (:class:`cdinn.host.backends.base.Backend`), chosen by name."""

from __future__ import annotations

from cdinn.errors import CdinnError

BACKENDS = ("keras", "onnx", "emulator", "fpga")


def get_backend(name: str, **options):
    """Instantiate a backend by name; ``options`` are passed to its constructor."""
    if name == "keras":
        from cdinn.host.backends.keras_backend import KerasBackend

        return KerasBackend(**options)
    if name == "onnx":
        from cdinn.host.backends.onnx_backend import OnnxBackend

        return OnnxBackend(**options)
    if name == "emulator":
        from cdinn.host.backends.emulator_backend import EmulatorBackend

        return EmulatorBackend(**options)
    if name == "fpga":
        from cdinn.host.backends.fpga_backend import FpgaBackend

        return FpgaBackend(**options)
    raise CdinnError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
