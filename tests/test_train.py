import json

import numpy as np
import pytest

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.model.architectures import ARCHITECTURES, build_network, count_macs, describe, get_architecture
from cdinn.model.train import TrainConfig, train


def test_paper_and_edge_configurations():
    paper, edge = describe(get_architecture("paper")), describe(get_architecture("edge"))
    # hand count for 'edge': 3x3 convs 1->8 @32^2, 8->16 @16^2, 16->16 @8^2, 16->8 @16^2, 8->1 @32^2
    assert edge["macs"] == 9 * (1 * 8 * 1024 + 8 * 16 * 256 + 16 * 16 * 64 + 16 * 8 * 256 + 8 * 1 * 1024)
    assert paper["macs"] > 20 * edge["macs"]
    model = build_network(ARCHITECTURES["paper"], "phase")
    assert model.output_shape == (None, 32, 32, 1)
    assert [type(layer).__name__ for layer in model.layers].count("UpSampling2D") == 2
    assert all(layer.interpolation == "nearest" for layer in model.layers if hasattr(layer, "interpolation"))
    assert model.layers[-1].get_config()["activation"] == "sigmoid"
    assert count_macs(model) == paper["macs"]


def test_a_short_training_run_lowers_the_loss_and_writes_its_artefacts(tmp_path):
    cfg = TrainConfig(nets=("shape",), config="edge", examples=2048, val=256, epochs=3, batch=64, seed=3)
    summary = train(cfg, tmp_path, progress=False)["shape"]
    curve = summary["val_loss_curve"]
    assert curve[-1] < curve[0] and min(curve) < 0.5
    for name in ("shape.keras", "shape.card.json", "shape.log.csv", "shape.loss.png"):
        assert (tmp_path / name).stat().st_size > 0
    card = read_card(tmp_path / "shape.keras")
    assert card["training"]["examples"] == 2048 and card["macs"] == summary["macs"]
    assert card["versions"]["tensorflow"].startswith("2.")


def test_training_is_deterministic_for_a_seed(tmp_path):
    cfg = TrainConfig(nets=("phase",), config="edge", examples=512, val=128, epochs=1, batch=64, seed=5)
    a = train(cfg, tmp_path / "a", progress=False)["phase"]["val_loss"]
    b = train(cfg, tmp_path / "b", progress=False)["phase"]["val_loss"]
    assert np.isclose(a, b, rtol=1e-4)


def test_tampered_weights_are_refused(tmp_path):
    cfg = TrainConfig(nets=("shape",), config="edge", examples=256, val=64, epochs=1, batch=64)
    train(cfg, tmp_path, progress=False)
    card = json.loads((tmp_path / "shape.card.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / "shape.card.json").write_text(json.dumps(card))
    with pytest.raises(CdinnError, match="do not match their model card"):
        read_card(tmp_path / "shape.keras")


@pytest.mark.parametrize("kwargs", [dict(nets=("shapes",)), dict(config="huge"), dict(loss="l7"),
                                    dict(epochs=0)])
def test_bad_training_configurations_are_rejected(kwargs):
    with pytest.raises(CdinnError):
        TrainConfig(**kwargs)
