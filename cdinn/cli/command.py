"""What every stage module of the command line provides: its :class:`Command` entries."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Command:
    """One subcommand. ``arguments`` adds its options to a parser (importing the stage's configuration only
    then, so ``cdinn --help`` stays fast); ``run`` does the work and raises :class:`cdinn.errors.CdinnError` on
    bad input; ``units``: show the data conventions below the help; ``environment``: process-environment
    defaults that :func:`cdinn.cli.main` sets before the command's stage is imported (a variable the user has
    set wins; building a parser sets nothing)."""

    name: str
    help: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]
    units: bool = True
    environment: Mapping[str, str] = field(default_factory=dict)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed, for reports ('made by ...')."""
    return "cdinn " + " ".join(shlex.quote(a) for a in args.argv)
