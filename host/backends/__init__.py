"""Inference backends, all subclasses of :class:`cdinn.host.backends.base.Backend`, found by name.

The registry maps a name to the module and class that implement it; modules are imported on first use, so
naming the onnx backend never imports TensorFlow and naming the emulator never needs a board.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib import import_module

from cdinn.errors import CdinnError
from cdinn.host.backends.options import (
    EmulatorOptions,
    FpgaOptions,
    NoOptions,
    OnnxOptions,
    OpenvinoOptions,
    RuntimeOptions,
)

REGISTRY: dict[str, str] = {
    "onnx": "cdinn.host.backends.onnx_backend:OnnxBackend",
    "openvino": "cdinn.host.backends.openvino_backend:OpenvinoBackend",
    "openvino-bf16": "cdinn.host.backends.openvino_backend:OpenvinoBf16Backend",
    "keras": "cdinn.host.backends.keras_backend:KerasBackend",
    "emulator": "cdinn.host.backends.emulator_backend:EmulatorBackend",
    "fpga": "cdinn.host.backends.fpga_backend:FpgaBackend",
}
OPTIONS: dict[str, type] = {
    "onnx": OnnxOptions,
    "openvino": OpenvinoOptions,
    "openvino-bf16": OpenvinoOptions,
    "keras": NoOptions,
    "emulator": EmulatorOptions,
    "fpga": FpgaOptions,
}
"""Each backend's options dataclass (:mod:`cdinn.host.backends.options`)."""
BACKENDS = tuple(REGISTRY)


def register(name: str, target: str, options: type = NoOptions) -> None:
    """Add a backend: ``target`` is ``'module:Class'`` of a :class:`~cdinn.host.backends.base.Backend`,
    ``options`` the dataclass its ``from_options`` takes."""
    REGISTRY[name] = target
    OPTIONS[name] = options


def takes_threads(name: str) -> bool:
    """Whether backend ``name`` runs on CPU threads it is told the number of (its options are
    :class:`~cdinn.host.backends.options.RuntimeOptions`): the commands set them for their thread layout."""
    return issubclass(OPTIONS.get(name, NoOptions), RuntimeOptions)


def backend_class(name: str):
    """The class registered under ``name``."""
    try:
        module, cls = REGISTRY[name].split(":")
    except KeyError:
        raise CdinnError(f"unknown backend {name!r}; choose from {', '.join(REGISTRY)}") from None
    return getattr(import_module(module), cls)


def get_backend(name: str, net: str = "default", **options):
    """Build the backend ``name`` for network set ``net``. ``options`` may hold any backend's options; None
    means "not given" (the backend's default); one given that this backend does not take is an error."""
    cls = backend_class(name)
    given = {k: v for k, v in options.items() if v is not None}
    options_class = OPTIONS.get(name, NoOptions)
    takes = [f.name for f in dataclasses.fields(options_class)]
    foreign = sorted(set(given) - set(takes))
    if foreign:
        raise CdinnError(
            f"the {name} backend takes no option {', '.join(foreign)}; it takes {', '.join(takes) or 'none'}"
        )
    return cls.from_options(net, options_class(**given))


@lru_cache(maxsize=16)
def cached_backend(backend: str, net: str, options: tuple[tuple[str, object], ...] = ()):
    """One backend instance per (name, network set, options as sorted (name, value) pairs), created on first
    use (sessions, compiled emulators and loaded networks are reused by every later call)."""
    return get_backend(backend, net=net, **dict(options))
