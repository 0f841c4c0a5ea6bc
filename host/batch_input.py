"""Frames of a file for the batch commands (``cdinn reconstruct``): read through the runner's file source
(NXmx masters, compression filters, frame numbers) and, for detector-size frames, the runner's preprocessing
(masks, beam centre, crop, binning), so both commands treat a detector file the same way."""

from __future__ import annotations

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Frame, Rejected
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.host.sources import FileSource


def detector_preprocessor(preprocess: PreprocessConfig | None, size: int, intensity: bool) -> Preprocessor:
    """The runner's preprocessing for detector-size frames of a batch command: ``preprocess``'s settings with
    ``input_kind`` from ``intensity`` and the output grid ``size``."""
    base = preprocess or PreprocessConfig()
    return Preprocessor(PreprocessConfig(**dict(base.as_dict(), input_kind="intensity" if intensity else "amplitude",
                                                output_size=size)))


def load_patterns(spec: str, size: int, intensity: bool, preprocess: PreprocessConfig | None = None
                  ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(patterns (B, size, size), frame numbers (B,), whether the patterns are still intensities).

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
        return np.stack([item.data for item in items]), numbers, intensity
    prepare = detector_preprocessor(preprocess, size, intensity)
    out = []
    for item in items:
        try:
            out.append(prepare(item.data, item.mask, item.centre))
        except CdinnError as exc:
            raise CdinnError(f"frame {item.number} of {item.source}: {exc}") from None
    return np.stack(out), numbers, False
