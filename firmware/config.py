"""The firmware configuration: a checked-in YAML file of hls4ml settings, as a dataclass.

Fields: hls4ml backend and I/O type, FPGA part, clock period (ns), project name, and per layer the strategy
(``Latency`` or ``Resource``) and the reuse factor (``default`` for layers not named; a plain string strategy
applies to every layer).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from cdinn.errors import CdinnError
from cdinn.io import read_yaml, write_text_atomic

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
STRATEGIES = ("Latency", "Resource")


def _per_layer(values: dict, layer: str, fallback):
    """A per-layer setting: the layer's own, else (combined project, ``<net>_<name>``) its ``<name>``'s, else
    ``default``, else ``fallback``."""
    for name in (layer, layer.partition("_")[2]):
        if name in values:
            return values[name]
    return values.get("default", fallback)


@dataclass(frozen=True)
class FirmwareConfig:
    Backend: str = "Vitis"
    IOType: str = "io_stream"
    Part: str = "xcvu9p-flgb2104-2-e"
    ClockPeriod: float = 5.0
    Strategy: str | dict[str, str] = "Resource"
    ProjectName: str = "cdinn"
    ReuseFactor: dict[str, int] = field(default_factory=lambda: {"default": 1})

    def __post_init__(self) -> None:
        if self.IOType not in ("io_stream", "io_parallel"):
            raise CdinnError(f"IOType must be io_stream or io_parallel, got {self.IOType!r}")
        if self.ClockPeriod <= 0:
            raise CdinnError(f"ClockPeriod must be positive (ns), got {self.ClockPeriod}")
        if any(int(v) < 1 for v in self.ReuseFactor.values()):
            raise CdinnError("every ReuseFactor must be >= 1")
        strategies = self.Strategy.values() if isinstance(self.Strategy, dict) else [self.Strategy]
        if any(s not in STRATEGIES for s in strategies):
            raise CdinnError(f"every Strategy must be one of {STRATEGIES}, got {sorted(set(strategies))}")

    def reuse(self, layer: str) -> int:
        """Reuse factor of a layer; in the combined project a layer ``<net>_<name>`` takes ``<name>``'s."""
        return int(_per_layer(self.ReuseFactor, layer, 1))

    def strategy(self, layer: str) -> str:
        """hls4ml strategy of a layer ('default' for the model's), named like :meth:`reuse`."""
        if isinstance(self.Strategy, str):
            return self.Strategy
        return str(_per_layer(self.Strategy, layer, "Resource"))

    def as_dict(self) -> dict:
        return asdict(self)


def load_config(name_or_path: str | os.PathLike) -> FirmwareConfig:
    """A shipped configuration by name ('edge', 'paper') or a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yml"
    raw = read_yaml(path, "firmware configuration")
    unknown = set(raw) - set(FirmwareConfig.__dataclass_fields__)
    if unknown:
        raise CdinnError(f"firmware configuration {path}: unknown keys {sorted(unknown)}")
    return FirmwareConfig(**raw)


def save_config(cfg: FirmwareConfig, path: str | os.PathLike) -> None:
    """Write a configuration as YAML (atomically); ``load_config`` reads it back unchanged."""
    write_text_atomic(path, yaml.safe_dump(cfg.as_dict(), sort_keys=False))
