"""The sCDI / pCDI encoder-decoder networks (Cherukara et al. 2018, Fig. 1), built with tf-keras.

Encoder: per stage ``convs_per_stage`` 3x3 convolutions (ReLU, 'same' padding) then 2x2 max-pooling.
Optionally ``bottleneck_convs`` more convolutions at the lowest resolution (capacity where it is cheap: a
4x4 map after three stages, where one 3x3 convolution already sees the whole pattern).
Decoder: the stages mirrored, each ending in 2x nearest-neighbour up-sampling (the only Resize hls4ml
implements); with ``skips`` each decoder stage first concatenates the encoder features of the same
resolution (U-Net style). A final 3x3 convolution to one channel and a sigmoid give an (N, N, 1) map in [0, 1]:
the object amplitude (shape network) or the phase mapped by :func:`cdinn.model.conventions.phase_to_unit`
(phase network). Every layer is one hls4ml can stream (io_stream).

Input: (N, N, C) normalised diffraction amplitudes (C = 1), or amplitudes and the mask of unmeasured pixels
(C = 2; see :func:`cdinn.model.conventions.network_input`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import tf_keras as keras

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID, ROLES


@dataclass(frozen=True)
class ArchitectureConfig:
    """Widths of the encoder stages (the decoder mirrors them); ``size`` is the input grid in pixels,
    ``channels`` the input channels (1: amplitudes; 2: amplitudes and the mask of unmeasured pixels)."""

    name: str
    filters: tuple[int, ...]
    convs_per_stage: int
    kernel: int = 3
    size: int = GRID
    bottleneck_convs: int = 0
    skips: bool = False
    channels: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


ARCHITECTURES: dict[str, ArchitectureConfig] = {
    # The paper's Fig. 1: 32 and 64 filters, 32x32 -> 16x16 -> 8x8 and back.
    "paper": ArchitectureConfig("paper", filters=(32, 64), convs_per_stage=2),
    # The FPGA design: the same topology with one convolution per stage and 8/16 filters (~40x fewer MACs).
    "edge": ArchitectureConfig("edge", filters=(8, 16), convs_per_stage=1),
    # The default: three stages down to 4x4 (where one more 3x3 convolution sees the whole pattern), one
    # convolution per stage, ~1/10 of paper's MACs.
    "robust": ArchitectureConfig("robust", filters=(12, 24, 48), convs_per_stage=1, bottleneck_convs=1),
}


def get_architecture(name: str) -> ArchitectureConfig:
    """Look up a named configuration ('paper' or 'edge')."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise CdinnError(f"unknown network configuration {name!r}; choose from {sorted(ARCHITECTURES)}") from None


def _encoder(arch: ArchitectureConfig, x):
    """Per stage: ``convs_per_stage`` 3x3 ReLU convolutions, then 2x2 max-pooling; then the bottleneck
    convolutions. Returns the features and the list of pre-pooling features per stage (for skips)."""
    stages = []
    for s, width in enumerate(arch.filters):
        for c in range(arch.convs_per_stage):
            x = keras.layers.Conv2D(width, arch.kernel, padding="same", activation="relu", name=f"enc{s}_conv{c}")(x)
        stages.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"enc{s}_pool")(x)
    for c in range(arch.bottleneck_convs):
        x = keras.layers.Conv2D(
            arch.filters[-1], arch.kernel, padding="same", activation="relu", name=f"bottleneck_conv{c}"
        )(x)
    return x, stages


def _decoder(arch: ArchitectureConfig, encoded, prefix: str = ""):
    """The encoder's stages mirrored, each ending in 2x nearest-neighbour up-sampling (and with ``skips``
    starting from the encoder features of its resolution concatenated), then the final one-channel
    convolution (linear; the sigmoid follows as its own layer)."""
    x, stages = encoded
    for s, width in reversed(list(enumerate(arch.filters))):
        if arch.skips and s < len(arch.filters) - 1:
            x = keras.layers.Concatenate(name=f"{prefix}dec{s}_skip")([x, stages[s + 1]])
        for c in range(arch.convs_per_stage):
            x = keras.layers.Conv2D(
                width, arch.kernel, padding="same", activation="relu", name=f"{prefix}dec{s}_conv{c}"
            )(x)
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{prefix}dec{s}_up")(x)
    return keras.layers.Conv2D(1, arch.kernel, padding="same", name=f"{prefix}out_conv")(x)


def _check(arch: ArchitectureConfig) -> None:
    if arch.size % 2 ** len(arch.filters):
        raise CdinnError(f"grid size {arch.size} is not divisible by 2^{len(arch.filters)}")


def build_network(arch: ArchitectureConfig, role: str) -> keras.Model:
    """Build the (untrained) shape or phase network for ``arch``; layer names are stable across builds."""
    if role not in ROLES:
        raise CdinnError(f"unknown network {role!r}; choose 'shape' or 'phase'")
    _check(arch)
    inputs = keras.Input((arch.size, arch.size, arch.channels), name="diffraction")
    logits = _decoder(arch, _encoder(arch, inputs))
    outputs = keras.layers.Activation("sigmoid", name=f"{role}_out")(logits)
    return keras.Model(inputs, outputs, name=f"{role}_{arch.name}")


def pair_model(models: dict[str, keras.Model]) -> keras.Model:
    """One model around the shape and phase networks whose output stacks their maps as channels
    ``[shape, phase]`` (B, N, N, 2), for the joint losses; the networks keep their own weights."""
    inputs = keras.Input(models["shape"].input_shape[1:], name="diffraction")
    return keras.Model(inputs, keras.layers.Concatenate()([models[role](inputs) for role in ROLES]), name="pair")


def input_channels(model: keras.Model) -> int:
    """A network's input channels: 1 (amplitudes) or 2 (amplitudes and mask)."""
    return int(model.input_shape[-1])


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers; pooling etc. are free)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            kh, kw = layer.kernel_size
            macs += h * w * kh * kw * layer.input_shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.input_shape[-1] * layer.units
    return int(macs)


def describe(arch: ArchitectureConfig) -> dict:
    """Parameters and MACs per network for one configuration (both networks are the same size)."""
    model = build_network(arch, "shape")
    return {"config": arch.name, "parameters": int(model.count_params()), "macs": count_macs(model)}


def build_two_head(arch: ArchitectureConfig) -> keras.Model:
    """PtychoNN-style variant: one shared encoder, a shape decoder and a phase decoder; the output stacks
    both maps as channels ``[shape, phase]`` (for the ablation against the paper's two networks)."""
    _check(arch)
    inputs = keras.Input((arch.size, arch.size, arch.channels), name="diffraction")
    features = _encoder(arch, inputs)
    heads = [
        keras.layers.Activation("sigmoid", name=f"{role}_out")(_decoder(arch, features, f"{role}_")) for role in ROLES
    ]
    return keras.Model(inputs, keras.layers.Concatenate(name="stacked")(heads), name=f"two_head_{arch.name}")
