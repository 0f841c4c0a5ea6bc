"""Self-supervised adaptation: fine-tune a network set on a beamline's own unlabeled frames.

No ground truth is needed: the loss compares each frame's measured amplitudes with what the detector would
record of the predicted object, through the forward model's partial-coherence blur and background
(:mod:`cdinn.model.forward`), over the measured pixels only,

    J = K_sigma (x) |FFT2(a exp(i phi))|^2 + beta * mean(...)      (blur of sigma px, background fraction beta)
    loss = sum_measured (s * sqrt(J) - A_meas)^2 / sum_measured A_meas^2,

with ``s`` the least-squares scale of each frame (the networks' amplitude is on the [0, 1] scale, the
detector's in counts^0.5). ``sigma`` and ``beta`` are the run's experimental parameters, one each for all
frames, fitted with the networks (a beamline's coherence and background change slowly): without them the
best fit to a blurred pattern is a different, blurrier object. Squared amplitude residuals are the variance-
stabilised form of the Poisson likelihood of counts (the square root of a Poisson count has a variance of
about 1/4 whatever its mean), so bright and faint pixels weigh alike. |FT| cannot see a shift, the twin or a
global phase, and neither can this loss: none needs special care. The frames are split once: a held-out
fraction never trains and its fit (:mod:`cdinn.model.fit`) is reported before (the networks' coherent model,
what they assumed) and after (through the fitted experiment, what the adapted set assumes: the card records
its parameters).

Inputs are validated (B, N, N) amplitudes with their (B, N, N) bool mask (True = no measurement, or None).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from cdinn.cards import write_card
from cdinn.errors import CdinnError
from cdinn.model.architectures import input_channels, pair_model
from cdinn.model.conventions import ROLES, TWO_PI, complex_object, network_input
from cdinn.model.fit import fit_error
from cdinn.model.inference import load_network, network_folder, reconstruct_with
from cdinn.options import option


@dataclass(frozen=True)
class AdaptConfig:
    """One adaptation run; ``learning_rate`` of Adam, ``val_fraction`` of the frames held out."""

    epochs: int = option(10, "passes over the training frames")
    warmup_epochs: int = option(5, "passes fitting the experiment's blur and background alone first (networks frozen)")
    batch: int = option(32, "frames per optimisation step")
    learning_rate: float = option(3e-5, "Adam learning rate", flag="lr")
    val_fraction: float = option(
        0.2, "fraction of the frames held out: never trained on, their fit reported before and after"
    )
    seed: int = option(0, "seed of the split and the shuffling")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.warmup_epochs < 0 or self.batch < 1 or not self.learning_rate > 0:
            raise CdinnError("adaptation needs epochs >= 1, batch >= 1 and a positive learning rate")
        if not 0 < self.val_fraction < 1:
            raise CdinnError(f"the held-out fraction must lie in (0, 1), got {self.val_fraction}")


GAIN = 300.0
EXPERIMENT_LR = 1e-3
"""Adam's learning rate while the experiment's parameters are fitted alone (times GAIN in their own units)."""


def _experiment_layer():
    import tf_keras as keras

    class Experiment(keras.layers.Layer):
        """Stacked [shape, phase unit] maps (B, N, N, 2) -> the modelled detector amplitude sqrt(J) (B, N, N);
        trainable: the coherence blur ``sigma`` (pixels) and the background fraction ``beta``."""

        def build(self, input_shape):
            # stored divided by GAIN, so that Adam's steps (about the learning rate) move them GAIN times faster
            # than the networks' weights: they start far from their values, the networks close to theirs
            self.raw_sigma = self.add_weight(
                name="raw_sigma", shape=(), initializer=keras.initializers.Constant(-1.0 / GAIN)
            )
            self.raw_beta = self.add_weight(
                name="raw_beta", shape=(), initializer=keras.initializers.Constant(-9.0 / GAIN)
            )
            n = int(input_shape[1])
            index = tf.range(n, dtype=tf.float32)
            self.distance2 = (index[:, None] - index[None, :]) ** 2

        @property
        def parameters(self) -> dict[str, float]:
            return {
                "coherence_sigma": float(tf.nn.softplus(GAIN * self.raw_sigma)),
                "background": float(tf.exp(GAIN * self.raw_beta)),
            }

        def call(self, maps):
            amplitude = tf.cast(maps[..., 0], tf.complex64)
            phase = tf.cast(TWO_PI * maps[..., 1], tf.complex64)  # the -pi offset is a global phase: irrelevant
            spectrum = tf.signal.fftshift(tf.signal.fft2d(amplitude * tf.exp(1j * phase)), axes=(1, 2))
            intensity = tf.math.real(spectrum * tf.math.conj(spectrum))
            sigma = tf.nn.softplus(GAIN * self.raw_sigma) + 1e-3
            kernel = tf.exp(-0.5 * self.distance2 / sigma**2)
            kernel = kernel / tf.reduce_sum(kernel, axis=0, keepdims=True)  # columns sum to 1: counts conserved
            blurred = tf.einsum("ij,bjk,lk->bil", kernel, intensity, kernel)
            background = tf.exp(GAIN * self.raw_beta) * tf.reduce_sum(intensity, axis=[1, 2], keepdims=True)
            return tf.sqrt(blurred + background + 1e-12)

    return Experiment(name="experiment")


def amplitude_fit_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Per-frame loss of the module docstring. ``y_true`` (B, N, N, 2): [measured amplitude, mask (1 = not
    measured)]; ``y_pred`` (B, N, N): the modelled detector amplitudes."""
    predicted = y_pred
    weight = 1.0 - y_true[..., 1]
    measured = y_true[..., 0] * weight
    predicted = predicted * weight
    scale = tf.reduce_sum(predicted * measured, axis=[1, 2]) / (tf.reduce_sum(predicted**2, axis=[1, 2]) + 1e-12)
    residual = tf.reduce_sum((scale[:, None, None] * predicted - measured) ** 2, axis=[1, 2])
    return residual / (tf.reduce_sum(measured**2, axis=[1, 2]) + 1e-12)


def frames_sha256(amplitudes: np.ndarray, mask: np.ndarray | None) -> str:
    """sha256 of the frames (float32 bytes) and their mask: what a card records of its adaptation data."""
    digest = hashlib.sha256(np.ascontiguousarray(amplitudes, np.float32).tobytes())
    if mask is not None:
        digest.update(np.packbits(mask).tobytes())
    return digest.hexdigest()


def _fit(
    models: dict, amplitudes: np.ndarray, mask: np.ndarray | None, experiment: dict[str, float] | None = None
) -> np.ndarray:
    amplitude, phase = reconstruct_with(models["shape"], models["phase"], amplitudes, mask)
    return fit_error(complex_object(amplitude, phase), amplitudes, mask, experiment)


def adapt(
    net: str, amplitudes: np.ndarray, mask: np.ndarray | None, cfg: AdaptConfig, out_dir: str | Path, source: str = ""
) -> dict:
    """Fine-tune the set ``net`` on (B, N, N) ``amplitudes`` (``mask`` as the module docstring says); write
    the adapted set (``shape.keras``, ``phase.keras``, cards) to ``out_dir``; return the summary."""
    import tf_keras as keras

    if len(amplitudes) < 2:
        raise CdinnError(f"adaptation needs at least 2 frames (some are held out), got {len(amplitudes)}")
    folder = network_folder(net)
    sources = {role: load_network(str(folder), role) for role in ROLES}
    models = {role: keras.models.clone_model(model) for role, (model, _) in sources.items()}
    for role, (model, _) in sources.items():
        models[role].set_weights(model.get_weights())
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(amplitudes))
    held = max(1, int(round(cfg.val_fraction * len(amplitudes))))
    val, train = np.sort(order[:held]), np.sort(order[held:])
    if not len(train):
        raise CdinnError("no frame is left to train on: lower --val-fraction")
    flags = np.zeros(amplitudes.shape, bool) if mask is None else mask
    x = network_input(amplitudes, mask, input_channels(models["shape"]))
    normalised = network_input(amplitudes, flags, 2)[..., :1]  # measured amplitudes, max 1, 0 where masked
    y = np.concatenate([normalised, flags[..., None].astype(np.float32)], axis=-1)
    before_val, before_train = _fit(models, amplitudes[val], flags[val]), _fit(models, amplitudes[train], flags[train])
    pair = pair_model(models)
    experiment = _experiment_layer()
    model = keras.Model(pair.input, experiment(pair.output))
    keras.utils.set_random_seed(cfg.seed)
    start = time.perf_counter()
    # first the experiment alone, the networks frozen: otherwise they learn to draw blurry objects faster than
    # the blur width grows to its value
    pair.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(EXPERIMENT_LR), loss=amplitude_fit_loss)
    model.fit(x[train], y[train], batch_size=cfg.batch, epochs=cfg.warmup_epochs, shuffle=True, verbose=0)
    pair.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=amplitude_fit_loss)
    history = model.fit(
        x[train],
        y[train],
        batch_size=cfg.batch,
        epochs=cfg.epochs,
        shuffle=True,
        validation_data=(x[val], y[val]),
        verbose=0,
    )
    wall = time.perf_counter() - start
    fitted = experiment.parameters
    after_val = _fit(models, amplitudes[val], flags[val], fitted)
    after_train = _fit(models, amplitudes[train], flags[train], fitted)
    coherent_val = _fit(models, amplitudes[val], flags[val])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "adapted_from": {"networks": net, **{f"{r}_sha256": card["sha256"] for r, (_, card) in sources.items()}},
        "frames": {
            "source": source,
            "count": int(len(amplitudes)),
            "held_out": int(held),
            "sha256": frames_sha256(amplitudes, mask),
        },
        "adaptation": asdict(cfg),
        "experiment": fitted,
        "held_out_fit_median": {
            "before": float(np.median(before_val)),
            "after": float(np.median(after_val)),
            "after_without_the_fitted_experiment": float(np.median(coherent_val)),
        },
        "training_fit_median": {"before": float(np.median(before_train)), "after": float(np.median(after_train))},
        "loss": [float(v) for v in history.history["loss"]],
        "val_loss": [float(v) for v in history.history["val_loss"]],
        "wall_time_s": round(wall, 1),
    }
    for role, model in models.items():
        model.save(out / f"{role}.keras")
        kept = {k: v for k, v in sources[role][1].items() if k not in ("sha256", "weights", "versions", "test_metrics")}
        write_card(out / f"{role}.keras", dict(kept, adapted=summary))
    return summary
