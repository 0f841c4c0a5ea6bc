"""``cdinn quantize``: float networks -> pruned -> quantization-aware fine-tuned QKeras networks, with a
report comparing all three on the same test set.

Artefacts in the output folder: ``<role>.h5`` (QKeras model, loadable with ``qkeras.utils.load_qmodel``)
and ``<role>.card.json`` per network, ``report.json`` and ``table.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras as keras

from cdinn.cards import write_card
from cdinn.io import write_json_atomic, write_text_atomic
from cdinn.model.architectures import input_channels, pair_model
from cdinn.model.conventions import ROLES, network_input
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


def fine_tuning_data(folder: str, roles: tuple[str, ...], cfg: QuantConfig) -> tuple[SimulatedBatch, np.ndarray]:
    """Fine-tuning examples drawn as the float networks' own training data was: their card's simulated
    distribution and Poisson-noise augmentation (``cfg.examples`` + ``cfg.val`` patterns, seed ``cfg.seed``).
    Returns the batch and the network inputs (B, N, N, C)."""
    model, training = load_network(folder, roles[0])
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


def fine_tuning_plan(folder: str, roles: tuple[str, ...], data, x: np.ndarray) -> list[FineTuning]:
    """How the networks are fine-tuned. Networks trained alone keep their loss and targets. A jointly trained
    pair (twin-aware loss) is fine-tuned together with its own loss; one network of such a pair alone gets
    targets oriented like the float pair's outputs and the per-network part of the joint loss."""
    cards = {role: load_network(folder, role)[1] for role in roles}
    loss = cards[roles[0]]["training"]["loss"]
    if not is_joint(loss):
        return [((role,), network_target(data, role), cards[role]["training"]["loss"]) for role in roles]
    if set(roles) == set(ROLES):
        return [(ROLES, stacked_targets(data), loss)]
    shape_out, phase_out = (predict(load_network(folder, role)[0], x) for role in ROLES)
    oriented = oriented_targets(data, shape_out, phase_out)
    per_role_loss = {"shape": "bce", "phase": "phase_cos"}
    return [((role,), oriented[role], per_role_loss[role]) for role in roles]


def quantize_networks(
    source: str, roles: tuple[str, ...], cfg: QuantConfig, out_dir: str | Path, test_n: int = TEST_N, command: str = ""
) -> dict:
    """Prune and QAT-fine-tune the networks ``roles`` of the set ``source``; write models, cards and the
    report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    folder = str(network_folder(source))
    data, x = fine_tuning_data(folder, roles, cfg)
    variants: dict[str, dict[str, keras.Model]] = {v: {} for v in VARIANTS}
    cards = {}
    for group, y, loss in fine_tuning_plan(folder, roles, data, x):
        floats = {role: load_network(folder, role) for role in group}
        pruned = {}
        for role, (float_model, _) in floats.items():
            variants["float"][role] = float_model
            pruned[role] = keras.models.clone_model(float_model)
            pruned[role].set_weights(float_model.get_weights())
        if cfg.sparsity > 0:
            fit, _ = _fitter(cfg, x, y, loss, cfg.prune_epochs, cfg.prune_learning_rate or cfg.learning_rate)
            pruned = prune(pruned, cfg.sparsity, fit, cfg.steps(cfg.prune_epochs))
        variants["pruned"].update(pruned)
        qmodels = {role: quantized_network(model, cfg, x[:2000]) for role, model in pruned.items()}
        fit, qat_log = _fitter(cfg, x, y, loss, cfg.epochs, cfg.learning_rate)
        if cfg.sparsity > 0:
            qmodels = hold_sparsity(qmodels, cfg.sparsity, fit)
        else:
            fit(qmodels, [])
        variants["quantized"].update(qmodels)
        for role, qmodel in qmodels.items():
            qmodel.save(out / f"{role}.h5", include_optimizer=False)
            float_card = floats[role][1]
            cards[role] = {
                "role": role,
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
    report = score_variants(variants, roles, test_n, command)
    for role in roles:
        cards[role]["test_metrics"] = report["variants"]
        write_card(out / f"{role}.h5", cards[role])
    write_json_atomic(out / "report.json", report)
    write_text_atomic(out / "table.md", markdown_table(report))
    return report


def score_variants(variants: dict, roles: tuple[str, ...], test_n: int = TEST_N, command: str = "") -> dict:
    """Every metric of ``cdinn evaluate`` for each variant, on one test set (needs both networks): ideal
    patterns, and for networks that take the mask also the same objects under all moderate detector effects
    at once (:data:`cdinn.model.effects.EFFECTS`)."""
    report: dict = {"command": command, "test_set": {"n": test_n}, "variants": {}, "sparsity": {}}
    if set(roles) == {"shape", "phase"}:
        sets = {"": test_set(test_n)}
        if any(input_channels(m["shape"]) == 2 for m in variants.values()):
            sets[f" ({COMBINED_EFFECTS})"] = test_set(test_n, experiment=EFFECTS[COMBINED_EFFECTS][1])
        report["test_set"].update(seed=TEST_SEED, data="broad", position="random")
        for suffix, data in sets.items():
            for name, models in variants.items():
                amplitude, phase = reconstruct_with(models["shape"], models["phase"], data.diffraction, data.mask)
                report["variants"][name + suffix] = score_summary(amplitude, phase, data)
    for name, models in variants.items():
        report["sparsity"][name] = {role: weight_sparsity(m)["total"] for role, m in models.items()}
    return report


def markdown_table(report: dict) -> str:
    """Float vs pruned vs quantized medians (and worst cases), one row per variant."""
    rows = [
        ([name], s, [", ".join(f"{role} {v:.0%}" for role, v in report["sparsity"][name.split(" (")[0]].items())])
        for name, s in report["variants"].items()
    ]
    head = f"Made by `{report['command']}`\n\n" if report.get("command") else ""
    return head + table(["variant"], ["weight sparsity"], rows) + "\n"
