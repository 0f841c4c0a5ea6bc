"""Where OpenVINO's float32 inference of the default networks spends its time (the runner's layout: one thread,
batch 64), layer by layer from OpenVINO's own performance counters, and two exact rewrites of the costliest
layers measured against the graph as exported, alternating: each network's last convolution (12 channels -> 1,
3x3, on the 32x32 grid) with its output channels padded with zero filters (the extra channels sliced away), and
with its input channels padded (the decoder's last convolution given zero filters to feed them). Both compute
the same numbers; the script checks that they do.

    python experiments/openvino_layers.py
"""

import collections
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
from onnx import helper, numpy_helper

from cdinn.host.onnx_export import verified_onnx

BATCH, ROUNDS = 64, 4
CONFIG = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}


def _array(model: onnx.ModelProto, name: str) -> np.ndarray:
    return numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name))


def _replace(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    next(i for i in model.graph.initializer if i.name == name).CopyFrom(numpy_helper.from_array(value, name))


def padded_outputs(path: Path, channels: int) -> onnx.ModelProto:
    """Each ``out_conv`` with ``channels`` output channels (zero filters past the first), channel 0 sliced out."""
    model = onnx.load(str(path))
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        if node.op_type != "Conv" or not node.name.endswith("out_conv/BiasAdd"):
            continue
        weights, bias = _array(model, node.input[1]), _array(model, node.input[2])
        wide_w = np.zeros((channels, *weights.shape[1:]), weights.dtype)
        wide_w[:1] = weights
        wide_b = np.zeros(channels, bias.dtype)
        wide_b[:1] = bias
        _replace(model, node.input[1], wide_w)
        _replace(model, node.input[2], wide_b)
        out, node.output[0] = node.output[0], node.output[0] + "_wide"
        bounds = [f"{node.name}_{k}" for k in ("start", "end", "axis")]
        for name, value in zip(bounds, ([0], [1], [1]), strict=True):
            model.graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
        nodes.append(helper.make_node("Slice", [node.output[0], *bounds], [out], name=node.name + "_slice"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def padded_inputs(path: Path, channels: int) -> onnx.ModelProto:
    """Each ``dec0_conv0`` with ``channels`` output channels (zero filters) and ``out_conv`` reading them all."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type == "Conv" and node.name.endswith("dec0_conv0/BiasAdd"):
            weights, bias = _array(model, node.input[1]), _array(model, node.input[2])
            wide_w = np.zeros((channels, *weights.shape[1:]), weights.dtype)
            wide_w[: len(weights)] = weights
            wide_b = np.zeros(channels, bias.dtype)
            wide_b[: len(bias)] = bias
            _replace(model, node.input[1], wide_w)
            _replace(model, node.input[2], wide_b)
        if node.op_type == "Conv" and node.name.endswith("out_conv/BiasAdd"):
            weights = _array(model, node.input[1])
            wide_w = np.zeros((len(weights), channels, *weights.shape[2:]), weights.dtype)
            wide_w[:, : weights.shape[1]] = weights
            _replace(model, node.input[1], wide_w)
    return model


def compiled(core: ov.Core, path: Path, profile: bool = False):
    model = core.read_model(str(path))
    model.reshape({model.input(0): [BATCH, 32, 32, model.input(0).partial_shape[3].get_length()]})
    return core.compile_model(model, "CPU", dict(CONFIG, PERF_COUNT=profile)).create_infer_request()


def main() -> None:
    core = ov.Core()
    path = verified_onnx("default")[0]
    x = np.random.default_rng(0).random((BATCH, 32, 32, 2)).astype(np.float32)
    request = compiled(core, path, profile=True)
    for _ in range(5):
        request.infer({0: x})
    spent: collections.Counter = collections.Counter()
    for _ in range(20):
        request.infer({0: x})
        for layer in request.profiling_info:
            spent[f"{layer.node_name} ({layer.node_type})"] += layer.real_time.total_seconds() * 1e6 / BATCH / 20
    print(f"layers, us a frame (OpenVINO's counters, sum {sum(spent.values()):.0f}):")
    for name, us in spent.most_common(8):
        print(f"  {us:6.1f}  {name}")
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"as exported": path}
        for label, model in (
            ("out_conv: 8 output channels", padded_outputs(path, 8)),
            ("out_conv: 16 output channels", padded_outputs(path, 16)),
            ("out_conv: 16 input channels", padded_inputs(path, 16)),
        ):
            variants[label] = Path(tmp) / f"{len(variants)}.onnx"
            onnx.save(model, str(variants[label]))
        requests = {label: compiled(core, p) for label, p in variants.items()}
        reference = [np.array(v) for v in requests["as exported"].infer({0: x}).values()]
        times: dict[str, list[float]] = {label: [] for label in requests}
        for label, req in requests.items():
            got = [np.array(v) for v in req.infer({0: x}).values()]
            assert all(np.abs(a - b).max() < 1e-6 for a, b in zip(got, reference, strict=True)), label
        for _ in range(ROUNDS):
            for label, req in requests.items():
                start, frames = time.perf_counter(), 0
                while time.perf_counter() - start < 1:
                    req.infer({0: x})
                    frames += BATCH
                times[label].append((time.perf_counter() - start) / frames * 1e6)
    print("| graph | us a frame, median (range) |\n|---|---|")
    for label, values in times.items():
        print(f"| {label} | {np.median(values):.0f} ({min(values):.0f}-{max(values):.0f}) |")


if __name__ == "__main__":
    main()
