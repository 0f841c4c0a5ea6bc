"""Training of the shape and phase networks (Adam, per-pixel loss, best checkpoint by validation loss).

Artefacts written to the output folder, per network (``shape`` / ``phase``):
``<net>.keras`` (best weights), ``<net>.card.json`` (model card), ``<net>.log.csv`` (loss per epoch),
``<net>.loss.png`` (the paper's Fig. 2).
"""

from __future__ import annotations

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
from cdinn.model.losses import get_loss
from cdinn.model.simulate import SimulationConfig, simulate_many


@dataclass
class TrainConfig:
    """One training run. ``examples``/``val`` are counts of simulated patterns; ``seed`` fixes data,
    initial weights and shuffling."""

    nets: tuple[str, ...] = NETS
    config: str = "paper"
    examples: int = 180_000
    val: int = 20_000
    epochs: int = 10
    batch: int = 256
    learning_rate: float = 1e-3
    loss: str = "bce"
    seed: int = 0
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        unknown = set(self.nets) - set(NETS)
        if unknown:
            raise CdinnError(f"unknown network(s) {sorted(unknown)}; choose 'shape', 'phase' or 'both'")
        if self.examples < 1 or self.val < 1 or self.epochs < 1 or self.batch < 1:
            raise CdinnError("examples, val, epochs and batch must all be >= 1")
        get_architecture(self.config)
        get_loss(self.loss)


def _strategy() -> tf.distribute.Strategy:
    """MirroredStrategy across GPUs when more than one is visible, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, dict]:
    """Train each network in ``cfg.nets`` on the same simulated data; returns a summary per network."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    arch = get_architecture(cfg.config)
    data = simulate_many(cfg.examples + cfg.val, cfg.seed, cfg.simulation, progress=progress)
    x = network_input(data.diffraction)
    summaries = {}
    for net in cfg.nets:
        y = network_target(data, net)
        train_ds = make_dataset(x[: cfg.examples], y[: cfg.examples], cfg.batch, True, cfg.seed)
        val_ds = make_dataset(x[cfg.examples :], y[cfg.examples :], cfg.batch, False, cfg.seed)
        with _strategy().scope():
            model = build_network(arch, net)
            model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=get_loss(cfg.loss))
        weights = out / f"{net}.keras"
        callbacks = [
            keras.callbacks.ModelCheckpoint(str(weights), monitor="val_loss", save_best_only=True),
            keras.callbacks.CSVLogger(str(out / f"{net}.log.csv")),
        ]
        start = time.perf_counter()
        history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, callbacks=callbacks,
                            verbose=1 if progress else 0)
        wall = time.perf_counter() - start
        figures.loss_curve(history.history, out / f"{net}.loss.png", f"{net} network ({cfg.config})")
        best = int(np.argmin(history.history["val_loss"]))
        summary = {
            "net": net,
            "architecture": arch.as_dict(),
            "parameters": int(model.count_params()),
            "macs": count_macs(model),
            "training": {k: v for k, v in asdict(cfg).items() if k not in ("nets", "simulation")},
            "simulation": cfg.simulation.as_dict(),
            "best_epoch": best + 1,
            "val_loss": float(history.history["val_loss"][best]),
            "train_loss": [float(v) for v in history.history["loss"]],
            "val_loss_curve": [float(v) for v in history.history["val_loss"]],
            "wall_time_s": round(wall, 1),
        }
        write_card(weights, summary)
        summaries[net] = summary
    return summaries
