"""`cdinn quantize` end to end: float -> pruned -> QAT networks with a report, for both kinds of training."""

import json

import pytest

from cdinn.cli import main
from cdinn.model.inference import network_folder
from cdinn.model.losses import is_joint
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.pipeline import quantize_networks
from cdinn.quantize.qat import load_quantized

pytestmark = pytest.mark.slow
SMALL = QuantConfig(examples=768, val=256, epochs=1, prune_epochs=1, sparsity=0.25, batch=128)


def test_quantize_cli_on_the_shipped_edge_networks(tmp_path, capsys):
    code = main(
        [
            "quantize",
            "--net",
            "edge",
            "--examples",
            "768",
            "--epochs",
            "1",
            "--prune-epochs",
            "1",
            "--test-n",
            "48",
            "--sparsity",
            "0.25",
            "--prune-lr",
            "3e-4",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0 and "| quantized |" in capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["variants"]) == {"float", "pruned", "quantized"}
    assert 0.2 <= report["sparsity"]["quantized"]["shape"] <= 0.35
    card = json.loads((tmp_path / "phase.card.json").read_text())
    float_loss = json.loads((network_folder("edge") / "phase.card.json").read_text())["training"]["loss"]
    assert card["fine_tuning_loss"] == float_loss  # the pair is fine-tuned with the loss it was trained with
    assert card["fine_tuned_with"] == (["shape", "phase"] if is_joint(float_loss) else ["phase"])
    assert card["quantization"]["prune_learning_rate"] == 3e-4 and card["quantization"]["learning_rate"] == 1e-4
    assert f"quantized_relu({QuantConfig().activation_bits}" in card["bit_widths"]["enc0_conv0_relu"]
    assert load_quantized(tmp_path / "shape.h5").get_layer("logits") is not None


def test_one_network_of_a_jointly_trained_pair_is_fine_tuned_with_oriented_targets(tmp_path):
    from cdinn.model.train import TrainConfig, train

    train(
        TrainConfig(config="edge", examples=1024, val=256, epochs=1, loss="twin", batch=128),
        tmp_path / "float",
        progress=False,
    )
    report = quantize_networks(str(tmp_path / "float"), ("phase",), SMALL, tmp_path / "q", test_n=32)
    assert report["sparsity"]["quantized"]["phase"] >= 0.2
    card = json.loads((tmp_path / "q" / "phase.card.json").read_text())
    assert card["fine_tuning_loss"] == "phase_cos" and card["fine_tuned_with"] == ["phase"]
    assert card["training"]["loss"] == "twin"
