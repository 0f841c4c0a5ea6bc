"""The default set's two-network ONNX graph under every CPU runtime available, side by side in one process:
onnxruntime's CPU provider (1 or 2 intra-op threads, sequential or parallel execution of the two independent
networks), onnxruntime's XNNPACK provider where the installed wheel has it, and OpenVINO (latency and throughput
hints, 1 or 2 threads; float32, and bfloat16 where the CPU has it). Per runtime: median microseconds per frame
at batch 1 and at batch 64, and the largest difference from onnxruntime's sequential single-thread output
(exactness).

    python experiments/runtimes.py [ONNX]      (default: model/weights/robust/cdinn.onnx)
"""

import sys
import time

import numpy as np
import onnxruntime as ort

PATH = sys.argv[1] if len(sys.argv) > 1 else "model/weights/robust/cdinn.onnx"
RUNS = {1: 400, 64: 40}  # calls timed per batch size


def timed(call, x: np.ndarray) -> float:
    """Median microseconds per frame of ``call(x)`` over RUNS calls (after 20 warm-up calls)."""
    for _ in range(20):
        call(x)
    samples = []
    for _ in range(RUNS[len(x)]):
        start = time.perf_counter()
        call(x)
        samples.append(time.perf_counter() - start)
    return float(np.median(samples)) / len(x) * 1e6


def onnxruntime_runners() -> dict:
    runners = {}
    for threads in (1, 2):
        for mode in ("sequential", "parallel"):
            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 2 if mode == "parallel" else 1
            options.execution_mode = (
                ort.ExecutionMode.ORT_PARALLEL if mode == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
            )
            session = ort.InferenceSession(PATH, options, providers=["CPUExecutionProvider"])
            runners[f"onnxruntime CPU, {threads} thread(s), {mode}"] = lambda x, s=session: s.run(
                None, {"diffraction": x}
            )
    if "XnnpackExecutionProvider" in ort.get_available_providers():
        session = ort.InferenceSession(PATH, providers=["XnnpackExecutionProvider", "CPUExecutionProvider"])
        runners["onnxruntime XNNPACK"] = lambda x, s=session: s.run(None, {"diffraction": x})
    else:
        print(f"onnxruntime {ort.__version__}: this wheel has no XNNPACK provider ({ort.get_available_providers()})")
    return runners


def openvino_runners() -> dict:
    import openvino as ov

    from cdinn.host.backends.openvino_backend import bf16_available

    core = ov.Core()
    model = core.read_model(PATH)
    model.reshape({"diffraction": [-1, 32, 32, int(model.input(0).partial_shape[3].get_length())]})
    runners = {}
    precisions = ["f32"] + (["bf16"] if bf16_available(core) else [])
    for precision in precisions:
        for hint in ("LATENCY", "THROUGHPUT"):
            for threads in (1, 2):
                compiled = core.compile_model(
                    model,
                    "CPU",
                    {"PERFORMANCE_HINT": hint, "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision},
                )
                request = compiled.create_infer_request()
                name = f"OpenVINO {ov.__version__.split('-')[0]} {precision} {hint.lower()}, {threads} thread(s)"
                runners[name] = lambda x, r=request: list(r.infer({0: x}).values())
    return runners


def main() -> None:
    rng = np.random.default_rng(1)
    channels = ort.InferenceSession(PATH, providers=["CPUExecutionProvider"]).get_inputs()[0].shape[-1]
    runners = {**onnxruntime_runners(), **openvino_runners()}
    reference_name = next(iter(runners))
    print(f"{PATH}: {channels}-channel input; reference = {reference_name}")
    print("| runtime | batch 1: us/frame | batch 64: us/frame | max abs difference |")
    print("|---|---|---|---|")
    x64 = rng.random((64, 32, 32, channels), dtype=np.float32)
    reference = [np.asarray(o) for o in runners[reference_name](x64)]
    for name, call in runners.items():
        out = [np.asarray(o) for o in call(x64)]
        diff = max(float(np.abs(a.reshape(r.shape) - r).max()) for a, r in zip(out, reference, strict=True))
        b1, b64 = timed(call, x64[:1]), timed(call, x64)
        print(f"| {name} | {b1:.0f} | {b64:.1f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
