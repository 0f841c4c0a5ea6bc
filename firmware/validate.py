"""Bit-accuracy validation: the compiled hls4ml emulation against the QKeras firmware model.

Inputs must lie on the input quantizer's grid (see :func:`cdinn.quantize.grid.quantize_input`); then every
output value must be *identical*. When some differ, :func:`first_mismatching_layer` uses hls4ml's tracing
(the emulation recompiled to record every layer's output) to name the first layer whose output differs
from the QKeras model's.
"""

from __future__ import annotations

import numpy as np

from cdinn.firmware.emulate import EmulatorSpec, predict_parallel


def compare_outputs(reference: np.ndarray, emulated: np.ndarray) -> dict:
    """Exactness statistics of emulated vs reference outputs, both (B, values)."""
    reference = reference.reshape(len(reference), -1)
    emulated = emulated.reshape(len(emulated), -1)
    equal = reference == emulated
    return {
        "patterns": int(len(reference)),
        "values": int(equal.size),
        "identical_fraction": float(equal.mean()),
        "patterns_with_mismatch": int((~equal.all(axis=1)).sum()),
        "max_abs_difference": float(np.abs(reference - emulated).max()) if equal.size else 0.0,
    }


def reference_outputs(model, x: np.ndarray) -> np.ndarray:
    """The Keras model's outputs (B, values), several outputs concatenated in order like the emulator's."""
    out = model.predict(x, batch_size=256, verbose=0)
    out = out if isinstance(out, list) else [out]
    return np.concatenate([o.reshape(len(x), -1) for o in out], axis=1)


def validate(fw_model, spec: EmulatorSpec, x_grid: np.ndarray, workers: int | None = None) -> dict:
    """Run both on the same on-grid inputs (B, N, N, 1); returns :func:`compare_outputs` statistics."""
    return compare_outputs(reference_outputs(fw_model, x_grid), predict_parallel(spec, x_grid, workers))


def first_mismatching_layer(hls_model, fw_model, x_grid: np.ndarray) -> str | None:
    """Name of the first layer (in hls4ml's order) whose traced output differs from the QKeras model's
    output of the layer of the same name, or None if all traced layers agree."""
    import tensorflow as tf

    from cdinn.firmware.convert import tf_keras_as_keras

    for layer in hls_model.get_layers():
        layer.set_attr("trace", True)
    with tf_keras_as_keras():  # trace() rewrites and recompiles the emulation with per-layer recording
        _, traces = hls_model.trace(np.ascontiguousarray(x_grid[:1], dtype=np.float32))
    names = [layer.name for layer in fw_model.layers if layer.name in traces]
    probe = tf.keras.Model(fw_model.input, [fw_model.get_layer(n).output for n in names])
    outputs = probe.predict(x_grid[:1], verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    keras_out = dict(zip(names, outputs, strict=True))
    for layer in hls_model.get_layers():
        if layer.name in keras_out:
            if not np.array_equal(np.ravel(traces[layer.name][0]), np.ravel(keras_out[layer.name][0])):
                return layer.name
    return None
