"""Training of the shape and phase networks (Adam, best checkpoint by validation loss).

With a per-network loss (``bce``, the paper's recipe) each network is trained on its own. With a joint loss
(``twin``, ``joint``; see :mod:`cdinn.model.losses`) both are trained together inside one wrapper model whose
output stacks their maps, so the loss can accept the twin image and weight the phase by the shape; the two
networks are still saved separately, so everything downstream is unchanged.

Artefacts written to the output folder: ``<net>.keras`` (best weights) and ``<net>.card.json`` per network;
``<run>.log.csv`` (loss per epoch) and ``<run>.loss.png`` (the paper's Fig. 2), where ``<run>`` is the
network name, or ``pair`` for joint training.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from cdinn.cards import write_card
from cdinn.errors import CdinnError
from cdinn.model import figures
from cdinn.model.architectures import NETS, build_network, count_macs, get_architecture
from cdinn.model.conventions import network_input
from cdinn.model.dataset import make_dataset, network_target
from cdinn.model.losses import get_loss, is_joint
from cdinn.model.simulate import SimulatedBatch, SimulationConfig, add_poisson_noise, simulate_many


@dataclass
class TrainConfig:
    """One training run. ``examples``/``val`` are counts of simulated patterns; ``seed`` fixes data,
    initial weights and shuffling. ``photon_range`` = (low, high): that fraction ``noise_fraction`` of the
    examples gets Poisson noise at a log-uniform total photon count in the range (augmentation)."""

    nets: tuple[str, ...] = NETS
    config: str = "paper"
    examples: int = 180_000
    val: int = 20_000
    epochs: int = 10
    batch: int = 256
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # or 'cosine' (decay to 0 over the run)
    loss: str = "bce"
    seed: int = 0
    photon_range: tuple[float, float] | None = None
    noise_fraction: float = 0.75
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        unknown = set(self.nets) - set(NETS)
        if unknown:
            raise CdinnError(f"unknown network(s) {sorted(unknown)}; choose 'shape', 'phase' or 'both'")
        if self.examples < 1 or self.val < 1 or self.epochs < 1 or self.batch < 1:
            raise CdinnError("examples, val, epochs and batch must all be >= 1")
        if self.lr_schedule not in ("constant", "cosine"):
            raise CdinnError(f"learning-rate schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.photon_range is not None and not 0 < self.photon_range[0] <= self.photon_range[1]:
            raise CdinnError(f"photon range must be 0 < low <= high, got {self.photon_range}")
        get_architecture(self.config)
        get_loss(self.loss)
        if is_joint(self.loss) and tuple(sorted(self.nets)) != ("phase", "shape"):
            raise CdinnError(f"loss {self.loss!r} trains both networks together: use --net both")


def _strategy() -> tf.distribute.Strategy:
    """MirroredStrategy across GPUs when more than one is visible, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def training_data(cfg: TrainConfig, progress: bool = False) -> tuple[np.ndarray, SimulatedBatch]:
    """Network inputs (B, N, N, 1) and the simulated batch, with the optional noise augmentation."""
    data = simulate_many(cfg.examples + cfg.val, cfg.seed, cfg.simulation, progress=progress)
    diffraction = data.diffraction
    if cfg.photon_range is not None:
        rng = np.random.default_rng([cfg.seed, 1])
        noisy = rng.random(len(diffraction)) < cfg.noise_fraction
        lo, hi = np.log10(cfg.photon_range[0]), np.log10(cfg.photon_range[1])
        photons = 10.0 ** rng.uniform(lo, hi, (int(noisy.sum()), 1, 1))
        diffraction = diffraction.copy()
        diffraction[noisy] = add_poisson_noise(diffraction[noisy], photons, rng)
        empty = ~diffraction.any(axis=(1, 2))
        diffraction[empty] = data.diffraction[empty]  # a frame with no counts at all keeps its clean pattern
    return network_input(diffraction), data


def _optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    if cfg.lr_schedule == "cosine":
        steps = cfg.epochs * math.ceil(cfg.examples / cfg.batch)
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps))
    return keras.optimizers.Adam(cfg.learning_rate)


class _SaveBest(keras.callbacks.Callback):
    """Save the named sub-networks whenever the validation loss improves."""

    def __init__(self, models: dict[str, keras.Model], out: Path):
        super().__init__()
        self.models, self.out, self.best = models, out, math.inf

    def on_epoch_end(self, epoch, logs=None):
        if logs["val_loss"] < self.best:
            self.best = logs["val_loss"]
            for name, model in self.models.items():
                model.save(self.out / f"{name}.keras")


def _fit(model, models: dict[str, keras.Model], x, y, cfg: TrainConfig, out: Path, run: str, progress: bool):
    train_ds = make_dataset(x[: cfg.examples], y[: cfg.examples], cfg.batch, True, cfg.seed)
    val_ds = make_dataset(x[cfg.examples :], y[cfg.examples :], cfg.batch, False, cfg.seed)
    callbacks = [_SaveBest(models, out), keras.callbacks.CSVLogger(str(out / f"{run}.log.csv"))]
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=callbacks,
                        verbose=1 if progress else 0)
    wall = time.perf_counter() - start
    figures.loss_curve(history.history, out / f"{run}.loss.png", f"{run} ({cfg.config}, loss {cfg.loss})")
    return history.history, wall


def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, dict]:
    """Train the networks in ``cfg.nets`` on the same simulated data; returns a summary per network."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    arch = get_architecture(cfg.config)
    x, data = training_data(cfg, progress)
    runs = []  # (run name, {net: model}, history, wall time)
    if is_joint(cfg.loss):
        with _strategy().scope():
            models = {net: build_network(arch, net) for net in NETS}
            inputs = keras.Input(x.shape[1:], name="diffraction")
            pair = keras.Model(inputs, keras.layers.Concatenate()([models[n](inputs) for n in NETS]), name="pair")
            pair.compile(optimizer=_optimizer(cfg), loss=get_loss(cfg.loss))
        y = np.concatenate([network_target(data, net) for net in NETS], axis=-1)
        runs.append(("pair", models, *_fit(pair, models, x, y, cfg, out, "pair", progress)))
    else:
        for net in cfg.nets:
            with _strategy().scope():
                model = build_network(arch, net)
                model.compile(optimizer=_optimizer(cfg), loss=get_loss(cfg.loss))
            models = {net: model}
            runs.append((net, models, *_fit(model, models, x, network_target(data, net), cfg, out, net, progress)))
    summaries = {}
    for run, models, history, wall in runs:
        best = int(np.argmin(history["val_loss"]))
        for net, model in models.items():
            summary = {
                "net": net,
                "trained_as": run,
                "architecture": arch.as_dict(),
                "parameters": int(model.count_params()),
                "macs": count_macs(model),
                "training": {k: v for k, v in asdict(cfg).items() if k not in ("nets", "simulation")},
                "simulation": cfg.simulation.as_dict(),
                "best_epoch": best + 1,
                "val_loss": float(history["val_loss"][best]),
                "train_loss": [float(v) for v in history["loss"]],
                "val_loss_curve": [float(v) for v in history["val_loss"]],
                "wall_time_s": round(wall, 1),
            }
            write_card(out / f"{net}.keras", summary)
            summaries[net] = summary
    return summaries
