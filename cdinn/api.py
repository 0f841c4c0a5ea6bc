"""``cdinn.reconstruct``: diffraction patterns in, object amplitude and phase out, with a per-frame fit error.

The default path is the fastest exact float one: the default network set through onnxruntime, its session
created once per (backend, network set, options) and reused by every later call. Other backends by name:
``keras`` (TensorFlow), ``emulator`` (the firmware's bit-accurate C++ emulation) and ``fpga``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID, OVERSAMPLED_GRID, complex_object, subsample_oversampled
from cdinn.model.fit import fit_error
from cdinn.model.refine import AutoRefineConfig, refine_auto
from cdinn.model.refine import refine as refine_objects
from cdinn.model.validation import validate_frames


class Reconstruction(tuple):
    """``(amplitude, phase)``, so ``amplitude, phase = cdinn.reconstruct(...)`` keeps working, with the
    per-frame diagnostics as attributes (arrays have the frames' leading shape: (B,) or scalars for one frame):

    * ``fit``: fit error of the returned object against the pattern it came from (:mod:`cdinn.model.fit`;
      against the oversampled pattern when ``refine`` was asked for); without refinement it is computed on
      first access, so callers that only unpack ``(amplitude, phase)`` do not pay for it;
    * ``fit_before``: the network's own fit against the same pattern (equal to ``fit`` without refinement);
    * ``iterations``: ER/HIO iterations spent on the frame; ``refined``: whether it was refined.
    """

    amplitude: np.ndarray
    phase: np.ndarray
    iterations: np.ndarray
    refined: np.ndarray
    _fit: np.ndarray | None
    _fit_before: np.ndarray | None
    _patterns: np.ndarray | None
    _single: bool

    def __new__(cls, amplitude, phase, fit, fit_before, iterations, refined,
                patterns: np.ndarray | None = None, single: bool = False):
        """``fit=None``: computed on first access against ``patterns`` (B, N, N); ``fit_before=None``: the same
        as ``fit``. ``single``: the fields are one frame's (the fit is then a scalar)."""
        self = super().__new__(cls, (amplitude, phase))
        self.amplitude, self.phase, self.iterations, self.refined = amplitude, phase, iterations, refined
        self._fit, self._fit_before, self._patterns, self._single = fit, fit_before, patterns, single
        return self

    @property
    def fit(self) -> np.ndarray:
        if self._fit is None:
            obj = complex_object(self.amplitude, self.phase)
            if self._patterns is None:
                raise CdinnError("this reconstruction holds neither a fit nor the patterns to compute it")
            fit = fit_error(obj[None] if self._single else obj, self._patterns)
            self._fit, self._patterns = (fit[0] if self._single else fit), None
        return self._fit

    @property
    def fit_before(self) -> np.ndarray:
        return self.fit if self._fit_before is None else self._fit_before

    def first(self) -> Reconstruction:
        """The result of a single-frame call: every field without its batch axis."""
        if self._fit is None:
            return Reconstruction(self.amplitude[0], self.phase[0], None, None, self.iterations[0], self.refined[0],
                                  self._patterns[:1] if self._patterns is not None else None, single=True)
        return Reconstruction(*(np.asarray(v)[0] for v in (self.amplitude, self.phase, self.fit, self.fit_before,
                                                           self.iterations, self.refined)))


@lru_cache(maxsize=16)
def cached_backend(backend: str, net: str, options: tuple[tuple[str, object], ...] = ()):
    """One backend instance per (name, network set, options), created on first use (sessions, compiled
    emulators and loaded networks are reused by every later call)."""
    from cdinn.host.backends import get_backend

    return get_backend(backend, net=net, **dict(options))


def reconstruct(diffraction, net: str = "default", backend: str = "onnx", intensity: bool = False,
                refine: int | str | AutoRefineConfig = 0, **backend_options) -> Reconstruction:
    """Reconstruct objects from far-field diffraction.

    ``diffraction``: (B, 32, 32) or (32, 32) amplitudes at any scale (normalised per frame), zero frequency at
    [16, 16]; with ``intensity=True`` intensities instead. ``refine``: 0 (network only), K > 0 (K iterations of
    NN-seeded ER/HIO for every frame) or ``"auto"`` (only frames whose fit exceeds
    :class:`cdinn.model.refine.AutoRefineConfig`'s threshold, each until its fit stops improving; an
    ``AutoRefineConfig`` instance sets the threshold and stop rule); with any
    refinement the frames must be the 2x oversampled (64, 64) patterns, of which the network sees every other
    pixel. ``backend_options`` go to the backend (e.g. ``threads=1`` for onnx, ``project=...`` for emulator).

    Returns a :class:`Reconstruction`: ``amplitude`` in [0, 1] and ``phase`` in radians (0 outside the
    support), float32 (B, 32, 32) or (32, 32), plus the per-frame fit error and refinement record.
    """
    auto = AutoRefineConfig() if isinstance(refine, str) and refine == "auto" else refine
    if not isinstance(auto, AutoRefineConfig) and (not isinstance(refine, int | np.integer) or refine < 0):
        raise CdinnError(f"refine must be a number of iterations >= 0 or 'auto', got {refine!r}")
    single = np.ndim(diffraction) == 2
    amplitudes = validate_frames(diffraction, OVERSAMPLED_GRID if refine else GRID, intensity)
    nn_input = subsample_oversampled(amplitudes) if refine else amplitudes
    engine = cached_backend(backend, net, tuple(sorted(backend_options.items())))
    amplitude, phase = engine.infer(nn_input)
    count = len(amplitude)
    if isinstance(auto, AutoRefineConfig):
        done = refine_auto(amplitude, phase, amplitudes, auto)
        result = Reconstruction(done.amplitude, done.phase, done.fit_after, done.fit_before, done.iterations,
                                done.refined)
    elif isinstance(refine, int | np.integer) and refine:
        before = fit_error(complex_object(amplitude, phase), amplitudes)
        amplitude, phase = refine_objects(amplitude, phase, amplitudes, refine)
        result = Reconstruction(amplitude, phase, fit_error(complex_object(amplitude, phase), amplitudes), before,
                                np.full(count, refine), np.ones(count, bool))
    else:
        result = Reconstruction(amplitude, phase, None, None, np.zeros(count, np.int64), np.zeros(count, bool),
                                patterns=nn_input)
    return result.first() if single else result
