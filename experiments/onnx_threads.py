"""onnxruntime layouts for the default networks' combined graph (two independent networks of ~3.6 M
multiply-accumulates each), side by side: one graph with intra-op threads 1 or 2, sequential or parallel execution
(the two networks concurrently inside onnxruntime), and two sessions, one per network (the graph split at its two
outputs, 1 thread each), run concurrently from two Python threads (onnxruntime releases the interpreter lock);
batch 1 and 64. Every layout's outputs are checked against the one-thread graph's. The layouts alternate over
``ROUNDS`` rounds of ~0.5 s each (this VM's rates drift within minutes); prints the median and the range of us per
frame.

    python experiments/onnx_threads.py
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime as ort
from onnx.utils import Extractor

from cdinn.host.onnx_export import verified_onnx

ROUNDS = 5
ROLES = ("shape", "phase")
ort.set_default_logger_severity(3)
PATH = str(verified_onnx("default")[0])


def session(model: str | bytes, threads: int, parallel: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 2 if parallel else 1
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def layouts() -> dict[str, Callable[[np.ndarray], list[np.ndarray]]]:
    """Each layout as a function of the (B, 32, 32, 2) input returning [shape, phase]."""
    out: dict[str, Callable[[np.ndarray], list[np.ndarray]]] = {}
    for threads in (1, 2):
        for parallel in (False, True):
            graph = session(PATH, threads, parallel)
            label = (
                f"one graph, {threads} intra-op thread{'s' * (threads > 1)}, {'parallel' if parallel else 'sequential'}"
            )
            out[label] = lambda x, g=graph: g.run(None, {"diffraction": x})
    split = Extractor(onnx.load(PATH))
    shape, phase = (session(split.extract_model(["diffraction"], [r]).SerializeToString(), 1) for r in ROLES)
    worker = ThreadPoolExecutor(1)

    def two_sessions(x: np.ndarray) -> list[np.ndarray]:
        pending = worker.submit(phase.run, None, {"diffraction": x})
        return [shape.run(None, {"diffraction": x})[0], pending.result()[0]]

    out["two sessions (one per network), 1 thread each, concurrent"] = two_sessions
    return out


def main() -> None:
    x = np.random.default_rng(0).random((64, 32, 32, 2)).astype(np.float32)
    runs = layouts()
    print("| layout | batch | us per frame, median (range) |")
    print("|---|---|---|")
    for batch in (1, 64):
        feed = x[:batch]
        reference = next(iter(runs.values()))(feed)
        for name, run in runs.items():
            assert all(np.abs(a - b).max() < 1e-6 for a, b in zip(run(feed), reference, strict=True)), name
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(ROUNDS):
            for name, run in runs.items():
                run(feed)
                start, calls = time.perf_counter(), 0
                while time.perf_counter() - start < 0.5:
                    run(feed)
                    calls += 1
                times[name].append((time.perf_counter() - start) / calls / batch * 1e6)
        for name, values in times.items():
            print(f"| {name} | {batch} | {np.median(values):.0f} ({min(values):.0f}-{max(values):.0f}) |")


if __name__ == "__main__":
    main()
