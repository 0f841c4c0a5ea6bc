"""Float vs QAT Keras vs emulation: every reconstruction metric on the same simulated test patterns."""

from __future__ import annotations

import numpy as np

from cdinn.firmware.emulate import predict_parallel
from cdinn.model.conventions import complex_object, network_input, sigmoid
from cdinn.model.evaluate import EvaluateConfig, test_set
from cdinn.model.inference import load_network, network_folder, outputs_to_object, predict
from cdinn.model.metrics import reconstruction_metrics, summarise
from cdinn.quantize.grid import quantize_input


def compare_float_qat_emulation(state) -> dict:
    """Metrics summaries for 'float', 'qat_keras' and 'emulation' (the per-network projects)."""
    data = test_set(EvaluateConfig(n=state.cfg.compare_patterns))
    x = network_input(data.diffraction)
    x_grid = quantize_input(x, state.report["input_bits"])
    folder = str(network_folder(state.cfg.float_source))
    outputs = {"float": [predict(load_network(folder, net)[0], x) for net in ("shape", "phase")]}
    outputs["qat_keras"] = [sigmoid(state.fw_models[net].predict(x_grid, batch_size=256, verbose=0))[..., 0]
                            for net in ("shape", "phase")]
    outputs["emulation"] = [sigmoid(predict_parallel(state.specs[net], x_grid, state.cfg.workers)).reshape(x.shape[:3])
                            for net in ("shape", "phase")]
    result = {}
    for name, (shape_out, phase_out) in outputs.items():
        amplitude, phase = outputs_to_object(shape_out, phase_out)
        metrics = reconstruction_metrics(complex_object(amplitude, phase), data.amplitude, data.phase)
        result[name] = summarise(metrics)
    result["emulation_equals_qat_keras"] = bool(all(np.array_equal(a, b) for a, b in
                                                    zip(outputs["qat_keras"], outputs["emulation"], strict=True)))
    result["patterns"] = int(len(x))
    return result
