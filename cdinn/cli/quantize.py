"""``cdinn quantize``: prune + quantization-aware fine-tuning (options from
:class:`cdinn.quantize.config.QuantConfig`)."""

from __future__ import annotations

import argparse

from cdinn.cli.command import Command, command_line
from cdinn.cli.options import add_config_options, add_net, add_role, add_test_n, config_from, roles


def arguments(p: argparse.ArgumentParser) -> None:
    from cdinn.model.test_set import TEST_N
    from cdinn.quantize.config import QuantConfig

    add_net(p)
    add_role(p)
    add_config_options(p, QuantConfig)
    add_test_n(p, TEST_N)
    p.add_argument("--out", help="output folder (default: the set's quantized folder, model/weights/<set>-q)")


def run(args: argparse.Namespace) -> None:
    from cdinn.artefacts import quantized_folder
    from cdinn.quantize.config import QuantConfig
    from cdinn.quantize.pipeline import markdown_table, quantize_networks

    out = args.out or str(quantized_folder(args.net))
    report = quantize_networks(
        args.net, roles(args), config_from(QuantConfig, args), out, test_n=args.test_n, command=command_line(args)
    )
    print(markdown_table(report))
    print(f"quantized networks, cards and report in {out}")


COMMANDS = [
    Command(
        "quantize",
        "prune and quantization-aware fine-tune (QKeras)",
        "Prune a float network set (tfmot), build QKeras twins (input quantizer, quantized_bits weights, "
        "quantized_relu activations, 'logits' output), fine-tune them on data drawn as the float "
        "networks' training data was, and report every metric for float vs pruned vs quantized.",
        arguments,
        run,
    )
]
