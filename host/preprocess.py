"""Preprocessing of real detector frames into network inputs, one small step per function.

Units: detector frames are *intensities* (counts per pixel) unless ``input_kind="amplitude"``. The steps,
in order: dark-frame subtraction (counts), constant background subtraction (counts per pixel), negative
values clipped to 0, centring (on a calibrated beam-centre pixel, on the frame's middle pixel ``(rows//2,
cols//2)`` — the cdinn convention for frames that are already centred — or on the diffraction maximum or
intensity centre of mass, which only coincide with the zero frequency for weakly phased objects),
cropping a square window around that centre (pixels; zero outside the detector), summing ``k x k`` pixel
blocks down to the network's grid (``output_size``, 32), and the square root (intensities -> amplitudes).
Scale does not matter downstream: the networks normalise each frame to its maximum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.validation import bad_frame_reason


@dataclass(frozen=True)
class PreprocessConfig:
    input_kind: str = "intensity"  # 'intensity' (counts) or 'amplitude'
    dark: str | None = None  # .npy dark frame (counts), same shape as the frames
    background: float = 0.0  # counts per pixel subtracted after the dark frame
    centre: str = "frame"  # 'frame' (middle pixel), 'max', 'com'; ignored when centre_pixel is given
    centre_pixel: tuple[int, int] | None = None  # calibrated (row, col) of the zero frequency
    crop: int | None = None  # window side in pixels; default: largest multiple of output_size that fits
    output_size: int = 32

    def __post_init__(self) -> None:
        if self.input_kind not in ("intensity", "amplitude"):
            raise CdinnError(f"input kind must be 'intensity' or 'amplitude', got {self.input_kind!r}")
        if self.centre not in ("frame", "max", "com"):
            raise CdinnError(f"centring must be 'frame', 'max' or 'com', got {self.centre!r}")
        if self.crop is not None and (self.crop < self.output_size or self.crop % self.output_size):
            raise CdinnError(f"crop ({self.crop}) must be a multiple of the output size {self.output_size}")

    def as_dict(self) -> dict:
        return asdict(self)


def subtract(frame: np.ndarray, dark: np.ndarray | None, background: float) -> np.ndarray:
    """Frame minus dark frame minus a constant, clipped at 0 (float64)."""
    out = frame.astype(np.float64)
    if dark is not None:
        out = out - dark
    return np.clip(out - background, 0.0, None)


def find_centre(frame: np.ndarray, method: str) -> tuple[int, int]:
    """Pixel (row, col) of the diffraction centre: the maximum, the intensity centre of mass, or the
    middle pixel of the frame ('frame')."""
    if method == "max":
        return tuple(int(v) for v in np.unravel_index(np.argmax(frame), frame.shape))
    if method == "com":
        total = frame.sum()
        rows, cols = np.indices(frame.shape)
        return int(round((rows * frame).sum() / total)), int(round((cols * frame).sum() / total))
    return frame.shape[0] // 2, frame.shape[1] // 2


def default_crop(shape: tuple[int, int], output_size: int) -> int:
    """Largest multiple of ``output_size`` that fits in the frame (at least ``output_size``)."""
    return max(output_size, (min(shape) // output_size) * output_size)


def crop_around(frame: np.ndarray, centre: tuple[int, int], size: int) -> np.ndarray:
    """The ``size x size`` window with ``centre`` at pixel ``(size//2, size//2)``; zeros off the detector."""
    out = np.zeros((size, size), dtype=frame.dtype)
    r0, c0 = centre[0] - size // 2, centre[1] - size // 2
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + size, frame.shape[0]), min(c0 + size, frame.shape[1])
    if rs < re and cs < ce:
        out[rs - r0 : re - r0, cs - c0 : ce - c0] = frame[rs:re, cs:ce]
    return out


def bin_to(frame: np.ndarray, size: int) -> np.ndarray:
    """Sum ``k x k`` blocks of a square frame whose side is ``k * size`` (counts are conserved)."""
    k = frame.shape[0] // size
    if frame.shape != (k * size, k * size):
        raise CdinnError(f"cannot bin a {frame.shape} window to {size}x{size}")
    return frame.reshape(size, k, size, k).sum(axis=(1, 3))


def to_amplitude(frame: np.ndarray, input_kind: str) -> np.ndarray:
    """Intensities -> amplitudes (square root); amplitudes pass through. float32."""
    return (np.sqrt(frame) if input_kind == "intensity" else frame).astype(np.float32)


class Preprocessor:
    """All steps for one configuration (the dark frame loaded once)."""

    def __init__(self, cfg: PreprocessConfig):
        self.cfg = cfg
        self.dark = None
        if cfg.dark:
            try:
                self.dark = np.load(cfg.dark, allow_pickle=False).astype(np.float64)
            except (OSError, ValueError) as exc:
                raise CdinnError(f"cannot read dark frame {cfg.dark}: {str(exc).splitlines()[0]}") from None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """One raw 2-D frame -> (output_size, output_size) amplitudes; CdinnError for a bad frame."""
        if frame.ndim != 2:
            raise CdinnError(f"frame has shape {frame.shape}, expected a 2-D image")
        if frame.dtype.kind not in "uif":
            raise CdinnError(f"frame dtype {frame.dtype} is not a real number type")
        reason = bad_frame_reason(frame, self.cfg.input_kind == "intensity")
        if reason:
            raise CdinnError(f"frame {reason}")
        if self.dark is not None and self.dark.shape != frame.shape:
            raise CdinnError(f"frame shape {frame.shape} does not match the dark frame {self.dark.shape}")
        clean = subtract(frame, self.dark, self.cfg.background)
        if not clean.any():
            raise CdinnError("frame is empty after dark/background subtraction")
        size = self.cfg.crop or default_crop(clean.shape, self.cfg.output_size)
        centre = self.cfg.centre_pixel or find_centre(clean, self.cfg.centre)
        window = crop_around(clean, centre, size)
        return to_amplitude(bin_to(window, self.cfg.output_size), self.cfg.input_kind)
