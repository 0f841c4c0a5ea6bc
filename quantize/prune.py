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


def prune(model: keras.Model, sparsity: float, fit, steps: int) -> keras.Model:
    """Prune ``model`` to ``sparsity`` over ``steps`` optimiser steps; ``fit(wrapped, callbacks)`` runs the
    fine-tuning. Returns the stripped model."""
    schedule = _sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0,
                                         end_step=max(1, int(steps * 0.8)), frequency=max(1, steps // 20))
    wrapped = _sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    fit(wrapped, [_sparsity.UpdatePruningStep()])
    return _sparsity.strip_pruning(wrapped)


def hold_sparsity(model: keras.Model, sparsity: float, fit) -> keras.Model:
    """Fine-tune with ``fit(wrapped, callbacks)`` while keeping ``sparsity`` (constant schedule) in every
    prunable layer, QKeras layers included; returns the stripped model."""
    schedule = _sparsity.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapped = _sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    fit(wrapped, [_sparsity.UpdatePruningStep()])
    return _sparsity.strip_pruning(wrapped)


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
