"""The quantization recipe (bit widths and fine-tuning budget), kept free of TensorFlow and QKeras so the
command line can read its defaults without importing them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cdinn.errors import CdinnError
from cdinn.options import LR_SCHEDULES, LrSchedule, option


def layer_bits(text: str) -> dict[str, int]:
    """``"enc0_conv0=6,out_conv=10"`` -> ``{"enc0_conv0": 6, "out_conv": 10}``."""
    try:
        return {k.strip(): int(v) for k, v in (item.split("=") for item in text.split(",") if item.strip())}
    except ValueError:
        raise CdinnError(f"per-layer bits must look like 'enc0_conv0=6,out_conv=10', got {text!r}") from None


@dataclass(frozen=True)
class QuantConfig:
    """Bit widths (total bits, sign included where signed) and fine-tuning recipe."""

    weight_bits: int = option(8, "weight and bias bits (sign included)", flag="bits")
    activation_bits: int = option(10, "bits of every ReLU output")
    input_bits: int = option(9, "bits of the input quantizer (sign bit + 8 fractional bits)")
    output_bits: int = option(16, "bits of the logits the firmware outputs")
    weight_bits_per_layer: dict[str, int] = option(
        factory=dict, help="per-layer weight bits, e.g. enc0_conv0=6,out_conv=10", flag="layer_bits", parse=layer_bits
    )
    sparsity: float = option(0.0, "target fraction of zero weights after pruning (0: no pruning)")
    examples: int = option(60_000, "fine-tuning patterns, drawn as the float networks' training data was")
    val: int = option(4_000, "validation patterns")
    epochs: int = option(3, "quantization-aware fine-tuning epochs")
    prune_epochs: int = option(3, "pruning epochs (with --sparsity)")
    batch: int = option(256, "patterns per optimisation step")
    learning_rate: float = option(
        1e-4, "Adam learning rate of the QAT fine-tuning (and of the pruning unless --prune-lr is given)", flag="lr"
    )
    prune_learning_rate: float | None = option(
        None, "Adam learning rate of the pruning (default: --lr)", flag="prune_lr"
    )
    lr_schedule: LrSchedule = option(
        "constant", "learning rate of each pass (pruning, QAT): constant, or cosine decay to 0 over the pass"
    )
    seed: int = option(101, "seed of the fine-tuning data and shuffling")

    def __post_init__(self) -> None:
        for name in ("weight_bits", "activation_bits", "input_bits", "output_bits"):
            if not 2 <= getattr(self, name) <= 32:
                raise CdinnError(f"{name} must lie in [2, 32], got {getattr(self, name)}")
        for name in ("learning_rate", "prune_learning_rate"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise CdinnError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise CdinnError(f"learning-rate schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.sparsity < 1.0:
            raise CdinnError(f"sparsity must lie in [0, 1), got {self.sparsity}")

    def steps(self, epochs: int) -> int:
        """Optimiser steps of a fine-tuning pass of ``epochs`` epochs."""
        return epochs * -(-self.examples // self.batch)

    def as_dict(self) -> dict:
        return asdict(self)
