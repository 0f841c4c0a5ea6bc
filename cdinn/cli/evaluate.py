"""``cdinn evaluate`` (options from :class:`cdinn.evaluation.evaluate.EvaluateConfig`) and the studies
``refine-curve`` and ``noise-sweep``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cdinn.cli.command import Command, command_line
from cdinn.cli.options import add_config_options, add_net, add_test_n, config_from
from cdinn.options import comma_list


def evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.evaluation.evaluate import EvaluateConfig
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig

    add_config_options(p, EvaluateConfig)
    add_config_options(p, PhaseRetrievalConfig, only=("iterations",))
    p.add_argument("--out", default="results/evaluation", help="output folder (default: results/evaluation)")
    p.add_argument("--update-cards", action="store_true", help="record the metrics in the model cards")


def evaluate_run(args: argparse.Namespace) -> None:
    from cdinn.evaluation.evaluate import EvaluateConfig, evaluate, markdown_table
    from cdinn.model.phase_retrieval import PhaseRetrievalConfig

    retrieval = config_from(PhaseRetrievalConfig, args, only=("iterations",))
    cfg = config_from(EvaluateConfig, args, phase_retrieval=retrieval)
    report = evaluate(cfg, args.out, update_cards=args.update_cards, command=command_line(args))
    print(markdown_table(report))
    print(f"report, table and figures in {args.out}")


def study_arguments(
    test_n: int, values_flag: str, values_default: str, values_help: str, out: str
) -> Callable[[argparse.ArgumentParser], None]:
    """The options of a study: ``--net``, ``--test-n``, its comma-separated swept values and ``--out``."""

    def arguments(p: argparse.ArgumentParser) -> None:
        add_net(p)
        add_test_n(p, test_n)
        p.add_argument(
            values_flag, default=values_default, help=f"comma-separated {values_help} (default: {values_default})"
        )
        p.add_argument("--out", default=out, help=f"output folder (default: {out})")

    return arguments


def refine_curve_run(args: argparse.Namespace) -> None:
    from cdinn.evaluation.studies.refine_curve import markdown_table, refine_curve

    iterations = [int(v) for v in comma_list(args.iterations)]
    print(markdown_table(refine_curve(args.net, args.test_n, iterations, args.out, command=command_line(args))))


def noise_sweep_run(args: argparse.Namespace) -> None:
    from cdinn.evaluation.studies.noise_sweep import markdown_table, noise_sweep

    photons = [float(v) for v in comma_list(args.photons)]
    print(markdown_table(noise_sweep(args.net, args.test_n, photons, args.out, command=command_line(args))))


COMMANDS = [
    Command(
        "evaluate",
        "networks vs ER/HIO on a fresh test set",
        "Score the float networks and ER/HIO phase retrieval side by side on the same simulated patterns "
        "(random positions), with metrics invariant to shift, twin image and global phase, by regime and on "
        "held-out phase families; writes report.json, table.md, per-pattern metrics and figures.",
        evaluate_arguments,
        evaluate_run,
    ),
    Command(
        "refine-curve",
        "quality vs iterations: NN-seeded refinement vs ER/HIO",
        "Median metrics and time per pattern for NN-seeded ER/HIO refinement and for ER/HIO from random "
        "starts at each iteration count, on the same test patterns, in one run.",
        study_arguments(300, "--iterations", "0,10,20,30,50,100,200,620", "ER/HIO iteration counts", "results/refine"),
        refine_curve_run,
        units=False,
    ),
    Command(
        "noise-sweep",
        "metrics against Poisson photon count",
        "Score a network set on the same objects, noiseless and with Poisson counting noise at each total "
        "photon count per pattern; writes a table and a plot.",
        study_arguments(500, "--photons", "1e4,1e5,1e6,1e7", "total photon counts per pattern", "results/noise"),
        noise_sweep_run,
        units=False,
    ),
]
