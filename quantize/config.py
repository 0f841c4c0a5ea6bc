"""The quantization recipe (bit widths and fine-tuning budget), kept free of TensorFlow and QKeras so the
command line can read its defaults without importing them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from cdinn.errors import CdinnError


@dataclass(frozen=True)
class QuantConfig:
    """Bit widths (total bits, sign included where signed) and fine-tuning recipe."""

    weight_bits: int = 8
    activation_bits: int = 10
    input_bits: int = 9  # sign bit + 8 fractional bits
    output_bits: int = 16
    weight_bits_per_layer: dict[str, int] = field(default_factory=dict)
    sparsity: float = 0.0
    examples: int = 60_000
    val: int = 4_000
    epochs: int = 3
    prune_epochs: int = 3
    batch: int = 256
    learning_rate: float = 1e-4
    seed: int = 101

    def __post_init__(self) -> None:
        for name in ("weight_bits", "activation_bits", "input_bits", "output_bits"):
            if not 2 <= getattr(self, name) <= 32:
                raise CdinnError(f"{name} must lie in [2, 32], got {getattr(self, name)}")
        if not 0.0 <= self.sparsity < 1.0:
            raise CdinnError(f"sparsity must lie in [0, 1), got {self.sparsity}")

    def as_dict(self) -> dict:
        return asdict(self)
