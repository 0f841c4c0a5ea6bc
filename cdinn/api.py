"""``cdinn.reconstruct``: diffraction patterns in, object amplitude and phase out, with a per-frame fit error.

The default path is the fastest exact float one: the default network set through onnxruntime, its session
created once per (backend, network set, options) and reused by every later call. Other backends by name:
``keras`` (TensorFlow), ``emulator`` (the firmware's bit-accurate C++ emulation) and ``fpga``. The steps
themselves are :func:`cdinn.inversion.invert`'s.
"""

from __future__ import annotations

import numpy as np

from cdinn.host.backends import cached_backend
from cdinn.inversion import Reconstruction, invert, parse_refine, parse_views
from cdinn.model.conventions import GRID, OVERSAMPLED_GRID
from cdinn.model.refine import AutoRefineConfig
from cdinn.model.validation import validate_frames

__all__ = ["Reconstruction", "cached_backend", "reconstruct"]


def reconstruct(
    diffraction,
    net: str = "default",
    backend: str = "onnx",
    intensity: bool = False,
    refine: int | str | AutoRefineConfig = 0,
    mask=None,
    views: int = 1,
    **backend_options,
) -> Reconstruction:
    """Reconstruct objects from far-field diffraction.

    ``diffraction``: (B, 32, 32) or (32, 32) amplitudes at any scale (normalised per frame), zero frequency at
    [16, 16]; with ``intensity=True`` intensities instead. ``mask``: True (nonzero) where a pixel has no
    measurement (beamstop, gaps, dead pixels: the NXmx ``pixel_mask`` sense), the frames' shape or one
    (32, 32) mask for all; unsigned-integer frames also count their type's maximum as unmeasured. Unmeasured
    pixels may hold anything; the networks see them as such and the fit ignores them.
    ``refine``: 0 (network only), K > 0 (K iterations of NN-seeded ER/HIO for every frame) or ``"auto"``
    (only frames whose fit exceeds :class:`cdinn.model.refine.AutoRefineConfig`'s threshold, each until its
    fit stops improving; an ``AutoRefineConfig`` instance sets the threshold and stop rule); with any
    refinement the frames (and the mask) must be the 2x oversampled (64, 64) patterns, of which the network
    sees every other pixel. ``views``: 1, 2, 4 or 8 views of each pattern (its mirrors and transposes,
    :mod:`cdinn.model.views`) in one batch, each frame keeping the estimate that fits best: better results
    (with 8: median chi^2 3-36 % lower, by detector effect, docs/experiment.md) for ~``views`` times the
    networks' time.
    ``backend_options`` go to the backend (e.g. ``threads=1`` for onnx,
    ``project=...`` for emulator).

    Returns a :class:`Reconstruction`: ``amplitude`` in [0, 1] and ``phase`` in radians (0 outside the
    support), float32 (B, 32, 32) or (32, 32), plus the per-frame fit error and refinement record.
    """
    how, views = parse_refine(refine), parse_views(views)
    single = np.ndim(diffraction) == 2
    amplitudes, missing = validate_frames(diffraction, OVERSAMPLED_GRID if refine else GRID, intensity, mask)
    engine = cached_backend(backend, net, tuple(sorted(backend_options.items())))
    result = invert(engine, amplitudes, missing, how, views=views)
    return result.first() if single else result
