"""The ``cdinn`` command line: one subcommand per pipeline stage, one module per stage (each lists its
:class:`~cdinn.cli.command.Command` entries in ``COMMANDS``), options made from the stages' config dataclasses.

Bad input gives one line on stderr, ``cdinn: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from cdinn import quiet
from cdinn.cli.command import Command
from cdinn.cli.options import UNITS
from cdinn.errors import CdinnError

STAGES = ("simulate", "train", "evaluate", "reconstruct", "quantize", "firmware", "run", "tools")
"""The stage modules of this package, in the order ``cdinn --help`` lists their commands."""


def commands() -> list[Command]:
    """Every subcommand, stage by stage."""
    return [cmd for stage in STAGES for cmd in importlib.import_module(f"cdinn.cli.{stage}").COMMANDS]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; with ``only``, only that subcommand's options are added (the others
    need not import their stages)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cdinn",
        description="Real-time coherent diffraction imaging inversion "
        "with neural networks: one subcommand per pipeline stage.",
        epilog=UNITS,
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands():
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description,
            formatter_class=fmt,
            epilog=UNITS if cmd.units else None,
        )
        if only is None or only == cmd.name:
            cmd.arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def _terminated(signum, frame) -> None:
    """SIGTERM as an exception, so every temporary output file is removed on the way out (exit 143)."""
    raise SystemExit(128 + signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet.install()  # no native TensorFlow start-up lines (CUDA probing) on the terminal
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for cmd in commands():  # the command's environment defaults, before its stage imports anything
        if cmd.name == chosen:
            for name, value in cmd.environment.items():
                os.environ.setdefault(name, value)
    args = build_parser(chosen).parse_args(argv)
    args.argv = argv
    signal.signal(signal.SIGTERM, _terminated)  # `run` installs its own; elsewhere temporary files are removed
    try:
        args.run(args)
    except CdinnError as exc:
        print(f"cdinn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cdinn: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, a read-only folder, ... outside the paths the stages check themselves
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"cdinn: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # a defect: one line for the user, the traceback with CDINN_DEBUG=1
        if os.environ.get("CDINN_DEBUG"):
            raise
        print(
            f"cdinn: internal error: {type(exc).__name__}: {exc} (CDINN_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
