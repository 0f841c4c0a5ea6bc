"""Command-line options made from config dataclasses (fields built with :func:`cdinn.options.option`), and
the options several stages share.

An option's default is ``argparse.SUPPRESS``: what the user did not type is absent from the parsed
arguments, so :func:`config_from` leaves the dataclass default (or a recipe's value) in place and each
default exists once. The help text shows that default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from cdinn.options import refine_budget

UNITS = """conventions: diffraction frames are amplitudes |FT| or intensities |FT|^2 (--input-kind: auto reads
what the input declares, else integers as counts and real numbers as amplitudes), zero frequency at the centre
pixel [N/2, N/2] (fftshift); any overall scale is fine (each frame is normalised to its maximum). Objects:
amplitude in [0, 1] and phase in radians in [-pi, pi], on an N x N grid (N = 32 for the networks; 2N x 2N
'oversampled' patterns for ER/HIO phase retrieval). Input files: FRAMES.npy, FILE.h5 (NeXus default signal,
else dataset 'diffraction'), FILE.h5:/path, an NXmx master, TIFF, or a glob."""

NET_HELP = "network set: 'default', a shipped name (robust, paper, edge) or a folder"


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list | dict):
        return ",".join(map(str, value)) if value else "none"
    return "none" if value is None else str(value)


def _argument_kwargs(hint: Any, meta: Mapping[str, Any]) -> dict[str, Any]:
    """argparse keywords for a field of type ``hint`` (``X | None`` is treated as ``X``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    kwargs: dict[str, Any] = {"metavar": meta.get("metavar")} if meta.get("metavar") else {}
    if meta.get("parse"):
        return {**kwargs, "type": meta["parse"]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        return {"choices": args}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            from cdinn.options import comma_list

            return {**kwargs, "type": comma_list}
        return {**kwargs, "type": args[0], "nargs": len(args)}
    return {**kwargs, "type": hint}


def add_config_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
) -> None:
    """One option per documented field of the dataclass ``cls`` (``only`` those named; none of ``skip``), on a
    parser or one of its argument groups."""
    hints = typing.get_type_hints(cls)
    chosen = None if only is None else set(only)
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or (chosen is not None and f.name not in chosen) or f.name in skip:
            continue
        default = _default(f)
        kwargs = _argument_kwargs(hints[f.name], meta)
        if meta.get("nargs"):
            kwargs["nargs"] = meta["nargs"]
        name = meta.get("flag") or f.name
        if "metavar" not in kwargs and "choices" not in kwargs and "action" not in kwargs:
            kwargs["metavar"] = name.upper()
        shown = "" if "default:" in meta["help"] else f" (default: {_shown(default)})"
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=f.name,
            default=argparse.SUPPRESS,
            help=(meta["help"] + shown).replace("%", "%%"),
            **kwargs,
        )


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of ``cls`` the user typed (absent ones keep their defaults)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def config_from(
    cls: type, args: argparse.Namespace, base: Any = None, only: Iterable[str] | None = None, **fixed: Any
) -> Any:
    """The dataclass ``cls`` (or ``base``, one of its instances) with the options typed applied (``only`` those
    named, where two configurations share a parser), then ``fixed``."""
    typed = given(cls, args)
    if only is not None:
        typed = {k: v for k, v in typed.items() if k in set(only)}
    values = {**typed, **fixed}
    return dataclasses.replace(base, **values) if base is not None else cls(**values)


def add_net(parser: argparse.ArgumentParser, default: str = "default") -> None:
    """``--net``: which network set (never a network role; that is ``--role``)."""
    parser.add_argument("--net", default=default, help=f"{NET_HELP} (default: {default})")


def add_role(parser: argparse.ArgumentParser) -> None:
    """``--role``: which network(s) of a set a stage works on."""
    parser.add_argument(
        "--role",
        choices=("shape", "phase", "both"),
        default="both",
        help="network role: the shape network, the phase network or both (default: both)",
    )


def roles(args: argparse.Namespace) -> tuple[str, ...]:
    """``--role`` as the tuple of network names."""
    return ("shape", "phase") if args.role == "both" else (args.role,)


def add_refine(parser: argparse.ArgumentParser) -> None:
    """``--refine none|K|auto``, the same for every command that reconstructs (:func:`refine_budget`)."""
    parser.add_argument(
        "--refine",
        type=refine_budget,
        default=0,
        metavar="none|K|auto",
        help="none: the networks alone; K: K iterations of NN-seeded ER/HIO for every frame; auto: only frames "
        "whose fit error exceeds the threshold, each until its fit stops improving. With K or auto the patterns "
        "are 2x oversampled 64x64 (detector frames are binned to it, frames stored on the grid must be 64x64) "
        "and the networks see every other pixel (default: none)",
    )


def add_inversion_options(parser: argparse.ArgumentParser, backend: str = "onnx") -> None:
    """What every command that inverts frames through :mod:`cdinn.inversion` takes: the network set, the backend
    (``backend`` by default) with its options, the refinement and the views."""
    add_net(parser)
    add_backend_options(parser, default=backend)
    add_refine(parser)
    add_views(parser)


def add_views(parser: argparse.ArgumentParser) -> None:
    """``--views 1|2|4|8``, the same for every command that reconstructs (:func:`cdinn.inversion.parse_views`)."""
    from cdinn.model.views import VIEW_COUNTS

    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_COUNTS,
        default=1,
        help="the networks see this many views of each pattern (its mirrors, then their transposes) and each frame "
        "keeps the estimate that fits its pattern best: better results for up to that many times the networks' "
        "time (default: 1)",
    )


def add_test_n(parser: argparse.ArgumentParser, default: int) -> None:
    """``--test-n``: the size of a test set, the same name in every stage."""
    parser.add_argument("--test-n", type=int, default=default, help=f"test patterns (default: {default})")


def add_backend_options(parser: argparse.ArgumentParser, default: str = "onnx") -> None:
    """``--backend`` (``default`` unless given) and every registered backend's options
    (:data:`cdinn.host.backends.OPTIONS`; an option two backends share, such as ``--project``, once)."""
    from cdinn.host.backends import BACKENDS, OPTIONS

    parser.add_argument("--backend", choices=BACKENDS, default=default, help=f"inference backend (default: {default})")
    seen: set[str] = set()
    for cls in dict.fromkeys(OPTIONS.values()):
        add_config_options(parser, cls, skip=seen)
        seen |= {f.name for f in dataclasses.fields(cls)}


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """The backend options typed (of any backend: :func:`cdinn.host.backends.get_backend` refuses those the
    chosen backend does not take)."""
    from cdinn.host.backends import OPTIONS

    return {k: v for cls in OPTIONS.values() for k, v in given(cls, args).items()}
