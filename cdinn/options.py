"""Config dataclass fields that document themselves for the command line.

A field made with :func:`option` carries its help text (units included) in its metadata; the command line
(:mod:`cdinn.cli.options`) turns such fields into options and builds the dataclass from what was typed, so
every default exists once: in the dataclass. Fields made with plain ``field`` or a bare default are not
command-line options. Kept free of argparse and TensorFlow so any module can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, field
from typing import Any, Literal, get_args

LrSchedule = Literal["constant", "cosine"]  # constant, or cosine decay to 0 over the run
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)


def option(
    default: Any = MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | Any = MISSING,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
    metavar: str | tuple[str, ...] | None = None,
    nargs: int | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    ``help``: what the value means, with units; ``flag``: the option's name when not the field's
    (``--flag-name``); ``parse``: turns the typed text into the value when the field's type does not say how
    (e.g. ``"8"`` or ``"auto"``); ``metavar``/``nargs`` as in argparse."""
    meta = {"help": help, "flag": flag, "parse": parse, "metavar": metavar, "nargs": nargs}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def comma_list(text: str) -> tuple[str, ...]:
    """``"a,b, c"`` -> ``("a", "b", "c")``."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def centre_pixel_text(text: str) -> tuple[int, int]:
    """``"ROW,COL"`` -> (row, col)."""
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected ROW,COL (two integers), got {text!r}") from None
    return row, col


def refine_budget(text: str) -> int | str:
    """A refinement as commands spell it: ``"none"`` (0: the networks alone), a number of NN-seeded ER/HIO
    iterations for every frame (>= 0), or ``"auto"``."""
    if text in ("none", "auto"):
        return 0 if text == "none" else text
    value = int(text)
    if value < 0:
        raise ValueError(f"a refinement is none, auto or a number of iterations >= 0, got {text}")
    return value
