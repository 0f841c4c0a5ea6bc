"""Training of the shape and phase networks (Adam, best checkpoint by validation loss).

With a per-network loss (``bce``, the paper's recipe) each network is trained on its own. With a joint loss
(``twin``, ``joint``; see :mod:`cdinn.model.losses`) both are trained together inside one wrapper model whose
output stacks their maps, so the loss can accept the twin image and weight the phase by the shape; the two
networks are still saved separately, so everything downstream is unchanged.

With ``fresh=True`` every epoch trains on ``examples`` newly simulated patterns (simulated on the fly in a
background thread while the previous batches train), so the networks never see an example twice; the
validation set stays fixed.

Artefacts written to the output folder: ``<role>.keras`` (best weights) and ``<role>.card.json`` per network;
``<run>.log.csv`` (loss per epoch) and ``<run>.loss.png`` (the paper's Fig. 2), where ``<run>`` is the
network name, or ``pair`` for joint training.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from cdinn.cards import write_card
from cdinn.errors import CdinnError
from cdinn.model import figures
from cdinn.model.architectures import (
    ArchitectureConfig,
    build_network,
    count_macs,
    get_architecture,
    pair_model,
)
from cdinn.model.conventions import ROLES, network_input
from cdinn.model.dataset import make_dataset, network_target, stacked_targets
from cdinn.model.distribute import Worker, output_folder, worker
from cdinn.model.distribute import strategy as distribution_strategy
from cdinn.model.forward import ExperimentConfig, experiment, fixed
from cdinn.model.inference import load_network, network_folder
from cdinn.model.losses import get_loss, is_joint
from cdinn.model.simulate import (
    HELD_OUT_FAMILIES,
    SimulatedBatch,
    SimulationConfig,
    add_poisson_noise,
    simulate_chunks,
    simulate_many,
)
from cdinn.options import LR_SCHEDULES, LrSchedule, option


@dataclass
class TrainConfig:
    """One training run. The defaults are the recipe measured best in ``docs/quality.md`` (the paper's is
    ``loss='bce', batch=256, lr_schedule='constant', fresh=False``, see :data:`PAPER_RECIPE`).
    ``examples``/``val`` are counts of simulated patterns (per epoch if ``fresh``); ``seed`` fixes data,
    initial weights and shuffling. ``photon_range`` = (low, high): that fraction ``noise_fraction`` of the
    examples gets Poisson noise at a log-uniform total photon count in the range (augmentation).
    ``fresh``: simulate a new training set for every epoch instead of repeating one. ``init``: a network set
    (shipped name or folder) whose weights the networks start from instead of random ones (fine-tuning);
    its architecture must be ``config``'s. ``data_shards``: the fresh data comes in this many independently
    seeded shards per batch (set to the number of workers in a multi-worker run; see :func:`fresh_batches`).
    ``effects``: fields of the forward model (:class:`cdinn.model.forward.ExperimentConfig`, e.g.
    ``{"beamstop": (0.5, 4.0)}``) that change the named ``experiment``: ``cdinn train``'s forward-model options
    and recipe keys, as ``cdinn simulate``'s."""

    roles: tuple[str, ...] = ROLES
    config: str = option("paper", "architecture: paper, edge or robust (cdinn.model.architectures)")
    examples: int = option(180_000, "training patterns (per epoch with --fresh)")
    val: int = option(20_000, "validation patterns")
    epochs: int = option(10, "training epochs")
    batch: int = option(64, "patterns per optimisation step")
    learning_rate: float = option(1e-3, "Adam learning rate", flag="lr")
    lr_schedule: LrSchedule = option("cosine", "learning rate: constant, or cosine decay to 0")
    loss: str = option(
        "twin",
        "training loss: 'bce' (the paper's per-pixel cross-entropy, each network alone), "
        "'joint' or 'twin' (both networks together; twin image accepted), 'twin+chi2' (plus the "
        "reciprocal-space error of the predicted object), 'twin+support' (plus a soft support-IoU "
        "term), 'twin+support+chi2' (both)",
    )
    seed: int = option(0, "seed of the data, the initial weights and the shuffling")
    photon_range: tuple[float, float] | None = option(
        None,
        "Poisson-noise augmentation at log-uniform total photon counts per pattern in [LOW, HIGH]",
        flag="photons",
        metavar=("LOW", "HIGH"),
    )
    noise_fraction: float = option(0.75, "fraction of the examples --photons applies to")
    fresh: bool = option(
        True, "simulate EXAMPLES new training patterns every epoch (on the fly) instead of reusing one set"
    )
    init: str | None = option(
        None,
        "start from this network set's weights (shipped name or folder; same "
        "architecture) instead of random ones: fine-tuning",
        metavar="NET",
    )
    data_shards: int = option(
        1,
        "independently seeded data shards per batch (a multi-worker run under TF_CONFIG "
        "uses one per worker; one process with the same number sees the same batches)",
    )
    experiment: str | None = option(
        None,
        "detector forward model every pattern goes through, its effects "
        "randomised per frame: 'detector' (cdinn.model.forward; none: ideal patterns)",
        metavar="MODEL",
    )
    mask_input: bool = option(
        False,
        "networks take the mask of unmeasured pixels as a second input channel "
        "(from a one-channel --init set, its weights start at zero)",
    )
    effects: dict[str, Any] = field(default_factory=dict)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise CdinnError(f"unknown network(s) {sorted(unknown)}; choose 'shape', 'phase' or 'both'")
        if self.examples < 1 or self.val < 1 or self.epochs < 1 or self.batch < 1:
            raise CdinnError("examples, val, epochs and batch must all be >= 1")
        if self.data_shards < 1 or self.batch % self.data_shards:
            raise CdinnError(f"batch {self.batch} must split evenly into {self.data_shards} data shard(s)")
        if self.lr_schedule not in LR_SCHEDULES:
            raise CdinnError(f"learning-rate schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 <= self.noise_fraction <= 1.0:
            raise CdinnError(f"noise fraction must lie in [0, 1], got {self.noise_fraction}")
        if self.photon_range is not None and not 0 < self.photon_range[0] <= self.photon_range[1]:
            raise CdinnError(f"photon range must be 0 < low <= high, got {self.photon_range}")
        if self.experiment is not None:
            if self.photon_range is not None:
                raise CdinnError(
                    "--photons augments ideal patterns; with --experiment the forward model counts "
                    "photons (its --flux range)"
                )
            model = experiment(self.experiment)
            unknown = set(self.effects) - {f.name for f in fields(ExperimentConfig)}
            if unknown:
                raise CdinnError(f"unknown forward-model field(s) {sorted(unknown)} (cdinn.model.forward)")
            if self.effects:  # a range given as one number is a fixed value, as in fixed()
                typed = fixed(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.effects.items()})
                self.effects = {k: getattr(typed, k) for k in self.effects}
                model = replace(model, **self.effects)
            self.simulation = replace(self.simulation, experiment=model)
        elif self.effects:
            raise CdinnError(
                f"forward-model options {sorted(self.effects)} change a forward model: name one with --experiment"
            )
        if self.simulation.experiment is not None and self.simulation.experiment.held_out:
            raise CdinnError(
                f"effects {self.simulation.experiment.held_out} are held out for evaluation: "
                "networks never train on them"
            )
        if self.simulation.phase_family in HELD_OUT_FAMILIES:
            raise CdinnError(
                f"phase family {self.simulation.phase_family!r} is held out for evaluation: networks never train on it"
            )
        get_architecture(self.config)
        get_loss(self.loss)
        if self.init is not None:
            network_folder(self.init)
        if is_joint(self.loss) and tuple(sorted(self.roles)) != ("phase", "shape"):
            raise CdinnError(f"loss {self.loss!r} trains both networks together: use --role both")

    @property
    def architecture(self) -> ArchitectureConfig:
        """The named architecture, with the mask channel if asked."""
        return replace(get_architecture(self.config), channels=2 if self.mask_input else 1)


PAPER_RECIPE: dict[str, Any] = {
    "loss": "bce",
    "batch": 256,
    "lr_schedule": "constant",
    "fresh": False,
    "photon_range": None,
}


def initial_network(arch: ArchitectureConfig, role: str, init: str | None) -> keras.Model:
    """A new ``role`` network of ``arch``: random weights, or those of the network set ``init``."""
    model = build_network(arch, role)
    if init is None:
        return model
    source, _ = load_network(str(network_folder(init)), role)
    weights = source.get_weights()
    targets = [tuple(w.shape) for w in model.weights]
    if weights and len(targets) == len(weights) and weights[0].shape[2] < targets[0][2]:
        # a one-channel set into a mask-input network: the new input channels' kernels start at zero, so
        # the network starts exactly where the source is
        extra = np.zeros(
            (*weights[0].shape[:2], targets[0][2] - weights[0].shape[2], weights[0].shape[3]), weights[0].dtype
        )
        weights[0] = np.concatenate([weights[0], extra], axis=2)
    if [tuple(w.shape) for w in weights] != targets:
        raise CdinnError(f"cannot start from {init!r}: its {role} network is not the {arch.name!r} architecture")
    model.set_weights(weights)
    return model


def _init_provenance(init: str | None, role: str) -> dict | None:
    """Which network a fine-tuned ``role`` started from: the set's name and that network's sha256."""
    if init is None:
        return None
    return {"networks": init, "sha256": load_network(str(network_folder(init)), role)[1]["sha256"]}


def augment(
    diffraction: np.ndarray, photon_range: tuple[float, float] | None, noise_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson noise on a random ``noise_fraction`` of the (B, N, N) amplitudes at a log-uniform total photon
    count in ``photon_range`` (unchanged if that is None)."""
    if photon_range is None:
        return diffraction
    noisy = rng.random(len(diffraction)) < noise_fraction
    lo, hi = np.log10(photon_range[0]), np.log10(photon_range[1])
    photons = 10.0 ** rng.uniform(lo, hi, (int(noisy.sum()), 1, 1))
    out = diffraction.copy()
    out[noisy] = add_poisson_noise(diffraction[noisy], photons, rng)
    empty = ~out.any(axis=(1, 2))
    out[empty] = diffraction[empty]  # a frame with no counts at all keeps its clean pattern
    return out


def training_data(cfg: TrainConfig, progress: bool = False) -> tuple[np.ndarray, SimulatedBatch]:
    """Network inputs (B, N, N, 1) and the simulated batch, with the optional noise augmentation: the
    ``examples`` training patterns then the ``val`` validation patterns, or only the latter if ``cfg.fresh``."""
    stored = 0 if cfg.fresh else cfg.examples
    data = simulate_many(stored + cfg.val, cfg.seed, cfg.simulation, progress=progress)
    rng = np.random.default_rng([cfg.seed, 1])
    return _inputs(cfg, data, rng), data


def _inputs(cfg: TrainConfig, data: SimulatedBatch, rng: np.random.Generator) -> np.ndarray:
    """The networks' inputs (B, N, N, channels) of a simulated batch, with the Poisson augmentation."""
    noisy = augment(data.diffraction, cfg.photon_range, cfg.noise_fraction, rng)
    return network_input(noisy, data.mask, cfg.architecture.channels)


def _shard_batches(
    cfg: TrainConfig, targets: Callable[[SimulatedBatch], np.ndarray], shard: int, chunk: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One data shard's endless batches of ``cfg.batch // cfg.data_shards`` (see :func:`fresh_batches`)."""
    batch = cfg.batch // cfg.data_shards
    steps = cfg.examples // cfg.batch
    chunk = max(1, chunk // batch) * batch
    for epoch in itertools.count():
        entropy = [cfg.seed, epoch + 2] if cfg.data_shards == 1 else [cfg.seed, epoch + 2, shard, cfg.data_shards]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        rng = np.random.default_rng([*entropy, 1])
        for data in simulate_chunks(steps * batch, seed, cfg.simulation, chunk):
            x = _inputs(cfg, data, rng)
            if not np.isfinite(x).all():  # one such example silently wrecks a run: stop instead
                raise CdinnError(f"simulated training batch of epoch {epoch + 1} has non-finite inputs")
            y = targets(data)
            order = rng.permutation(len(x))
            for i in range(len(x) // batch):
                pick = order[i * batch : (i + 1) * batch]
                yield x[pick], y[pick]


def fresh_batches(
    cfg: TrainConfig,
    targets: Callable[[SimulatedBatch], np.ndarray],
    chunk: int = 8192,
    shards: Sequence[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (input, target) batches: epoch ``e`` is ``examples // batch`` batches of new patterns. The
    data comes in ``cfg.data_shards`` shards, each ``batch // data_shards`` examples per step from its own
    seed entropy (``(cfg.seed, e + 2)`` for a single shard, ``(cfg.seed, e + 2, shard, data_shards)`` for
    several; streams apart from the validation set's, which :func:`training_data` draws from ``cfg.seed``
    alone), simulated about ``chunk`` at a time and shuffled within each chunk. Each batch concatenates the
    ``shards`` asked for (default: all), so a worker of a multi-worker run yields exactly its part of the
    global batch one process with every shard would see."""
    streams = [
        _shard_batches(cfg, targets, shard, chunk) for shard in (range(cfg.data_shards) if shards is None else shards)
    ]
    for parts in zip(*streams, strict=True):
        yield np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def adam(learning_rate: float, schedule: LrSchedule, steps: int) -> keras.optimizers.Optimizer:
    """Adam at ``learning_rate``: constant, or (``"cosine"``) decaying to 0 over ``steps`` optimiser steps."""
    if schedule == "cosine":
        return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))
    return keras.optimizers.Adam(learning_rate)


def optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    return adam(cfg.learning_rate, cfg.lr_schedule, cfg.epochs * math.ceil(cfg.examples / cfg.batch))


def _train_dataset(cfg: TrainConfig, targets, n: int, outputs: int, strategy, place: Worker):
    """The fresh training batches as a dataset: this worker's shard under a multi-worker strategy (fed per
    worker through ``distribute_datasets_from_function``), all shards otherwise."""
    shards = [place.index] if place.count > 1 else None
    batch = cfg.batch // place.count
    signature = (
        tf.TensorSpec((batch, n, n, cfg.architecture.channels), tf.float32),
        tf.TensorSpec((batch, n, n, outputs), tf.float32),
    )

    def dataset(_context=None):
        return tf.data.Dataset.from_generator(
            lambda: fresh_batches(cfg, targets, shards=shards), output_signature=signature
        ).prefetch(8)

    return strategy.distribute_datasets_from_function(dataset) if place.count > 1 else dataset()


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


def _fit(
    model,
    models: dict[str, keras.Model],
    targets: Callable[[SimulatedBatch], np.ndarray],
    x: np.ndarray,
    data: SimulatedBatch,
    cfg: TrainConfig,
    out: Path,
    run: str,
    progress: bool,
    strategy,
    place: Worker,
):
    """Fit on the stored training set, or on fresh batches; validate on the last ``cfg.val`` patterns. Only
    the chief writes the log and the figure; every worker saves the networks (to its own folder)."""
    y = targets(data)
    first_val = 0 if cfg.fresh else cfg.examples
    val_ds = make_dataset(x[first_val:], y[first_val:], cfg.batch, False, cfg.seed)
    if cfg.fresh:
        fit_args = {
            "x": _train_dataset(cfg, targets, x.shape[1], y.shape[-1], strategy, place),
            "steps_per_epoch": cfg.examples // cfg.batch,
        }
    else:
        fit_args = {"x": make_dataset(x[: cfg.examples], y[: cfg.examples], cfg.batch, True, cfg.seed)}
    callbacks = [_SaveBest(models, out)]
    if place.chief:
        callbacks.append(keras.callbacks.CSVLogger(str(out / f"{run}.log.csv")))
    start = time.perf_counter()
    history = model.fit(
        **fit_args,
        validation_data=val_ds,
        epochs=cfg.epochs,
        callbacks=callbacks,
        verbose=1 if progress and place.chief else 0,
    )
    wall = time.perf_counter() - start
    if place.chief:
        figures.loss_curve(history.history, out / f"{run}.loss.png", f"{run} ({cfg.config}, loss {cfg.loss})")
    return history.history, wall


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (``TF_ENABLE_ONEDNN_OPTS=1``; TensorFlow leaves
    them off on non-Intel CPUs, and ``cdinn train`` turns them on: see :data:`cdinn.cli.train.TRAINING_ENVIRONMENT`)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True) -> dict[str, dict]:
    """Train the networks in ``cfg.roles`` on the same simulated data; returns a summary per network.

    Under a multi-worker ``TF_CONFIG`` (:mod:`cdinn.model.distribute`) every worker runs this with the same
    configuration; ``data_shards`` is then the number of workers and only the chief writes ``out_dir``."""
    place = worker()
    if place.count > 1 and cfg.data_shards != place.count:
        cfg = replace(cfg, data_shards=place.count)
    if place.count > 1 and not cfg.fresh:
        raise CdinnError("multi-worker training simulates each worker's shard on the fly: use --fresh")
    strategy = distribution_strategy(place)  # before any other TensorFlow work (collectives are set up here)
    out = output_folder(Path(out_dir), place)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(cfg.seed)
    arch = cfg.architecture
    x, data = training_data(cfg, progress and place.chief)
    runs = []  # (run name, {role: model}, history, wall time)
    if is_joint(cfg.loss):
        with strategy.scope():
            models = {role: initial_network(arch, role, cfg.init) for role in ROLES}
            pair = pair_model(models)
            pair.compile(optimizer=optimizer(cfg), loss=get_loss(cfg.loss))
        runs.append(
            ("pair", models, *_fit(pair, models, stacked_targets, x, data, cfg, out, "pair", progress, strategy, place))
        )
    else:
        for role in cfg.roles:
            with strategy.scope():
                model = initial_network(arch, role, cfg.init)
                model.compile(optimizer=optimizer(cfg), loss=get_loss(cfg.loss))
            models = {role: model}
            targets = functools.partial(network_target, role=role)
            runs.append(
                (role, models, *_fit(model, models, targets, x, data, cfg, out, role, progress, strategy, place))
            )
    summaries = {}
    for run, models, history, wall in runs:
        best = int(np.argmin(history["val_loss"]))
        for role, model in models.items():
            summary = {
                "role": role,
                "trained_as": run,
                "architecture": arch.as_dict(),
                "parameters": int(model.count_params()),
                "macs": count_macs(model),
                "training": {k: v for k, v in asdict(cfg).items() if k not in ("roles", "simulation")},
                "simulation": cfg.simulation.as_dict(),
                "initialised_from": _init_provenance(cfg.init, role),
                "best_epoch": best + 1,
                "val_loss": float(history["val_loss"][best]),
                "train_loss": [float(v) for v in history["loss"]],
                "val_loss_curve": [float(v) for v in history["val_loss"]],
                "wall_time_s": round(wall, 1),
                "workers": place.count,
                "onednn": onednn_enabled(),
            }
            if place.chief:
                write_card(out / f"{role}.keras", summary)
            summaries[role] = summary
    return summaries
