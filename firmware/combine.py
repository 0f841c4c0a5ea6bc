"""One network that streams both reconstructions: the shape and phase firmware models side by side on a
shared input, their layers renamed ``<net>_<layer>`` and their weights copied."""

from __future__ import annotations

import tf_keras as keras
from qkeras.utils import _add_supported_quantized_objects


def combine(models: dict[str, keras.Model]) -> keras.Model:
    """A two-output model: ``models`` (role -> single-input, single-output model) applied to one input."""
    custom: dict = {}
    _add_supported_quantized_objects(custom)
    first = next(iter(models.values()))
    inputs = keras.Input(first.input_shape[1:], name=first.layers[0].name)
    outputs = []
    with keras.utils.custom_object_scope(custom):
        for role, model in models.items():
            x = inputs
            for layer in model.layers[1:]:
                config = dict(layer.get_config(), name=f"{role}_{layer.name}")
                clone = type(layer).from_config(config)
                x = clone(x)
                clone.set_weights(layer.get_weights())
            outputs.append(x)
    return keras.Model(inputs, outputs, name="_".join(models) + "_fw")
