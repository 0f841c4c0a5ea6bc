"""Running a compiled hls4ml emulation library (bit-accurate C++ of the firmware), in parallel.

The library built by hls4ml's ``compile()`` exports ``<project>_float(float *in, float *out...)``: one
pattern in (the flattened input, converted to the input fixed-point type inside) and one array per
firmware output (converted back to float). This module imports only numpy and ctypes, so worker processes start
fast and never load TensorFlow.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.ctypeslib as npc

from cdinn.errors import CdinnError


@dataclass(frozen=True)
class EmulatorSpec:
    """Where the library is and the flattened sizes of one input pattern and of each output."""

    library: str
    project: str
    input_size: int
    output_sizes: tuple[int, ...]


class Emulator:
    """One loaded emulation library; ``predict`` runs patterns one after another."""

    def __init__(self, spec: EmulatorSpec):
        if not Path(spec.library).is_file():
            raise CdinnError(f"emulation library not found: {spec.library} (run `cdinn firmware` first)")
        self.spec = spec
        lib = ctypes.CDLL(str(Path(spec.library).resolve()))
        try:
            self._top = getattr(lib, f"{spec.project}_float")
        except AttributeError:
            raise CdinnError(f"{spec.library} has no function {spec.project}_float: not this project") from None
        self._top.restype = None
        self._top.argtypes = [npc.ndpointer(ctypes.c_float, flags="C_CONTIGUOUS")] * (1 + len(spec.output_sizes))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(B, ...) patterns -> (B, sum(output_sizes)) float32 firmware outputs, concatenated in order."""
        flat = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)
        if flat.shape[1] != self.spec.input_size:
            raise CdinnError(f"emulator expects {self.spec.input_size} values per pattern, got {flat.shape[1]}")
        out = np.zeros((len(flat), sum(self.spec.output_sizes)), np.float32)
        for i in range(len(flat)):
            rows = [np.zeros(size, np.float32) for size in self.spec.output_sizes]
            self._top(np.ascontiguousarray(flat[i]), *rows)
            out[i] = np.concatenate(rows)
        return out


_worker: Emulator | None = None


def _init_worker(spec: EmulatorSpec) -> None:
    global _worker
    _worker = Emulator(spec)


def _run_chunk(chunk: np.ndarray) -> np.ndarray:
    if _worker is None:
        raise CdinnError("emulation worker used before its initialiser ran")
    return _worker.predict(chunk)


def predict_parallel(spec: EmulatorSpec, x: np.ndarray, workers: int | None = None) -> np.ndarray:
    """``Emulator(spec).predict(x)`` split over ``workers`` processes (default: all cores)."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(x)))
    if workers == 1:
        return Emulator(spec).predict(x)
    chunks = np.array_split(np.asarray(x, np.float32), workers * 4)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(spec,)) as pool:
        return np.concatenate(pool.map(_run_chunk, [c for c in chunks if len(c)]))
