"""Float vs QAT Keras vs emulation: every reconstruction metric on the same simulated test patterns."""

from __future__ import annotations

from typing import Any

import numpy as np

from cdinn.firmware.emulate import predict_parallel
from cdinn.model.architectures import input_channels
from cdinn.model.conventions import ROLES, network_input, sigmoid
from cdinn.model.inference import load_network, network_folder, outputs_to_object, predict
from cdinn.model.scoring import score_summary
from cdinn.model.test_set import test_set
from cdinn.quantize.grid import quantize_input


def compare_float_qat_emulation(state) -> dict:
    """Metrics summaries for 'float', 'qat_keras' and 'emulation' (the per-network projects)."""
    data = test_set(state.cfg.compare_patterns)
    x = network_input(data.diffraction, data.mask, input_channels(state.fw_models["shape"]))
    x_grid = quantize_input(x, state.report["input_bits"])
    folder = str(network_folder(state.cfg.net))
    outputs = {"float": [predict(load_network(folder, role)[0], x) for role in ROLES]}
    outputs["qat_keras"] = [
        sigmoid(state.fw_models[role].predict(x_grid, batch_size=256, verbose=0))[..., 0] for role in ROLES
    ]
    outputs["emulation"] = [
        sigmoid(predict_parallel(state.specs[role], x_grid, state.cfg.workers)).reshape(x.shape[:3]) for role in ROLES
    ]
    result: dict[str, Any] = {}
    for name, (shape_out, phase_out) in outputs.items():
        amplitude, phase = outputs_to_object(shape_out, phase_out)
        result[name] = score_summary(amplitude, phase, data)
    result["emulation_equals_qat_keras"] = bool(
        all(np.array_equal(a, b) for a, b in zip(outputs["qat_keras"], outputs["emulation"], strict=True))
    )
    result["patterns"] = int(len(x))
    return result
