"""``cdinn train`` (options from :class:`cdinn.model.train.TrainConfig`, a recipe file, the command line) and
``cdinn ablation``."""

from __future__ import annotations

import argparse
import dataclasses

from cdinn.cli.command import Command, command_line
from cdinn.cli.options import add_config_options, add_role, add_test_n, given, roles
from cdinn.errors import CdinnError

TRAINING_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "1"}
"""TensorFlow's oneDNN kernels, which it leaves off on non-Intel CPUs: 1.3-2.7x the training steps per second of
its own kernels on the 2-core AMD EPYC (docs/quality.md). Slightly different float rounding, so only the
training commands turn them on."""


def train_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.model.forward import ExperimentConfig
    from cdinn.model.simulate import DISTRIBUTIONS
    from cdinn.model.train import TrainConfig

    p.add_argument(
        "--recipe",
        help="YAML file of training options, keys as TrainConfig's fields (e.g. "
        "model/recipes/robust-stage1.yml); options typed here override it",
    )
    add_role(p)
    p.add_argument(
        "--data",
        choices=sorted(DISTRIBUTIONS),
        default=argparse.SUPPRESS,
        help="training distribution: the paper's Methods ranges or the broad one (default: paper)",
    )
    add_config_options(p, TrainConfig)
    effects = p.add_argument_group(
        "forward model", "effect ranges that change the --experiment model (cdinn.model.forward; as cdinn simulate's)"
    )
    add_config_options(effects, ExperimentConfig)
    p.add_argument("--out", required=True, help="output folder")


def recipe_keys() -> set[str]:
    """What a recipe file may set: TrainConfig's documented fields, ``data`` (the distribution's name) and the
    forward model's effect fields (changing the recipe's ``experiment``)."""
    from cdinn.model.train import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig) if "help" in f.metadata} | {"data"} | _effect_keys()


def _effect_keys() -> set[str]:
    from cdinn.model.forward import ExperimentConfig

    return {f.name for f in dataclasses.fields(ExperimentConfig) if "help" in f.metadata}


def train_config(args: argparse.Namespace):
    """TrainConfig's defaults, overridden by the recipe file's keys, overridden by the options typed."""
    from cdinn.io import read_yaml
    from cdinn.model.forward import ExperimentConfig
    from cdinn.model.simulate import distribution
    from cdinn.model.train import TrainConfig

    values: dict = {}
    if args.recipe:
        values = read_yaml(args.recipe, "training recipe")
        unknown = set(values) - recipe_keys()
        if unknown:
            raise CdinnError(
                f"training recipe {args.recipe} has unknown keys {sorted(unknown)}; known: {sorted(recipe_keys())}"
            )
    values.update(given(TrainConfig, args))
    values.update(given(ExperimentConfig, args))
    if hasattr(args, "data"):
        values["data"] = args.data
    effects = {key: values.pop(key) for key in _effect_keys() & set(values)}
    if values.get("photon_range"):
        values["photon_range"] = tuple(float(v) for v in values["photon_range"])
    data = values.pop("data", "paper")
    return TrainConfig(roles=roles(args), simulation=distribution(data), effects=effects, **values)


def train_run(args: argparse.Namespace) -> None:
    from cdinn.model.train import train

    for net, s in train(train_config(args), args.out).items():
        print(
            f"{net}: best val loss {s['val_loss']:.4f} at epoch {s['best_epoch']}, "
            f"{s['parameters']} parameters, {s['macs']} MACs, {s['wall_time_s']} s -> {args.out}/{net}.keras"
        )


def ablation_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", choices=("paper", "edge"), default="edge", help="architecture (default: edge)")
    p.add_argument("--examples", type=int, default=60_000, help="training patterns per variant (default: 60000)")
    p.add_argument("--val", type=int, default=10_000, help="validation patterns (default: 10000)")
    p.add_argument("--epochs", type=int, default=5, help="epochs per variant (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of every variant's data and weights (default: 0)")
    add_test_n(p, 1000)
    p.add_argument("--variants", default="", help="comma-separated subset (default: all)")
    p.add_argument("--out", default="results/ablation", help="output folder (default: results/ablation)")


def ablation_run(args: argparse.Namespace) -> None:
    from cdinn.evaluation.studies.ablation import markdown_table, run_ablation
    from cdinn.model.train import TrainConfig

    base = TrainConfig(config=args.config, examples=args.examples, val=args.val, epochs=args.epochs, seed=args.seed)
    variants = args.variants.split(",") if args.variants else None
    report = run_ablation(base, args.out, test_n=args.test_n, variants=variants, command=command_line(args))
    print(markdown_table(report))


def adapt_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.cli.options import add_net
    from cdinn.cli.reconstruct import DETECTOR_OPTIONS
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.model.adapt import AdaptConfig

    p.add_argument(
        "frames",
        help="measured frames: FRAMES.npy, FILE.h5[:/path], an NXmx master: (N,32,32) "
        "patterns or detector-size frames, preprocessed as `cdinn reconstruct` does",
    )
    add_net(p)
    add_config_options(p, AdaptConfig)
    add_config_options(p, PreprocessConfig, only=DETECTOR_OPTIONS)
    p.add_argument("--out", required=True, help="output folder: the adapted network set (use it as --net OUT)")


def adapt_run(args: argparse.Namespace) -> None:
    from cdinn.cli.options import config_from
    from cdinn.cli.reconstruct import DETECTOR_OPTIONS
    from cdinn.host.batch_input import load_patterns
    from cdinn.host.onnx_export import export_onnx
    from cdinn.host.preprocess import PreprocessConfig
    from cdinn.model.adapt import AdaptConfig, adapt
    from cdinn.model.conventions import GRID
    from cdinn.model.inference import as_set_path
    from cdinn.model.validation import validate_frames

    loaded = load_patterns(args.frames, GRID, config_from(PreprocessConfig, args, only=DETECTOR_OPTIONS))
    amplitudes, mask = validate_frames(loaded.patterns, GRID, loaded.intensity, loaded.mask)
    summary = adapt(args.net, amplitudes, mask, config_from(AdaptConfig, args), args.out, source=args.frames)
    export_onnx(as_set_path(args.out))
    fit = summary["held_out_fit_median"]
    print(
        f"adapted {args.net} on {summary['frames']['count'] - summary['frames']['held_out']} frame(s); held-out "
        f"median fit {fit['before']:.4g} -> {fit['after']:.4g} ({summary['frames']['held_out']} frames) -> "
        f"{args.out} (use --net {as_set_path(args.out)})"
    )
    if not fit["after"] < fit["before"]:
        raise CdinnError(
            f"adaptation did not improve the held-out fit ({fit['before']:.4g} -> {fit['after']:.4g}); "
            f"the adapted set is in {args.out}, but the original is the better choice"
        )


COMMANDS = [
    Command(
        "train",
        "train the shape and/or phase networks",
        "Train sCDI NN (shape) and/or pCDI NN (phase) on freshly simulated data; writes <net>.keras, "
        "<net>.card.json, <net>.log.csv and <net>.loss.png to --out. With a TF_CONFIG describing several "
        "workers, every worker runs the same command and trains with MultiWorkerMirroredStrategy (each "
        "simulates its own data shard; the chief writes --out).",
        train_arguments,
        train_run,
        environment=TRAINING_ENVIRONMENT,
    ),
    Command(
        "adapt",
        "fine-tune a network set on measured frames, without labels",
        "Self-supervised adaptation on a beamline's own unlabeled frames (cdinn.model.adapt): the networks are "
        "fine-tuned so that the predicted objects' diffraction amplitudes fit the measured ones over the "
        "measured pixels; a held-out split's fit is reported before and after. Writes a network set (Keras "
        "networks, cards recording the frames' sha256, ONNX graphs) usable as --net by every command, "
        "quantize and firmware included. Exits 2 when the held-out fit did not improve.",
        adapt_arguments,
        adapt_run,
        environment=TRAINING_ENVIRONMENT,
    ),
    Command(
        "ablation",
        "train recipe variants and score them on one test set",
        "Train each variant of the training recipe (cdinn.evaluation.studies.ablation.VARIANTS) with the same data "
        "budget and seed, and score all on the same test patterns; writes table.md.",
        ablation_arguments,
        ablation_run,
        units=False,
        environment=TRAINING_ENVIRONMENT,
    ),
]
