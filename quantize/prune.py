"""Magnitude pruning of convolution weights with tensorflow-model-optimization.

``prune_low_magnitude`` with a polynomial-decay schedule to the target sparsity, fine-tuned on simulated
data, then ``strip_pruning`` so the result is a plain Keras model whose zeroed weights stay zero.
``hold_sparsity`` keeps an existing sparsity pattern fixed while another stage (QAT) fine-tunes.
"""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

_sparsity = tfmot.sparsity.keras


Models = dict[str, keras.Model]


def _wrapped_fit(models: Models, schedule, fit) -> Models:
    wrapped = {role: _sparsity.prune_low_magnitude(model, pruning_schedule=schedule) for role, model in models.items()}
    fit(wrapped, [_sparsity.UpdatePruningStep()])
    return {role: _sparsity.strip_pruning(model) for role, model in wrapped.items()}


def prune(models: Models, sparsity: float, fit, steps: int) -> Models:
    """Prune each model to ``sparsity`` over ``steps`` optimiser steps; ``fit(wrapped_models, callbacks)`` runs
    the fine-tuning (of one network, or of a pair together). Returns the stripped models."""
    schedule = _sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=sparsity,
        begin_step=0,
        end_step=max(1, int(steps * 0.8)),
        frequency=max(1, steps // 20),
    )
    return _wrapped_fit(models, schedule, fit)


def hold_sparsity(models: Models, sparsity: float, fit) -> Models:
    """Fine-tune with ``fit(wrapped_models, callbacks)`` while keeping ``sparsity`` (constant schedule) in
    every prunable layer, QKeras layers included; returns the stripped models."""
    return _wrapped_fit(models, _sparsity.ConstantSparsity(sparsity, begin_step=0, frequency=1), fit)


def weight_sparsity(model: keras.Model) -> dict[str, float]:
    """Fraction of exactly-zero kernel weights per convolution, and overall under ``'total'``."""
    out, zeros, total = {}, 0, 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.get_weights()[0]
            out[layer.name] = float(np.mean(kernel == 0))
            zeros += int((kernel == 0).sum())
            total += kernel.size
    out["total"] = zeros / total if total else 0.0
    return out
