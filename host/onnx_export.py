"""ONNX export of the float networks (tf2onnx) and onnxruntime sessions.

``export_onnx`` writes, beside the Keras weights (or to ``out_dir``): ``shape.onnx``, ``phase.onnx`` and
``cdinn.onnx`` (one graph, input ``diffraction`` (B, 32, 32, C) network inputs, C = 1 or 2 with the mask
channel: :func:`cdinn.model.conventions.network_input`; outputs ``shape`` and ``phase`` in [0, 1]); each
records the sha256 of the Keras weights it came from in its metadata, and is checked against Keras on
simulated detector patterns. The sha256 of every graph written is recorded in ``onnx.sha256.json`` beside
them (:data:`ONNX_RECORD`), which :func:`verified_onnx` checks before a session is made.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cdinn.cards import read_card, sha256
from cdinn.errors import CdinnError
from cdinn.io import read_json, write_json_atomic
from cdinn.model.inference import network_folder

COMBINED_ONNX = "cdinn.onnx"
ONNX_RECORD = "onnx.sha256.json"
OPSET = 17


def _to_onnx(model, output_names: list[str], sources: dict[str, str]):
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="diffraction"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    for output, name in zip(proto.graph.output, output_names, strict=True):  # stable output names
        for node in proto.graph.node:
            node.output[:] = [name if o == output.name else o for o in node.output]
        output.name = name
    for role, sha in sources.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"{role}_sha256", sha
    return proto


def _write_atomic(proto, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(proto.SerializeToString())
    os.replace(tmp, path)


def session(path: str | os.PathLike, threads: int | None = None, optimize: bool = True):
    """An onnxruntime CPU session; ``threads`` intra-op threads (default: onnxruntime's choice)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # silence the per-Resize deprecation notes tf2onnx's graphs trigger
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise CdinnError(f"cannot load ONNX model {path}: {str(exc).splitlines()[0]}") from None


def export_onnx(net: str = "edge", out_dir: str | os.PathLike | None = None, check_patterns: int = 64) -> dict:
    """Export the shape, phase and combined graphs; return the max |ONNX - Keras| of each output."""
    import tf_keras as keras  # TensorFlow only here: running an export (verified_onnx, session) never imports it

    from cdinn.model.architectures import input_channels
    from cdinn.model.conventions import network_input
    from cdinn.model.forward import ExperimentConfig
    from cdinn.model.inference import load_network
    from cdinn.model.simulate import broad, simulate

    folder = network_folder(net)
    out = Path(out_dir) if out_dir else folder
    out.mkdir(parents=True, exist_ok=True)
    models, sources = {}, {}
    for name in ("shape", "phase"):
        models[name], card = load_network(str(folder), name)
        sources[name] = card["sha256"]
    inputs = keras.Input(models["shape"].input_shape[1:], name="diffraction")
    combined = keras.Model(inputs, [models["shape"](inputs), models["phase"](inputs)], name="cdinn")
    graphs = {
        "shape.onnx": (models["shape"], ["shape"], {"shape": sources["shape"]}),
        "phase.onnx": (models["phase"], ["phase"], {"phase": sources["phase"]}),
        COMBINED_ONNX: (combined, ["shape", "phase"], sources),
    }
    check = simulate(check_patterns, seed=99, config=broad(experiment=ExperimentConfig()))
    x = network_input(check.diffraction, check.mask, input_channels(models["shape"]))
    report: dict[str, Any] = {"folder": str(out), "opset": OPSET, "max_abs_difference": {}}
    for filename, (model, names, src) in graphs.items():
        _write_atomic(_to_onnx(model, names, src), out / filename)
        onnx_out = session(out / filename).run(None, {"diffraction": x})
        keras_out = model.predict(x, verbose=0)
        keras_out = keras_out if isinstance(keras_out, list) else [keras_out]
        report["max_abs_difference"][filename] = float(
            max(np.abs(a - b).max() for a, b in zip(onnx_out, keras_out, strict=True))
        )
    record_onnx(out, list(graphs))
    return report


def record_onnx(folder: str | os.PathLike, filenames: list[str]) -> None:
    """Record the sha256 of the ONNX graphs ``filenames`` in ``folder``'s :data:`ONNX_RECORD`."""
    write_json_atomic(Path(folder) / ONNX_RECORD, {name: sha256(Path(folder) / name) for name in filenames})


def onnx_sources(path: str | os.PathLike) -> dict[str, str]:
    """The Keras weights' sha256 recorded in an exported ONNX file, by network."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for corrupt files
        raise CdinnError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0]}") from None
    return {p.key.removesuffix("_sha256"): p.value for p in model.metadata_props if p.key.endswith("_sha256")}


def verified_onnx(net: str, graph: str = COMBINED_ONNX) -> tuple[Path, dict[str, str]]:
    """The set's combined ONNX graph (or ``graph``: ``shape.onnx``, ``phase.onnx``, one network each) and the
    sha256 of the networks it was exported from. The graph's own sha256 must be the one its export recorded,
    and the networks it holds must be the set's Keras networks (their cards)."""
    folder = network_folder(net)
    path = folder / graph
    if not path.is_file():
        raise CdinnError(f"no ONNX export at {path}: run `cdinn export-onnx --net {net}`")
    recorded = read_json(folder / ONNX_RECORD, "ONNX record", f"re-run `cdinn export-onnx --net {net}`")
    if recorded.get(graph) != sha256(path):
        raise CdinnError(
            f"{path} does not match the sha256 its export recorded in {folder / ONNX_RECORD} "
            f"(changed or corrupt); re-run `cdinn export-onnx --net {net}`"
        )
    sources = onnx_sources(path)
    for name in ("shape", "phase") if graph == COMBINED_ONNX else (graph.removesuffix(".onnx"),):
        if sources.get(name) != read_card(folder / f"{name}.keras")["sha256"]:
            raise CdinnError(
                f"{path} was exported from other {name} weights than {folder}; re-run `cdinn export-onnx --net {net}`"
            )
    return path, sources
