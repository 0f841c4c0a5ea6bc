"""``cdinn simulate``: simulated patterns and objects to HDF5."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command
from cdinn.cli.options import add_config_options, config_from

GENERATOR_OPTIONS = ("size", "phase_family", "position", "photons")


def arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.model.simulate import DISTRIBUTIONS, SimulationConfig

    p.add_argument("--n", type=int, required=True, help="number of patterns")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default: 0)")
    p.add_argument("--out", required=True, help="output HDF5 file (written atomically)")
    p.add_argument(
        "--data",
        choices=sorted(DISTRIBUTIONS),
        default="broad",
        help="distribution: the broad one (phase gradients to ~2 rad/px, objects from ~15 px) or the "
        "paper's Methods ranges (default: broad)",
    )
    add_config_options(p, SimulationConfig, only=GENERATOR_OPTIONS)
    from cdinn.model.forward import EXPERIMENTS, ExperimentConfig

    p.add_argument(
        "--experiment",
        choices=sorted(EXPERIMENTS),
        default=None,
        help="detector forward model the patterns go through: the randomised training model "
        "('detector') or 'ideal'; the effect options below change it (without --experiment they "
        "apply alone, to every frame); writes 'mask' (1 = no measurement)",
    )
    add_config_options(p, ExperimentConfig)
    p.add_argument("--oversampled", action="store_true", help="also store the 2x oversampled pattern")
    p.add_argument("--chunk", type=int, default=10_000, help="patterns generated per step (default: 10000)")


def run(args: argparse.Namespace) -> None:
    from cdinn.cli.options import given
    from cdinn.model.forward import IDEAL, ExperimentConfig, experiment
    from cdinn.model.simulate import SimulationConfig, distribution
    from cdinn.model.simulate_io import write_simulation

    effects = given(ExperimentConfig, args)
    model = None
    if args.experiment or effects:
        base = experiment(args.experiment) if args.experiment else IDEAL
        model = config_from(ExperimentConfig, args, base=base)
    cfg = config_from(SimulationConfig, args, base=distribution(args.data), only=GENERATOR_OPTIONS, experiment=model)
    write_simulation(args.out, args.n, args.seed, cfg, oversampled=args.oversampled, chunk=args.chunk)
    print(f"wrote {args.n} patterns to {args.out}")


COMMANDS = [
    Command(
        "simulate",
        "write simulated patterns and objects to HDF5",
        "Simulate convex objects with smooth phase fields and their diffraction amplitudes; writes "
        "'diffraction' (N,S,S) amplitudes, 'amplitude', 'phase' (radians) and, with --oversampled, "
        "'diffraction_oversampled' (N,2S,2S).",
        arguments,
        run,
    )
]
