"""Conversion of quantized Keras networks to hls4ml projects: the one place that talks to hls4ml's
converter, and the one place that routes the ``keras`` module to tf-keras.

hls4ml 1.3 picks its Keras-3 parser whenever the ``keras`` 3 package is importable, even for a tf-keras
model (failing with ``'Node' object has no attribute 'arguments'``). :func:`tf_keras_as_keras` makes
``import keras`` return ``tf_keras`` for the duration of the conversion so hls4ml takes its Keras-2
parser, and restores the module afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cdinn.firmware.config import FirmwareConfig
from cdinn.quantize.qat import INPUT_QUANT


@contextmanager
def tf_keras_as_keras() -> Iterator[None]:
    """Within the block, ``sys.modules['keras']`` is ``tf_keras`` (Keras 2)."""
    import tf_keras

    saved = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("keras", None)
        else:
            sys.modules["keras"] = saved


def _hls_type(quantizer) -> str:
    """The ap_fixed type that holds exactly what a QKeras quantized_bits/quantized_relu produces, with
    the same rounding (half to even: RND_CONV) and saturation."""
    bits, integer = int(quantizer.bits), int(quantizer.integer)
    if type(quantizer).__name__ == "quantized_relu":
        return f"ufixed<{bits},{integer},RND_CONV,SAT>"
    return f"fixed<{bits},{integer + 1},RND_CONV,SAT>"


def hls_config(model, cfg: FirmwareConfig) -> dict:
    """hls4ml configuration for a quantized network: per-layer ('name' granularity, automatic precision
    for accumulators), with the precision fixes that make the emulation bit-exact:

    * the input layer holds exactly the input quantizer's grid;
    * a convolution followed by a linear quantizer (the ``logits``) outputs that quantizer's type: hls4ml
      otherwise drops the quantizer when it merges the linear activation into the convolution.
    """
    import hls4ml

    with tf_keras_as_keras():
        config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=cfg.Backend)
    config["Model"]["Strategy"] = cfg.strategy("default")
    layers = config["LayerName"]
    input_quant = next((layer for layer in model.layers if layer.name.endswith(INPUT_QUANT)), None)
    if input_quant is not None:  # float networks (no quantizers) keep hls4ml's default precisions
        layers[model.layers[0].name]["Precision"]["result"] = _hls_type(input_quant.quantizer)
    for layer in model.layers:
        inbound = layer._inbound_nodes[0].inbound_layers if layer._inbound_nodes else None
        if type(layer).__name__ == "QActivation" and type(layer.quantizer).__name__ == "quantized_bits":
            if layer is not input_quant and inbound is not None:
                for name in (inbound.name, f"{inbound.name}_linear"):  # the conv and its own linear activation
                    if name in layers:
                        layers[name]["Precision"]["result"] = _hls_type(layer.quantizer)
        if layer.name in layers and "ReuseFactor" in layers[layer.name]:
            layers[layer.name]["ReuseFactor"] = cfg.reuse(layer.name)
            layers[layer.name]["Strategy"] = cfg.strategy(layer.name)
    return config


def convert(
    model,
    cfg: FirmwareConfig,
    output_dir: str | Path,
    test_inputs: np.ndarray | None = None,
    test_outputs: np.ndarray | None = None,
    write: bool = True,
):
    """Convert and write the HLS project for ``model`` (a firmware model ending at its logits).

    ``test_inputs``/``test_outputs`` (float arrays, one pattern per row) become the C test bench's vectors
    (``tb_data/tb_input_features.dat`` and ``tb_output_predictions.dat``). Returns the hls4ml ModelGraph.
    ``write=False``: the ModelGraph of a project already written there, nothing written.
    """
    import hls4ml

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tb = {}
    if test_inputs is not None and write:
        tb["input_data_tb"] = str(output_dir / "tb_input.npy")
        np.save(tb["input_data_tb"], test_inputs.reshape(len(test_inputs), -1))
    if test_outputs is not None and write:
        tb["output_data_tb"] = str(output_dir / "tb_output.npy")
        np.save(tb["output_data_tb"], test_outputs.reshape(len(test_outputs), -1))
    config = hls_config(model, cfg)
    with tf_keras_as_keras():
        hls_model = hls4ml.converters.convert_from_keras_model(
            model,
            hls_config=config,
            backend=cfg.Backend,
            io_type=cfg.IOType,
            output_dir=str(output_dir),
            part=cfg.Part,
            clock_period=cfg.ClockPeriod,
            project_name=cfg.ProjectName,
            **tb,
        )
        if write:
            hls_model.write()
    return hls_model


def compile_emulation(hls_model) -> Path:
    """Build the C++ emulation library with g++ (hls4ml's compile); returns the shared library's path."""
    with tf_keras_as_keras():
        hls_model.compile()
    return Path(hls_model._top_function_lib._name)
