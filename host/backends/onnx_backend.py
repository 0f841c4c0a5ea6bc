"""The float networks exported to ONNX, run by onnxruntime (the default CPU backend).

Its thread layout (``threads``, the inference threads in all):

* 1: the combined graph (both networks) on one thread: the layout for one slot of a busier process (``cdinn run``
  with ``--backend onnx``, a Dask worker sharing the machine with others);
* 2 or more, or not given (the API's and the batch commands' default: every core this process may use): the two
  networks' own graphs as two sessions of half the threads each, run concurrently (the phase network on a worker
  thread; onnxruntime releases the interpreter lock). The two networks are independent and their small layers
  spread poorly over threads: on two cores this ran 1.09-1.15x faster than the combined graph on two threads at
  batch 1 and 1.15-1.24x at batch 64 in two runs, to the same numbers (``python experiments/onnx_threads.py``,
  docs/runner.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cdinn.host.backends.base import Backend
from cdinn.host.backends.options import OnnxOptions
from cdinn.host.onnx_export import session, verified_onnx
from cdinn.model.conventions import ROLES


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxBackend(Backend[OnnxOptions]):
    name = "onnx"
    tolerance = 1e-5  # float32 rounding: the same graph, another runtime

    def __init__(self, net: str = "default", threads: int | None = None):
        self.path, self.sources = verified_onnx(net)
        total = threads or available_cores()
        self.threads = threads
        self.layout = "one graph" if total == 1 else "two sessions"
        if total == 1:
            self.sessions: tuple = (session(self.path, 1),)  # the combined graph's, or the shape and phase networks'
            self._worker = None
        else:  # shape on (total + 1) // 2 threads in the caller's thread, phase on total // 2 in a worker
            graphs = [verified_onnx(net, f"{role}.onnx")[0] for role in ROLES]
            counts = ((total + 1) // 2, total // 2)
            self.sessions = tuple(session(path, n) for path, n in zip(graphs, counts, strict=True))
            self._worker = ThreadPoolExecutor(1, "cdinn-onnx-phase")
        self.channels = int(self.sessions[0].get_inputs()[0].shape[-1])

    @classmethod
    def from_options(cls, net: str, options: OnnxOptions) -> OnnxBackend:
        return cls(net, options.threads)

    def run_graphs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bare onnxruntime calls of this layout: (B, N, N, C) inputs -> the shape and phase outputs, each
        (B, N, N, 1)."""
        feed = {"diffraction": x}
        if self._worker is None:
            shape_out, phase_out = self.sessions[0].run(None, feed)
            return shape_out, phase_out
        pending = self._worker.submit(self.sessions[1].run, None, feed)
        shape_out = self.sessions[0].run(None, feed)[0]
        return shape_out, pending.result()[0]

    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape_out, phase_out = self.run_graphs(x)
        return shape_out[..., 0], phase_out[..., 0]

    def provenance(self) -> dict:
        return {
            "backend": self.name,
            "onnx": str(self.path),
            "shape_sha256": self.sources["shape"],
            "phase_sha256": self.sources["phase"],
            "threads": self.threads or 0,
            "layout": self.layout,
        }
