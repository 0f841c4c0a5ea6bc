"""Frames of a file for the batch commands (``cdinn reconstruct``): read through the runner's file source
(NXmx masters, compression filters, frame numbers) and, for detector-size frames, the runner's preprocessing
(masks, beam centre, crop, binning), so both commands treat a detector file the same way."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Frame, Rejected
from cdinn.host.preprocess import PreprocessConfig, Preprocessor, load_mask
from cdinn.host.sources import FileSource


def detector_preprocessor(preprocess: PreprocessConfig | None, size: int, intensity: bool) -> Preprocessor:
    """The runner's preprocessing for detector-size frames of a batch command: ``preprocess``'s settings with
    ``input_kind`` from ``intensity`` and the output grid ``size``."""
    base = preprocess or PreprocessConfig()
    return Preprocessor(PreprocessConfig(**dict(base.as_dict(), input_kind="intensity" if intensity else "amplitude",
                                                output_size=size)))


def stack_masks(masks: list[np.ndarray | None], shape: tuple[int, ...]) -> np.ndarray | None:
    """Per-frame masks (None = every pixel measured) as one (B, *shape) bool array, or None if all are None."""
    if all(m is None for m in masks):
        return None
    return np.stack([np.zeros(shape, bool) if m is None else m for m in masks])


class Patterns(NamedTuple):
    """A file's frames on the grid: ``patterns`` (B, S, S), ``mask`` (B, S, S) bool (True = no measurement)
    or None, ``oversampling`` (B,) measured by the detector preprocessing (None for frames stored on the
    grid), ``numbers`` (B,) frame numbers, ``intensity``: whether the patterns are still intensities."""

    patterns: np.ndarray
    mask: np.ndarray | None
    oversampling: np.ndarray | None
    numbers: np.ndarray
    intensity: bool


def load_patterns(spec: str, size: int, intensity: bool, preprocess: PreprocessConfig | None = None) -> Patterns:
    """The :class:`Patterns` of a file. The mask is True where a pixel has no measurement: the file's pixel
    mask and ``preprocess.mask`` ((size, size) or one per frame) for frames stored on the grid, the binned
    detector mask for detector frames.

    Frames already ``size x size`` are returned as stored (``intensity`` says what they hold); larger frames
    are preprocessed into amplitudes (``preprocess``'s settings, its ``input_kind`` set from ``intensity``
    and its ``output_size`` to ``size``). Raises CdinnError naming the first frame or file that cannot be
    used; a single 2-D array counts as one frame."""
    read = list(FileSource(spec))
    bad = next((item for item in read if isinstance(item, Rejected)), None)
    if bad is not None:
        raise CdinnError(bad.reason)
    items = [item for item in read if isinstance(item, Frame)]
    if not items:
        raise CdinnError(f"{spec}: no frames")
    numbers = np.array([item.number for item in items], np.int64)
    small = next((item for item in items if min(item.data.shape) < size or item.data.ndim != 2), None)
    if small is not None:
        raise CdinnError(f"diffraction frames must have shape ({size}, {size}) or be larger detector frames; frame "
                         f"{small.number} of {small.source} has shape {small.data.shape}")
    if all(item.data.shape == (size, size) for item in items):
        mask = stack_masks([item.mask for item in items], (size, size))
        extra = preprocess.mask if preprocess is not None else None
        if extra is not None:
            flags = load_mask(extra)
            if flags.shape not in ((size, size), (len(items), size, size)):
                raise CdinnError(f"mask {extra} has shape {flags.shape}; the frames need ({size}, {size}) or "
                                 f"({len(items)}, {size}, {size})")
            flags = np.broadcast_to(flags, (len(items), size, size))
            mask = flags if mask is None else mask | flags
        return Patterns(np.stack([item.data for item in items]), mask, None, numbers, intensity)
    prepare = detector_preprocessor(preprocess, size, intensity)
    prepared = []
    for item in items:
        try:
            prepared.append(prepare.prepare(item.data, item.mask, item.centre))
        except CdinnError as exc:
            raise CdinnError(f"frame {item.number} of {item.source}: {exc}") from None
    return Patterns(np.stack([p.amplitude for p in prepared]), stack_masks([p.mask for p in prepared], (size, size)),
                    np.array([p.oversampling for p in prepared], np.float32), numbers, False)
