"""The float networks' ONNX graph (the one the onnx backend runs, checked the same way) compiled by OpenVINO
for the CPU: ``openvino`` computes in float32 (the same numbers from another runtime's kernels);
``openvino-bf16`` in bfloat16 on CPUs with bfloat16 arithmetic (AMX, AVX-512-BF16): several times faster, the
amplitudes within ~1e-3 of the float networks' on average (``experiments/runtimes.py`` measures them side by
side; ``experiments/effects_front.py`` the quality by effect)."""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import OpenvinoOptions
from cdinn.host.onnx_export import verified_onnx
from cdinn.model.conventions import GRID, ROLES


class OpenvinoBackend(Backend[OpenvinoOptions]):
    name = "openvino"
    tolerance = 1e-5  # float32 rounding: the same graph, another runtime
    precision: ClassVar[str] = "f32"
    """OpenVINO's inference precision (its ``INFERENCE_PRECISION_HINT``)."""

    def __init__(self, net: str = "default", threads: int | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise CdinnError(f"the {self.name} backend needs the 'openvino' package (pip install openvino)") from None
        self.path, self.sources = verified_onnx(net)
        core = ov.Core()
        self._check_cpu(core)
        model = core.read_model(str(self.path))
        self.channels = model.input(0).partial_shape[3].get_length()
        model.reshape({model.input(0): [-1, GRID, GRID, self.channels]})  # any batch
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": self.precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(model, "CPU", config)
        # the precision OpenVINO compiled the graph for, which provenance records
        self.compiled_precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._outputs = [compiled.output(role) for role in ROLES]
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request: calls from several threads take turns
        self.threads = threads
        self.version = ov.__version__.split("-")[0]

    def _check_cpu(self, core) -> None:
        """Float32 runs on any CPU."""

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
            "precision": self.compiled_precision,
            "shape_sha256": self.sources["shape"],
            "phase_sha256": self.sources["phase"],
            "threads": self.threads or 0,
        }


class OpenvinoBf16Backend(OpenvinoBackend):
    """The same graph computed in bfloat16 (8-bit mantissa, float32's range): the weights and activations
    rounded to it, the sums in float32. Not exact: on 300 test patterns the default networks' amplitudes lay
    3e-4 from the float networks' on average (at most 0.02), the phase 6e-3 rad where the object is (at most
    0.06); edge's 7e-4 and 8e-3."""

    name = "openvino-bf16"
    tolerance = 2e-3  # mean |amplitude difference|: bfloat16 rounding of weights and activations
    precision = "bf16"

    def _check_cpu(self, core) -> None:
        """OpenVINO would compute in float32 without saying so on a CPU without bfloat16 arithmetic."""
        if not bf16_available(core):
            raise CdinnError(
                "the openvino-bf16 backend needs a CPU with bfloat16 arithmetic (AMX or AVX-512-BF16), "
                "which this one lacks: use --backend openvino"
            )


def bf16_available(core=None) -> bool:
    """Whether OpenVINO finds bfloat16 arithmetic on this CPU (``core``: an ``openvino.Core``, made if None)."""
    if core is None:
        import openvino as ov

        core = ov.Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
