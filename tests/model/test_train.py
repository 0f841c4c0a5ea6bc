import itertools
import json

import numpy as np
import pytest

from cdinn.cards import read_card
from cdinn.errors import CdinnError
from cdinn.model.architectures import ARCHITECTURES, build_network, count_macs, describe, get_architecture
from cdinn.model.inference import load_network, network_folder
from cdinn.model.train import TrainConfig, adam, initial_network, train


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
    cfg = TrainConfig(roles=("shape",), loss="bce", config="edge", examples=2048, val=256, epochs=3, batch=64, seed=3)
    summary = train(cfg, tmp_path, progress=False)["shape"]
    curve = summary["val_loss_curve"]
    assert curve[-1] < curve[0] and min(curve) < 0.5
    for name in ("shape.keras", "shape.card.json", "shape.log.csv", "shape.loss.png"):
        assert (tmp_path / name).stat().st_size > 0
    card = read_card(tmp_path / "shape.keras")
    assert card["training"]["examples"] == 2048 and card["macs"] == summary["macs"]
    assert card["versions"]["tensorflow"].startswith("2.")


def test_training_is_deterministic_for_a_seed(tmp_path):
    cfg = TrainConfig(roles=("phase",), loss="bce", config="edge", examples=512, val=128, epochs=1, batch=64, seed=5)
    a = train(cfg, tmp_path / "a", progress=False)["phase"]["val_loss"]
    b = train(cfg, tmp_path / "b", progress=False)["phase"]["val_loss"]
    assert np.isclose(a, b, rtol=1e-4)


def test_tampered_weights_are_refused(tmp_path):
    cfg = TrainConfig(roles=("shape",), loss="bce", config="edge", examples=256, val=64, epochs=1, batch=64)
    train(cfg, tmp_path, progress=False)
    card = json.loads((tmp_path / "shape.card.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / "shape.card.json").write_text(json.dumps(card))
    with pytest.raises(CdinnError, match="do not match their model card"):
        read_card(tmp_path / "shape.keras")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(roles=("shapes",)),
        dict(config="huge"),
        dict(loss="l7"),
        dict(epochs=0),
        dict(init="no-such-networks"),
        dict(noise_fraction=1.5),
    ],
)
def test_bad_training_configurations_are_rejected(kwargs):
    with pytest.raises(CdinnError):
        TrainConfig(**kwargs)


def test_the_cosine_schedule_decays_to_zero_over_the_run_and_the_constant_one_stays():
    import tf_keras as keras

    cosine = keras.optimizers.schedules.deserialize(adam(1e-3, "cosine", 100).get_config()["learning_rate"])
    assert [float(cosine(step)) for step in (0, 50, 100)] == pytest.approx([1e-3, 5e-4, 0.0], abs=1e-9)
    assert adam(1e-3, "constant", 100).get_config()["learning_rate"] == pytest.approx(1e-3)


def test_fresh_batches_are_new_every_epoch_reproducible_and_apart_from_validation():
    from cdinn.model.dataset import network_target
    from cdinn.model.train import fresh_batches, training_data

    cfg = TrainConfig(roles=("shape",), loss="bce", config="edge", examples=256, val=64, batch=64, seed=7, fresh=True)

    def take() -> list:
        return list(itertools.islice(fresh_batches(cfg, lambda d: network_target(d, "shape"), 128), 8))

    first, again = take(), take()
    assert all(x.shape == (64, 32, 32, 1) and y.shape == (64, 32, 32, 1) for x, y in first)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    inputs = np.concatenate([x for x, _ in first]).reshape(8 * 64, -1)
    assert len(np.unique(inputs, axis=0)) == 8 * 64  # epoch 2 (batches 4..7) repeats nothing of epoch 1
    x_val, _ = training_data(cfg)
    assert len(x_val) == 64  # only the validation set is stored
    assert not (inputs[:, None, :] == x_val.reshape(64, -1)[None]).all(axis=-1).any()


def test_a_fresh_data_run_trains_and_records_it(tmp_path):
    cfg = TrainConfig(
        roles=("shape",), loss="bce", config="edge", examples=1024, val=128, epochs=2, batch=64, seed=3, fresh=True
    )
    summary = train(cfg, tmp_path, progress=False)["shape"]
    assert summary["val_loss_curve"][-1] < summary["val_loss_curve"][0]
    assert read_card(tmp_path / "shape.keras")["training"]["fresh"] is True


@pytest.mark.slow
def test_a_small_run_of_the_default_recipe_beats_cross_entropy_on_the_phase(tmp_path):
    """Same budget and seed: the default recipe (twin-aware joint loss, see docs/quality.md) against the
    paper's per-pixel cross-entropy, scored on registered test patterns at random positions."""
    from cdinn.model.inference import load_network, reconstruct_with
    from cdinn.model.scoring import score_medians
    from cdinn.model.test_set import test_set
    from cdinn.model.train import PAPER_RECIPE

    budget = dict(config="edge", examples=8192, val=512, epochs=3, seed=1)
    data = test_set(300, data="paper")  # the distribution both recipes train on
    scores = {}
    for name, recipe in (("bce", PAPER_RECIPE), ("default", {})):
        train(TrainConfig(**budget, **recipe), tmp_path / name, progress=False)
        models = [load_network(str(tmp_path / name), role)[0] for role in ("shape", "phase")]
        amplitude, phase = reconstruct_with(*models, data.diffraction)
        scores[name] = score_medians(amplitude, phase, data)
    print(scores)
    assert scores["default"]["phase_rmse_weighted"] < 0.95 * scores["bce"]["phase_rmse_weighted"]
    assert scores["default"]["phase_rmse"] < scores["bce"]["phase_rmse"]


def test_fine_tuning_starts_from_the_given_networks(tmp_path):
    shipped = load_network(str(network_folder("edge")), "shape")[0]
    start = initial_network(get_architecture("edge"), "shape", "edge")
    assert start is not shipped
    assert all(np.array_equal(a, b) for a, b in zip(start.get_weights(), shipped.get_weights(), strict=True))
    with pytest.raises(CdinnError, match="not the 'paper' architecture"):
        initial_network(get_architecture("paper"), "shape", "edge")
    common = dict(config="edge", loss="twin+support+chi2", examples=512, val=256, epochs=1, batch=64, seed=2)
    warm = train(TrainConfig(init="edge", learning_rate=1e-5, **common), tmp_path / "warm", progress=False)
    cold = train(TrainConfig(**common), tmp_path / "cold", progress=False)
    assert warm["shape"]["val_loss"] < 0.5 * cold["shape"]["val_loss"]
    card = read_card(tmp_path / "warm" / "phase.keras")
    source = read_card(network_folder("edge") / "phase.keras")
    assert card["initialised_from"] == {"networks": "edge", "sha256": source["sha256"]}
    assert read_card(tmp_path / "cold" / "phase.keras")["initialised_from"] is None


def test_a_mask_input_network_starts_exactly_where_its_one_channel_source_is(centred_patterns):
    import dataclasses

    from cdinn.model.architectures import get_architecture
    from cdinn.model.conventions import network_input
    from cdinn.model.inference import load_network, network_folder
    from cdinn.model.train import initial_network

    arch = dataclasses.replace(get_architecture("edge"), channels=2)
    widened = initial_network(arch, "shape", "edge")
    source, _ = load_network(str(network_folder("edge")), "shape")
    x = network_input(centred_patterns.diffraction[:8])
    mask = np.random.default_rng(0).random(x.shape[:3]) < 0.1
    x2 = np.concatenate([x, mask[..., None].astype(np.float32)], axis=-1)  # the same amplitudes, any mask
    assert widened.input_shape[-1] == 2
    assert np.allclose(widened.predict(x2, verbose=0), source.predict(x, verbose=0), atol=1e-6)
