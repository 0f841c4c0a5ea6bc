import numpy as np
import pytest
import tensorflow as tf
from qkeras import QActivation, QConv2D

from cdinn.errors import CdinnError
from cdinn.model.architectures import ArchitectureConfig, build_network
from cdinn.quantize.grid import quantize_input
from cdinn.quantize.qat import (
    LOGITS,
    QuantConfig,
    bit_widths,
    firmware_model,
    input_bits_of,
    integer_bits,
    load_quantized,
    quantized_network,
)

TINY = ArchitectureConfig("tiny", filters=(4, 8), convs_per_stage=1, size=16)


@pytest.fixture(scope="module")
def float_and_x():
    tf.keras.utils.set_random_seed(0)
    model = build_network(TINY, "shape")
    x = np.random.default_rng(0).random((32, 16, 16, 1)).astype(np.float32)
    return model, x


def test_input_quantizer_grid_matches_qkeras(float_and_x):
    model, x = float_and_x
    q = quantized_network(model, QuantConfig(input_bits=9), x)
    probe = tf.keras.Model(q.input, q.get_layer("input_quant").output)
    values = np.concatenate([x, np.full((1, 16, 16, 1), 1.0, np.float32)])
    assert np.array_equal(probe.predict(values, verbose=0), quantize_input(values, 9))
    assert quantize_input(np.array([1.0, 0.5 + 1 / 1024]), 9).tolist() == [255 / 256, 0.5]
    assert input_bits_of(q) == 9


def test_integer_bits():
    assert [integer_bits(v) for v in (0.0, 0.3, 1.0, 1.5, 7.9, 8.0)] == [0, 0, 0, 1, 3, 3]


def test_quantized_network_mirrors_the_float_network(float_and_x):
    model, x = float_and_x
    cfg = QuantConfig(weight_bits=10, activation_bits=12, weight_bits_per_layer={"out_conv": 12})
    q = quantized_network(model, cfg, x)
    convs = [layer for layer in q.layers if isinstance(layer, QConv2D)]
    float_convs = [layer.name for layer in model.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    assert [c.name for c in convs] == float_convs
    assert q.get_layer(LOGITS) is not None and q.layers[-1].get_config()["activation"] == "sigmoid"
    assert "quantized_bits(12" in bit_widths(q)["out_conv"] and "quantized_bits(10" in bit_widths(q)["enc0_conv0"]
    # with generous bit widths the quantized network stays close to the float one
    assert np.abs(q.predict(x, verbose=0) - model.predict(x, verbose=0)).max() < 0.05
    fw = firmware_model(q)
    assert isinstance(fw.layers[-1], QActivation) and fw.layers[-1].name == LOGITS


def test_save_and_load_round_trip(float_and_x, tmp_path):
    model, x = float_and_x
    q = quantized_network(model, QuantConfig(), x)
    q.save(tmp_path / "q.h5", include_optimizer=False)
    loaded = load_quantized(tmp_path / "q.h5")
    assert np.array_equal(loaded.predict(x, verbose=0), q.predict(x, verbose=0))
    with pytest.raises(CdinnError, match="cannot load quantized network"):
        load_quantized(tmp_path / "missing.h5")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(weight_bits=1),
        dict(sparsity=1.0),
        dict(output_bits=40),
        dict(learning_rate=0.0),
        dict(prune_learning_rate=-1e-4),
        dict(lr_schedule="step"),
    ],
)
def test_bad_quantization_configs(kwargs):
    with pytest.raises(CdinnError):
        QuantConfig(**kwargs)
