"""Quantization-aware fine-tuning with QKeras, starting from trained float weights.

The quantized network mirrors the float one layer by layer:

* ``input_quant``: ``quantized_bits(input_bits, 0)`` right after the input, so the firmware sees exactly
  the grid training saw (inputs in [0, 1) on a 2^-(input_bits-1) grid; 1.0 saturates to the top code);
* every convolution becomes a ``QConv2D`` with ``quantized_bits`` weights and biases (integer bits from
  the float weights' range) followed by ``quantized_relu`` (integer bits from the activations' range on
  calibration data);
* the last convolution ends in ``logits``: ``quantized_bits(output_bits, ...)``; this is what the firmware
  computes. The sigmoid after it is evaluated on the host in float, identically for the QKeras model and
  the emulation, so bit-exactness is checked on the logits (hls4ml's sigmoid is a lookup table).

Bit widths are configurable per layer (``weight_bits_per_layer`` of :class:`cdinn.quantize.config.QuantConfig`).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras
from qkeras import QActivation, QConv2D, quantized_bits, quantized_relu

from cdinn.errors import CdinnError
from cdinn.quantize.config import QuantConfig

LOGITS = "logits"
INPUT_QUANT = "input_quant"


def integer_bits(max_abs: float) -> int:
    """Integer bits (sign excluded) needed to hold ``max_abs`` without saturating; at least 0."""
    return max(0, math.ceil(math.log2(max_abs))) if max_abs > 0 else 0


def _calibrate(float_model: keras.Model, x: np.ndarray) -> dict[str, float]:
    """Largest output of every convolution (after its activation) on calibration inputs. The chain of
    layers is applied directly, so it also works for models whose layers belong to several graphs (as
    after ``strip_pruning``)."""
    ranges = {}
    out = tf.convert_to_tensor(x)
    for layer in float_model.layers[1:]:
        out = layer(out)
        if isinstance(layer, keras.layers.Conv2D):
            ranges[layer.name] = float(tf.reduce_max(tf.abs(out)))
    return ranges


def quantized_network(float_model: keras.Model, cfg: QuantConfig, calibration: np.ndarray) -> keras.Model:
    """The QKeras twin of ``float_model`` (see module docstring), initialised from its weights."""
    ranges = _calibrate(float_model, calibration)
    inputs = keras.Input(float_model.input_shape[1:], name=float_model.input.name.split(":")[0])
    x = QActivation(quantized_bits(cfg.input_bits, 0, alpha=1), name=INPUT_QUANT)(inputs)
    for layer in float_model.layers[1:]:
        if isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            bits = cfg.weight_bits_per_layer.get(layer.name, cfg.weight_bits)
            w_int = integer_bits(max(np.abs(kernel).max(), np.abs(bias).max()))
            conv = QConv2D(
                layer.filters,
                layer.kernel_size,
                padding=layer.padding,
                name=layer.name,
                kernel_quantizer=quantized_bits(bits, w_int, alpha=1),
                bias_quantizer=quantized_bits(bits, w_int, alpha=1),
            )
            x = conv(x)
            conv.set_weights([kernel, bias])
            if layer.get_config()["activation"] == "relu":
                a_int = integer_bits(ranges[layer.name])
                x = QActivation(quantized_relu(cfg.activation_bits, a_int), name=f"{layer.name}_relu")(x)
            else:
                o_int = integer_bits(ranges[layer.name]) + 1
                x = QActivation(quantized_bits(cfg.output_bits, o_int, alpha=1), name=LOGITS)(x)
        elif isinstance(layer, keras.layers.Activation | keras.layers.MaxPooling2D | keras.layers.UpSampling2D):
            x = type(layer).from_config(layer.get_config())(x)
        else:
            raise CdinnError(f"layer {layer.name} ({type(layer).__name__}) has no quantized counterpart")
    return keras.Model(inputs, x, name=f"{float_model.name}_q")


def firmware_model(qmodel: keras.Model) -> keras.Model:
    """The part of a quantized network that becomes firmware: everything up to the ``logits`` quantizer."""
    return keras.Model(qmodel.input, qmodel.get_layer(LOGITS).output, name=f"{qmodel.name}_fw")


def input_bits_of(qmodel: keras.Model) -> int:
    """Total bits of a quantized network's input quantizer."""
    return int(qmodel.get_layer(INPUT_QUANT).quantizer.bits)


def fraction_bits_of(qmodel: keras.Model) -> int:
    """Fractional bits of a quantized network's ``logits`` (total bits - integer bits - sign bit)."""
    quantizer = qmodel.get_layer(LOGITS).quantizer
    return int(quantizer.bits) - int(quantizer.integer) - 1


def bit_widths(qmodel: keras.Model) -> dict[str, str]:
    """Human-readable quantizer of every quantized layer, by layer name."""
    out = {}
    for layer in qmodel.layers:
        if isinstance(layer, QConv2D):
            out[layer.name] = f"weights {layer.kernel_quantizer_internal}, bias {layer.bias_quantizer_internal}"
        elif isinstance(layer, QActivation):
            out[layer.name] = str(layer.quantizer)
    return out


def load_quantized(path) -> keras.Model:
    """Load a QKeras network saved by ``cdinn quantize``."""
    from qkeras.utils import load_qmodel

    try:
        return load_qmodel(str(path), compile=False)
    except (OSError, ValueError) as exc:
        raise CdinnError(f"cannot load quantized network {path}: {str(exc).splitlines()[0]}") from None
