"""``cdinn quantize``: float networks -> pruned -> quantization-aware fine-tuned QKeras networks, with a
report comparing all three on the same test set.

Artefacts in the output folder: ``<net>.h5`` (QKeras model, loadable with ``qkeras.utils.load_qmodel``)
and ``<net>.card.json`` per network, ``report.json`` and ``table.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras as keras

from cdinn.cards import write_card
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model.architectures import NETS, input_channels, pair_model
from cdinn.model.conventions import network_input
from cdinn.model.dataset import make_dataset, network_target, oriented_targets, stacked_targets
from cdinn.model.effects import COMBINED_EFFECTS, EFFECTS
from cdinn.model.inference import load_network, network_folder, predict, reconstruct_with
from cdinn.model.losses import get_loss, is_joint
from cdinn.model.scoring import score_summary, table
from cdinn.model.simulate import SimulatedBatch, SimulationConfig, simulate_many
from cdinn.model.test_set import TEST_N, TEST_SEED, test_set
from cdinn.model.train import adam, augment
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.prune import hold_sparsity, prune, weight_sparsity
from cdinn.quantize.qat import bit_widths, quantized_network

VARIANTS = ("float", "pruned", "quantized")


def _fitter(cfg: QuantConfig, x: np.ndarray, y: np.ndarray, loss: str, epochs: int, learning_rate: float):
    """A ``fit(models, callbacks)`` closure over the fine-tuning data: one network alone, or the shape and
    phase networks together (:func:`pair_model`, for a joint loss), ``epochs`` epochs of Adam at
    ``learning_rate`` (constant or cosine-decayed over the pass, ``cfg.lr_schedule``); records the history in
    ``log``."""
    train_ds = make_dataset(x[: cfg.examples], y[: cfg.examples], cfg.batch, True, cfg.seed)
    val_ds = make_dataset(x[cfg.examples :], y[cfg.examples :], cfg.batch, False, cfg.seed)
    log: list[dict] = []
    steps = cfg.steps(epochs)

    def fit(models: dict[str, keras.Model], callbacks: list) -> None:
        model = pair_model(models) if len(models) > 1 else next(iter(models.values()))
        model.compile(optimizer=adam(learning_rate, cfg.lr_schedule, steps), loss=get_loss(loss))
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks, verbose=0)
        log.append({k: [float(v) for v in vals] for k, vals in history.history.items()})

    return fit, log


def fine_tuning_data(folder: str, nets: tuple[str, ...], cfg: QuantConfig) -> tuple[SimulatedBatch, np.ndarray]:
    """Fine-tuning examples drawn as the float networks' own training data was: their card's simulated
    distribution and Poisson-noise augmentation (``cfg.examples`` + ``cfg.val`` patterns, seed ``cfg.seed``).
    Returns the batch and the network inputs (B, N, N, C)."""
    model, training = load_network(folder, nets[0])
    simulation = SimulationConfig.from_dict(training.get("simulation", {}))
    data = simulate_many(cfg.examples + cfg.val, cfg.seed, simulation)
    photons = training["training"].get("photon_range")
    noisy = augment(
        data.diffraction,
        tuple(photons) if photons else None,
        training["training"].get("noise_fraction", 0.0),
        np.random.default_rng([cfg.seed, 1]),
    )
    return data, network_input(noisy, data.mask, input_channels(model))


FineTuning = tuple[tuple[str, ...], np.ndarray, str]  # (networks fine-tuned together, targets, loss)


def fine_tuning_plan(folder: str, nets: tuple[str, ...], data, x: np.ndarray) -> list[FineTuning]:
    """How the networks are fine-tuned. Networks trained alone keep their loss and targets. A jointly trained
    pair (twin-aware loss) is fine-tuned together with its own loss; one network of such a pair alone gets
    targets oriented like the float pair's outputs and the per-network part of the joint loss."""
    cards = {net: load_network(folder, net)[1] for net in nets}
    loss = cards[nets[0]]["training"]["loss"]
    if not is_joint(loss):
        return [((net,), network_target(data, net), cards[net]["training"]["loss"]) for net in nets]
    if set(nets) == set(NETS):
        return [(NETS, stacked_targets(data), loss)]
    shape_out, phase_out = (predict(load_network(folder, net)[0], x) for net in NETS)
    oriented = oriented_targets(data, shape_out, phase_out)
    per_net_loss = {"shape": "bce", "phase": "phase_cos"}
    return [((net,), oriented[net], per_net_loss[net]) for net in nets]


def quantize_networks(
    source: str, nets: tuple[str, ...], cfg: QuantConfig, out_dir: str | Path, test_n: int = TEST_N, command: str = ""
) -> dict:
    """Prune and QAT-fine-tune the networks ``nets`` of the set ``source``; write models, cards and the
    report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    folder = str(network_folder(source))
    data, x = fine_tuning_data(folder, nets, cfg)
    variants: dict[str, dict[str, keras.Model]] = {v: {} for v in VARIANTS}
    cards = {}
    for group, y, loss in fine_tuning_plan(folder, nets, data, x):
        floats = {net: load_network(folder, net) for net in group}
        pruned = {}
        for net, (float_model, _) in floats.items():
            variants["float"][net] = float_model
            pruned[net] = keras.models.clone_model(float_model)
            pruned[net].set_weights(float_model.get_weights())
        if cfg.sparsity > 0:
            fit, _ = _fitter(cfg, x, y, loss, cfg.prune_epochs, cfg.prune_learning_rate or cfg.learning_rate)
            pruned = prune(pruned, cfg.sparsity, fit, cfg.steps(cfg.prune_epochs))
        variants["pruned"].update(pruned)
        qmodels = {net: quantized_network(model, cfg, x[:2000]) for net, model in pruned.items()}
        fit, qat_log = _fitter(cfg, x, y, loss, cfg.epochs, cfg.learning_rate)
        if cfg.sparsity > 0:
            qmodels = hold_sparsity(qmodels, cfg.sparsity, fit)
        else:
            fit(qmodels, [])
        variants["quantized"].update(qmodels)
        for net, qmodel in qmodels.items():
            qmodel.save(out / f"{net}.h5", include_optimizer=False)
            float_card = floats[net][1]
            cards[net] = {
                "net": net,
                "source": folder,
                "source_sha256": float_card["sha256"],
                "architecture": float_card["architecture"],
                "quantization": cfg.as_dict(),
                "fine_tuning_loss": loss,
                "fine_tuned_with": list(group),
                "bit_widths": bit_widths(qmodel),
                "weight_sparsity": weight_sparsity(qmodel),
                "qat_history": qat_log,
                "training": float_card["training"],
            }
    report = score_variants(variants, nets, test_n, command)
    for net in nets:
        cards[net]["test_metrics"] = report["variants"]
        write_card(out / f"{net}.h5", cards[net])
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "table.md", markdown_table(report))
    return report


def score_variants(variants: dict, nets: tuple[str, ...], test_n: int = TEST_N, command: str = "") -> dict:
    """Every metric of ``cdinn evaluate`` for each variant, on one test set (needs both networks): ideal
    patterns, and for networks that take the mask also the same objects under all moderate detector effects
    at once (:data:`cdinn.model.effects.EFFECTS`)."""
    report: dict = {"command": command, "test_set": {"n": test_n}, "variants": {}, "sparsity": {}}
    if set(nets) == {"shape", "phase"}:
        sets = {"": test_set(test_n)}
        if any(input_channels(m["shape"]) == 2 for m in variants.values()):
            sets[f" ({COMBINED_EFFECTS})"] = test_set(test_n, experiment=EFFECTS[COMBINED_EFFECTS][1])
        report["test_set"].update(seed=TEST_SEED, data="broad", position="random")
        for suffix, data in sets.items():
            for name, models in variants.items():
                amplitude, phase = reconstruct_with(models["shape"], models["phase"], data.diffraction, data.mask)
                report["variants"][name + suffix] = score_summary(amplitude, phase, data)
    for name, models in variants.items():
        report["sparsity"][name] = {net: weight_sparsity(m)["total"] for net, m in models.items()}
    return report


def markdown_table(report: dict) -> str:
    """Float vs pruned vs quantized medians (and worst cases), one row per variant."""
    rows = [
        ([name], s, [", ".join(f"{net} {v:.0%}" for net, v in report["sparsity"][name.split(" (")[0]].items())])
        for name, s in report["variants"].items()
    ]
    head = f"Made by `{report['command']}`\n\n" if report.get("command") else ""
    return head + table(["variant"], ["weight sparsity"], rows) + "\n"
