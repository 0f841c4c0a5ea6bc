"""onnxruntime layouts for the default networks' combined graph (two independent networks of ~7 M
multiply-accumulates each), side by side: intra-op threads 1 or 2, sequential or parallel execution (the two
networks concurrently), batch 1 and 64. Prints ms per call and us per frame (best of 2 s of calls each).

    python experiments/onnx_threads.py
"""

import time

import numpy as np
import onnxruntime as ort

from cdinn.model.inference import network_folder

ort.set_default_logger_severity(3)
PATH = str(network_folder("default") / "cdinn.onnx")
x = np.random.default_rng(0).random((64, 32, 32, 2)).astype(np.float32)
print("| intra-op threads | execution | batch | ms per call | us per frame |")
print("|---|---|---|---|---|")
for threads in (1, 2):
    for parallel in (False, True):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 2 if parallel else 1
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(PATH, options, providers=["CPUExecutionProvider"])
        for batch in (1, 64):
            feed = {"diffraction": x[:batch]}
            session.run(None, feed)
            start, calls = time.perf_counter(), 0
            while time.perf_counter() - start < 2:
                session.run(None, feed)
                calls += 1
            per_call = (time.perf_counter() - start) / calls
            print(
                f"| {threads} | {'parallel' if parallel else 'sequential'} | {batch} | {per_call * 1e3:.3f} | "
                f"{per_call / batch * 1e6:.0f} |"
            )
