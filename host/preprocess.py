"""Preprocessing of real detector frames into network inputs, one small step per function.

Units: detector frames are *intensities* (counts per pixel) unless ``input_kind="amplitude"``. The steps,
in order: masking (pixels flagged by the detector's pixel mask or ``--mask``, and pixels holding the
unsigned type's maximum, the value Eiger and other counting detectors write into gaps, dead and saturated
pixels, as well as NaN/Inf ones, carry no measurement), dark-frame subtraction (counts), constant
background subtraction (counts per pixel), negative values clipped to 0, centring (on a calibrated
beam-centre pixel ``(row, col)`` given by the user, else the beam centre the file records, else the frame's
middle pixel ``(rows//2, cols//2)`` — the cdinn convention for frames that are already centred — or the
diffraction maximum or intensity centre of mass, which only coincide with the zero frequency for weakly
phased objects), cropping a square window around that centre (pixels off the detector count as masked),
summing ``k x k`` pixel blocks down to the network's grid (``output_size``, 32) and the square root
(intensities -> amplitudes).

Masked pixels: a block's sum of valid pixels is scaled by ``k^2 / valid pixels``; a block with no valid pixel
has no measurement (it is in the returned grid mask, which mask-input networks and the fit use) and takes the
mean of its valid 4-neighbour blocks (repeated inwards for wider holes: what one-channel networks see). Friedel's rule
``|F(-q)| = |F(q)|`` is not used: it holds for real objects only, and the objects CDI images carry phase.
Scale does not matter downstream: the networks normalise each frame to its maximum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import numpy as np

from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID
from cdinn.model.sampling import AUTO_OVERSAMPLING, MIN_OVERSAMPLING, fill_from_neighbours, oversampling
from cdinn.model.validation import bad_frame_reason
from cdinn.options import centre_pixel_text, option


@dataclass(frozen=True)
class PreprocessConfig:
    input_kind: Literal["intensity", "amplitude"] = option("intensity", "what the detector frames hold (counts = "
                                                           "intensity)")
    dark: str | None = option(None, ".npy dark frame (counts) to subtract, the frames' shape")
    background: float = option(0.0, "constant background subtracted after the dark frame (counts per pixel)")
    centre: Literal["frame", "max", "com"] = option("frame", "zero-frequency pixel: the frame's middle pixel, the "
                                                    "maximum or the centre of mass")
    centre_pixel: tuple[int, int] | None = option(None, "calibrated zero-frequency pixel as ROW,COL (row = y, col = "
                                                  "x; overrides the beam centre an NXmx file records, which overrides "
                                                  "--centre)", parse=centre_pixel_text, metavar="ROW,COL")
    binning: int | str = option("auto", "k x k detector pixels summed into one grid pixel, or 'auto': the largest "
                                "power of 2 (at most what the frame allows) that keeps the first frame's object at "
                                "an oversampling >= 1.25 on the networks' grid (cdinn.model.sampling); the crop "
                                "window is the grid times k", flag="bin", parse=lambda t: t if t == "auto" else int(t),
                                metavar="K|auto")
    crop: int | None = option(None, "crop window around the centre (pixels, a multiple of 32; default: the largest "
                              "that fits)")
    output_size: int = GRID
    mask: str | None = option(None, "bad-pixel mask (.npy or HDF5 spec, nonzero = bad, the frames' shape), combined "
                              "with the detector's own pixel_mask and the unsigned-maximum sentinel")
    beamstop: float = option(0.0, "radius (detector pixels) of a beamstop around the beam centre: those pixels "
                             "carry no measurement (0: none)")
    saturation: float | None = option(None, "saturation level (counts, or amplitude units with input-kind "
                                      "amplitude): pixels at or above it carry no measurement (none: not used)")

    def __post_init__(self) -> None:
        if self.input_kind not in ("intensity", "amplitude"):
            raise CdinnError(f"input kind must be 'intensity' or 'amplitude', got {self.input_kind!r}")
        if self.centre not in ("frame", "max", "com"):
            raise CdinnError(f"centring must be 'frame', 'max' or 'com', got {self.centre!r}")
        if self.crop is not None and (self.crop < self.output_size or self.crop % self.output_size):
            raise CdinnError(f"crop ({self.crop}) must be a multiple of the output size {self.output_size}")
        if self.beamstop < 0 or (self.saturation is not None and not self.saturation > 0):
            raise CdinnError("the beamstop radius must be >= 0 pixels and the saturation level > 0")
        if self.binning != "auto" and (not isinstance(self.binning, int) or self.binning < 1):
            raise CdinnError(f"binning must be 'auto' or a whole number >= 1, got {self.binning!r}")
        if self.crop is not None and self.binning not in ("auto", self.crop // self.output_size):
            raise CdinnError(f"crop {self.crop} and binning {self.binning} disagree: the crop is the grid "
                             f"({self.output_size}) times the binning")

    def as_dict(self) -> dict:
        return asdict(self)


def subtract(frame: np.ndarray, dark: np.ndarray | None, background: float) -> np.ndarray:
    """Frame minus dark frame minus a constant, clipped at 0 (float32 for integer counts, exact up to 2^24;
    float64 frames stay float64); the frame itself when there is nothing to subtract."""
    if dark is None and not background:
        return frame
    out = frame.astype(np.promote_types(frame.dtype, np.float32))
    if dark is not None:
        out -= dark
    if background:
        out -= background
    return np.maximum(out, 0.0, out=out)


def find_centre(frame: np.ndarray, method: str) -> tuple[int, int]:
    """Pixel (row, col) of the diffraction centre: the maximum, the intensity centre of mass, or the
    middle pixel of the frame ('frame')."""
    if method == "max":
        row, col = np.unravel_index(np.argmax(frame), frame.shape)
        return int(row), int(col)
    if method == "com":
        total = frame.sum()
        rows, cols = np.indices(frame.shape)
        return int(round((rows * frame).sum() / total)), int(round((cols * frame).sum() / total))
    return frame.shape[0] // 2, frame.shape[1] // 2


def default_crop(shape: tuple[int, int], output_size: int) -> int:
    """Largest multiple of ``output_size`` that fits in the frame (at least ``output_size``)."""
    return max(output_size, (min(shape) // output_size) * output_size)


def crop_around(frame: np.ndarray, centre: tuple[int, int], size: int) -> np.ndarray:
    """The ``size x size`` window with ``centre`` at pixel ``(size//2, size//2)``; zeros off the detector (the
    frame itself, not a copy, when the window is the whole frame)."""
    r0, c0 = centre[0] - size // 2, centre[1] - size // 2
    if (r0, c0) == (0, 0) and frame.shape == (size, size):
        return frame
    out = np.zeros((size, size), dtype=frame.dtype)
    rs, cs = max(r0, 0), max(c0, 0)
    re, ce = min(r0 + size, frame.shape[0]), min(c0 + size, frame.shape[1])
    if rs < re and cs < ce:
        out[rs - r0 : re - r0, cs - c0 : ce - c0] = frame[rs:re, cs:ce]
    return out


def _within(shape: tuple[int, ...], centre: tuple[int, int], size: int) -> bool:
    """Whether the ``size x size`` window around ``centre`` lies on the detector."""
    r0, c0 = centre[0] - size // 2, centre[1] - size // 2
    return r0 >= 0 and c0 >= 0 and r0 + size <= shape[0] and c0 + size <= shape[1]


def bin_to(frame: np.ndarray, size: int, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum ``k x k`` blocks of a square frame whose side is ``k * size`` (counts are conserved). With a
    ``valid`` mask, each block's sum of valid pixels is scaled by ``k^2 / valid count``, and a block with
    none is filled from its neighbours (see the module docstring). Returns the binned frame and the
    (size, size) bool mask of the blocks that hold no valid pixel (None: none)."""
    k = frame.shape[0] // size
    if frame.shape != (k * size, k * size):
        raise CdinnError(f"cannot bin a {frame.shape} window to {size}x{size}")
    if valid is None or valid.all():
        return frame.reshape(size, k, size, k).sum(axis=(1, 3), dtype=np.float64), None
    sums = np.where(valid, frame, 0).reshape(size, k, size, k).sum(axis=(1, 3), dtype=np.float64)
    counts = valid.reshape(size, k, size, k).sum(axis=(1, 3))
    binned = np.where(counts > 0, sums * (k * k) / np.maximum(counts, 1), 0.0)
    missing = counts == 0
    # a block with no valid pixel: the mean of its valid 4-neighbour blocks, repeated inwards for wider holes
    # (Friedel's |F(-q)| = |F(q)| holds only for real objects, not for the phase objects CDI images)
    return fill_from_neighbours(binned, missing), (missing if missing.any() else None)


def to_amplitude(frame: np.ndarray, input_kind: str) -> np.ndarray:
    """Intensities -> amplitudes (square root); amplitudes pass through. float32."""
    return (np.sqrt(frame) if input_kind == "intensity" else frame).astype(np.float32)


def masked_pixels(frame: np.ndarray, *masks: np.ndarray | None) -> np.ndarray:
    """Pixels flagged in any of ``masks`` (True = bad) or holding the unsigned type's maximum (the gap,
    dead and saturated sentinel of counting detectors)."""
    masked = frame == np.iinfo(frame.dtype).max if frame.dtype.kind == "u" else np.zeros(frame.shape, bool)
    for mask in masks:
        if mask is not None:
            masked |= mask
    return masked


def load_mask(spec: str) -> np.ndarray:
    """A mask file (.npy or HDF5 spec) as bool, nonzero = no measurement."""
    from cdinn.io import read_frames

    try:
        return np.asarray(read_frames(spec)) != 0
    except CdinnError as exc:
        raise CdinnError(f"cannot read mask: {exc}") from None


def _without_beamstop(shape: tuple[int, ...], centre: tuple[int, int], radius: float,
                      valid: np.ndarray | None) -> np.ndarray:
    """``valid`` (None: all) with the disc of ``radius`` pixels around ``centre`` (row, col) removed."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    outside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 > radius**2
    return outside if valid is None else valid & outside


class Prepared(NamedTuple):
    """One preprocessed frame: (S, S) float32 amplitudes, the (S, S) bool mask of grid pixels without any
    measurement (None: all measured), and the oversampling of the object on the networks' grid (the smaller
    axis; :mod:`cdinn.model.sampling`)."""

    amplitude: np.ndarray
    mask: np.ndarray | None
    oversampling: float


def window_oversampling(window: np.ndarray, valid: np.ndarray | None, output_size: int,
                        binned: np.ndarray | None = None) -> tuple[float, bool]:
    """The oversampling on the networks' grid of a cropped intensity window binned to ``output_size`` (32, or
    64 for refinement, whose every other pixel is the networks' grid), and whether it is resolved (estimated
    on a grid twice the networks' one, where the autocorrelation resolves an oversampling down to 1).
    ``binned``: the window already binned to ``output_size`` (not binned again where that is the grid the
    estimate needs)."""
    k = window.shape[0] // output_size
    fine = 2 * GRID

    def on_grid() -> np.ndarray:
        return bin_to(window, output_size, valid)[0] if binned is None else binned

    if output_size == fine:
        return float(oversampling(on_grid()[None])[0].min()) / 2, True
    if k % (fine // output_size) == 0:
        return float(oversampling(bin_to(window, fine, valid)[0][None])[0].min()) / 2, True
    return float(oversampling(on_grid()[None])[0].min()) * GRID / output_size, False


class Preprocessor:
    """All steps for one configuration (the dark frame and the mask file loaded once). With ``binning='auto'``
    and no crop, the binning is chosen on the first frame and kept for the run (:attr:`binning`)."""

    def __init__(self, cfg: PreprocessConfig):
        self.cfg = cfg
        self.binning: int | None = (cfg.crop // cfg.output_size if cfg.crop else
                                    None if cfg.binning == "auto" else int(cfg.binning))
        self.dark = None
        self.mask = load_mask(cfg.mask) if cfg.mask else None
        if cfg.dark:
            try:
                self.dark = np.load(cfg.dark, allow_pickle=False).astype(np.float64)
            except (OSError, ValueError) as exc:
                raise CdinnError(f"cannot read dark frame {cfg.dark}: {str(exc).splitlines()[0]}") from None

    def __call__(self, frame: np.ndarray, mask: np.ndarray | None = None,
                 centre: tuple[float, float] | None = None) -> np.ndarray:
        """:meth:`prepare`'s amplitudes alone."""
        return self.prepare(frame, mask, centre).amplitude

    def _choose_binning(self, clean: np.ndarray, valid: np.ndarray | None, where: tuple[int, int]) -> int:
        """The first frame's binning for ``binning='auto'``: the largest power of 2 (up to what the frame
        allows) at which its object keeps an oversampling of at least AUTO_OVERSAMPLING on the grid (1 when the
        full-resolution estimate is not resolved)."""
        out = self.cfg.output_size
        k = default_crop(clean.shape, out) // out
        window = crop_around(clean, where, k * out)
        window_valid = None if valid is None else crop_around(valid, where, k * out)
        sigma = float(oversampling(window[None], None if window_valid is None else ~window_valid[None])[0].min())
        scale = GRID / out  # oversampling on the networks' grid per unit of binning
        while k > 1 and (k % 2 or sigma * scale / k < AUTO_OVERSAMPLING):
            k = k // 2 if k % 2 == 0 else 1
        return k

    def prepare(self, frame: np.ndarray, mask: np.ndarray | None = None,
                centre: tuple[float, float] | None = None) -> Prepared:
        """One raw 2-D frame -> its :class:`Prepared` (output_size, output_size) amplitudes, grid mask and
        oversampling; CdinnError for a bad frame, an undersampled one included. ``mask`` (True = bad) and
        ``centre`` (row, col) are what the source knows about the detector."""
        if frame.ndim != 2:
            raise CdinnError(f"frame has shape {frame.shape}, expected a 2-D image")
        if frame.dtype.kind not in "uif":
            raise CdinnError(f"frame dtype {frame.dtype} is not a real number type")
        if min(frame.shape) < self.cfg.output_size:
            raise CdinnError(f"frame has shape {frame.shape}, smaller than the {self.cfg.output_size}x"
                             f"{self.cfg.output_size} grid (padding would invent the missing pixels)")
        for name, other in (("detector mask", mask), ("mask", self.mask), ("dark frame", self.dark)):
            if other is not None and other.shape != frame.shape:
                raise CdinnError(f"frame shape {frame.shape} does not match the {name} {other.shape}")
        masked = masked_pixels(frame, mask, self.mask)
        if self.cfg.saturation is not None:
            masked |= frame >= self.cfg.saturation
        valid = ~masked if masked.any() else None  # None: every pixel is valid
        if frame.dtype.kind == "f" and not np.isfinite(frame if valid is None else frame[valid]).all():
            raise CdinnError("frame contains NaN or Inf outside the masked pixels")
        if valid is not None and not valid.any():
            raise CdinnError("frame has no valid pixel (all masked)")
        measured = frame if valid is None else np.where(valid, frame, 0)
        reason = (None if measured.any() else "is all zero (empty frame)") if frame.dtype.kind == "u" else \
            bad_frame_reason(measured, self.cfg.input_kind == "intensity")
        if reason:
            raise CdinnError(f"frame {reason}")
        clean = subtract(measured, self.dark, self.cfg.background)
        if clean is not measured and not clean.any():  # masked pixels hold 0
            raise CdinnError("frame is empty after dark/background subtraction")
        if self.cfg.centre_pixel:
            where = self.cfg.centre_pixel
        elif centre is not None:
            where = (int(round(centre[0])), int(round(centre[1])))
        else:
            where = find_centre(clean, self.cfg.centre)
        if self.cfg.beamstop > 0:
            valid = _without_beamstop(clean.shape, where, self.cfg.beamstop, valid)
            clean = np.where(valid, clean, 0)
        counts = self.cfg.input_kind == "intensity"
        if self.binning is None:
            self.binning = self._choose_binning(clean if counts else np.square(clean, dtype=np.float64), valid, where)
        size = self.binning * self.cfg.output_size
        window = crop_around(clean, where, size)
        window_valid = None if valid is None and _within(clean.shape, where, size) else \
            crop_around(np.ones(clean.shape, bool) if valid is None else valid, where, size)
        binned, missing = bin_to(window, self.cfg.output_size, window_valid)
        sigma, resolved = (window_oversampling(window, window_valid, self.cfg.output_size, binned) if counts else
                           window_oversampling(np.square(window, dtype=np.float64), window_valid,
                                               self.cfg.output_size))
        if resolved and sigma < MIN_OVERSAMPLING:
            raise CdinnError(f"undersampled: oversampling {sigma:.2f} on the {GRID}-pixel grid after {self.binning}x"
                             f"{self.binning} binning (needs >= {MIN_OVERSAMPLING}): the object does not fit the "
                             "networks' grid; bin less (--bin, --crop)")
        return Prepared(to_amplitude(binned, self.cfg.input_kind), missing, sigma)
