"""Preprocessing of real detector frames into network inputs, one small step per function.

Units: frames are intensities (counts per pixel) or amplitudes, as ``input_kind`` and the source declare
(:func:`cdinn.model.validation.frame_kind`: detector data are counts, undeclared integers too). The steps,
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
has no measurement: it holds 0 and is in the returned grid mask, which the networks' input
(:func:`cdinn.model.conventions.network_input`), the fit and the oversampling estimate take, as they do the API's
masks. Friedel's rule ``|F(-q)| = |F(q)|`` is not used: it holds for real objects only, and the objects CDI images
carry phase. Scale does not matter downstream: the networks normalise each frame to its maximum.

Where the crop window is known before a frame's pixels are looked at (the binning chosen, the centre calibrated,
given by the source or the frame's middle), the frame is cut to that window first and every step, the checks
included, works on the window alone: the pixels that are reconstructed (a detector frame is often many times
the window; ``tests/host/test_preprocess.py`` checks that the results equal those of the whole frame).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any, Literal, NamedTuple

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Band
from cdinn.model import validation
from cdinn.model.conventions import GRID
from cdinn.model.sampling import AUTO_OVERSAMPLING, MIN_OVERSAMPLING, oversampling
from cdinn.options import centre_pixel_text, option


@dataclass(frozen=True)
class PreprocessConfig:
    input_kind: Literal["auto", "intensity", "amplitude"] = option(
        "auto",
        "what the frames hold: intensities (counts) or amplitudes; auto: what the input declares (a dataset's "
        "'quantity' attribute, as cdinn simulate writes it; detector files and streams hold counts), else "
        "integers are counts and real numbers amplitudes. Contradicting a declared kind is an error",
    )
    dark: str | None = option(None, ".npy dark frame (counts) to subtract, the frames' shape")
    background: float = option(0.0, "constant background subtracted after the dark frame (counts per pixel)")
    centre: Literal["frame", "max", "com"] = option(
        "frame", "zero-frequency pixel: the frame's middle pixel, the maximum or the centre of mass"
    )
    centre_pixel: tuple[int, int] | None = option(
        None,
        "calibrated zero-frequency pixel as ROW,COL (row = y, col = "
        "x; overrides the beam centre an NXmx file records, which overrides "
        "--centre)",
        parse=centre_pixel_text,
        metavar="ROW,COL",
    )
    binning: int | str = option(
        "auto",
        "k x k detector pixels summed into one grid pixel, or 'auto': the largest "
        "power of 2 (at most what the frame allows) that keeps the first frame's object at "
        "an oversampling >= 1.25 on the networks' grid (cdinn.model.sampling); the crop "
        "window is the grid times k",
        flag="bin",
        parse=lambda t: t if t == "auto" else int(t),
        metavar="K|auto",
    )
    crop: int | None = option(
        None, "crop window around the centre (pixels, a multiple of 32; default: the largest that fits)"
    )
    output_size: int = GRID
    mask: str | None = option(
        None,
        "bad-pixel mask (.npy or HDF5 spec, nonzero = bad, the frames' shape), combined "
        "with the detector's own pixel_mask and the unsigned-maximum sentinel",
    )
    beamstop: float = option(
        0.0,
        "radius (detector pixels) of a beamstop around the beam centre: those pixels carry no measurement (0: none)",
    )
    saturation: float | None = option(
        None,
        "saturation level (counts, or amplitude units with input-kind "
        "amplitude): pixels at or above it carry no measurement (none: not used)",
    )

    def __post_init__(self) -> None:
        if self.input_kind not in ("auto", *validation.KINDS):
            raise CdinnError(f"input kind must be auto, intensity or amplitude, got {self.input_kind!r}")
        if self.centre not in ("frame", "max", "com"):
            raise CdinnError(f"centring must be 'frame', 'max' or 'com', got {self.centre!r}")
        if self.crop is not None and (self.crop < self.output_size or self.crop % self.output_size):
            raise CdinnError(f"crop ({self.crop}) must be a multiple of the output size {self.output_size}")
        if self.beamstop < 0 or (self.saturation is not None and not self.saturation > 0):
            raise CdinnError("the beamstop radius must be >= 0 pixels and the saturation level > 0")
        if self.binning != "auto" and (not isinstance(self.binning, int) or self.binning < 1):
            raise CdinnError(f"binning must be 'auto' or a whole number >= 1, got {self.binning!r}")
        if self.crop is not None and self.binning not in ("auto", self.crop // self.output_size):
            raise CdinnError(
                f"crop {self.crop} and binning {self.binning} disagree: the crop is the grid "
                f"({self.output_size}) times the binning"
            )

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


def _cut(frame: np.ndarray, window: tuple[int, int, int]) -> np.ndarray:
    """The ``(first row, first column, size)`` window of a frame that lies on the detector (a view)."""
    r0, c0, size = window
    return frame[r0 : r0 + size, c0 : c0 + size]


def _within(shape: tuple[int, ...], centre: tuple[int, int], size: int) -> bool:
    """Whether the ``size x size`` window around ``centre`` lies on the detector."""
    r0, c0 = centre[0] - size // 2, centre[1] - size // 2
    return r0 >= 0 and c0 >= 0 and r0 + size <= shape[0] and c0 + size <= shape[1]


def _block_sums(values: np.ndarray, k: int) -> np.ndarray:
    """Sums (float64) of the ``k x k`` blocks over the last two axes: each block's k rows summed first (whole
    contiguous rows), then k strided additions of their columns (numpy's reductions over a short inner axis, or
    strided additions over the whole frame, cost several times more)."""
    *lead, rows, cols = values.shape
    row_sums = values.reshape(*lead, rows // k, k, cols).sum(axis=-2, dtype=np.float64)
    blocks = row_sums[..., 0::k].copy()
    for j in range(1, k):
        blocks += row_sums[..., j::k]
    return blocks


def _valid_counts(valid: np.ndarray | None, k: int) -> np.ndarray | None:
    """The number of valid pixels in each ``k x k`` block of ``valid`` (B or 1, S, S) bool (float64), None when
    every pixel is valid. One mask for every frame (a detector's) is counted once per mask: the same numbers."""
    if valid is None:
        return None
    if len(valid) == 1:
        return _shared_counts(valid.shape, np.packbits(valid).tobytes(), k)
    return None if valid.all() else _block_sums(valid, k)


@lru_cache(maxsize=32)
def _shared_counts(shape: tuple[int, ...], packed: bytes, k: int) -> np.ndarray | None:
    valid = np.unpackbits(np.frombuffer(packed, np.uint8), count=int(np.prod(shape))).reshape(shape).astype(bool)
    if valid.all():
        return None
    counts = _block_sums(valid, k)
    counts.flags.writeable = False  # shared between calls
    return counts


def bin_to(frame: np.ndarray, size: int, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Sum ``k x k`` blocks of square frames (..., k * size, k * size) (counts are conserved). With a
    ``valid`` mask (broadcast against the frames), each block's sum of valid pixels is scaled by
    ``k^2 / valid count``, and a block with none holds 0. Returns the binned frames (float64) and the (B or 1,
    size, size) bool mask of the blocks that hold no valid pixel (None: none anywhere; shared by every frame
    where ``valid`` is)."""
    k = frame.shape[-1] // size
    if frame.shape[-2:] != (k * size, k * size):
        raise CdinnError(f"cannot bin a {frame.shape[-2:]} window to {size}x{size}")
    counts = _valid_counts(valid, k)
    if valid is None or counts is None:
        return _block_sums(frame, k), None
    return _scaled(_block_sums(np.where(valid, frame, 0), k), counts, k)


def _scaled(sums: np.ndarray, counts: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Block sums of valid pixels with ``counts`` valid pixels each (None: all ``k^2``) -> :func:`bin_to`'s
    binned frames and mask of blocks without any valid pixel."""
    if counts is None:
        return sums, None
    binned = np.where(counts > 0, sums * (k * k) / np.maximum(counts, 1), 0.0)
    missing = counts == 0
    return binned, (missing if missing.any() else None)


def bin_with_estimate(
    window: np.ndarray, valid: np.ndarray | None, output_size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, bool]:
    """Intensity windows (B, S, S) whose invalid pixels hold 0 -> :func:`bin_to`'s binned frames and grid
    mask at ``output_size`` and :func:`window_oversampling`'s (B,) estimate and whether it is resolved. Where
    the estimate's finer grid divides the window, the window is summed once, to that grid, and the output grid
    summed from it (the same sums: integer counts add exactly in float64)."""
    fine = 2 * GRID
    k = window.shape[-1] // output_size
    ratio = fine // output_size
    if output_size >= fine or k % ratio:
        binned, missing = bin_to(window, output_size, valid)
        sigma, resolved = window_oversampling(window, valid, output_size, (binned, missing))
        return binned, missing, sigma, resolved
    fine_sums = _block_sums(window, k // ratio)
    fine_counts = _valid_counts(valid, k // ratio)
    fine_binned, fine_missing = _scaled(fine_sums, fine_counts, k // ratio)
    counts = _block_sums(fine_counts, ratio) if fine_counts is not None else None
    binned, missing = _scaled(_block_sums(fine_sums, ratio), counts, k)
    return binned, missing, oversampling(fine_binned, fine_missing).min(axis=1) / 2, True


def _zero(stack: np.ndarray, masked: np.ndarray) -> None:
    """Set the ``masked`` pixels (B or 1, H, W) bool of ``stack`` (B, H, W) to 0, in place. One detector mask
    for every frame, with few pixels masked (chip gaps, dead pixels): by their indices, touching those pixels
    alone instead of every pixel of every frame."""
    if len(masked) == 1 and stack.flags.c_contiguous:
        index = np.flatnonzero(masked[0])
        if len(index) <= masked[0].size // 8:
            stack.reshape(len(stack), -1)[:, index] = 0
            return
    np.copyto(stack, 0, where=masked)


def to_amplitude(frame: np.ndarray, input_kind: str) -> np.ndarray:
    """Intensities -> amplitudes (square root); amplitudes pass through. float32."""
    return (np.sqrt(np.maximum(frame, 0)) if input_kind == "intensity" else frame).astype(np.float32)


def load_mask(spec: str) -> np.ndarray:
    """A mask file (.npy or HDF5 spec) as bool, nonzero = no measurement."""
    from cdinn.host.sources import read_stack

    try:
        stack = read_stack(spec)[0]
        return (stack[0] if len(stack) == 1 else stack) != 0
    except CdinnError as exc:
        raise CdinnError(f"cannot read mask: {exc}") from None


def _without_beamstop(
    shape: tuple[int, ...], centre: tuple[int, int], radius: float, valid: np.ndarray | None
) -> np.ndarray:
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


def window_oversampling(
    window: np.ndarray,
    valid: np.ndarray | None,
    output_size: int,
    binned: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> tuple[np.ndarray, bool]:
    """The (B,) oversampling on the networks' grid (the smaller axis) of cropped intensity windows (B, S, S)
    binned to ``output_size`` (32, or 64 for refinement, whose every other pixel is the networks' grid), and
    whether it is resolved (estimated on a grid twice the networks' one, where the autocorrelation resolves an
    oversampling down to 1). ``binned``: :func:`bin_to`'s result at ``output_size`` when already made (not
    binned again where that is the grid the estimate needs)."""
    k = window.shape[-1] // output_size
    fine = 2 * GRID

    def on_grid() -> tuple[np.ndarray, np.ndarray | None]:
        return bin_to(window, output_size, valid) if binned is None else binned

    if output_size == fine:
        return oversampling(*on_grid()).min(axis=1) / 2, True
    if k % (fine // output_size) == 0:
        return oversampling(*bin_to(window, fine, valid)).min(axis=1) / 2, True
    return oversampling(*on_grid()).min(axis=1) * GRID / output_size, False


STACK_BYTES = 1 << 20
"""Frames are preprocessed in stacks of at most this much input (a few frames): whole-stack array operations
without the per-frame Python overhead, while the stack and its temporaries stay in the processor's cache."""


def _group_key(frame: np.ndarray, mask: np.ndarray | None) -> tuple:
    """Frames that can be preprocessed as one stack: same shape and type, the same detector mask object."""
    return frame.shape, frame.dtype.str, id(mask)


PREPROCESS_STEPS = ("validate", "bin")
"""What :attr:`Preprocessor.seconds` times: ``validate`` (checks, masks, sentinels and saturation, dark and
background, the rejections) and ``bin`` (centring, crop, beamstop, binning and the sampling check)."""


class Preprocessor:
    """All steps for one configuration (the dark frame and the mask file loaded once). With ``binning='auto'``
    and no crop, the binning is chosen on the first frame and kept for the run (:attr:`binning`).
    :attr:`seconds`: the time spent so far in each of :data:`PREPROCESS_STEPS`."""

    def __init__(self, cfg: PreprocessConfig):
        self.cfg = cfg
        self.seconds = dict.fromkeys(PREPROCESS_STEPS, 0.0)
        self.binning: int | None = (
            cfg.crop // cfg.output_size if cfg.crop else None if cfg.binning == "auto" else int(cfg.binning)
        )
        self.dark = None
        self.mask = load_mask(cfg.mask) if cfg.mask else None
        if cfg.dark:
            try:
                self.dark = np.load(cfg.dark, allow_pickle=False).astype(np.float64)
            except (OSError, ValueError) as exc:
                raise CdinnError(f"cannot read dark frame {cfg.dark}: {str(exc).splitlines()[0]}") from None

    def on_grid(self) -> None:
        """Frames already on the output grid were taken as they are: with ``binning='auto'`` not yet chosen, the
        binning is 1 (what :meth:`prepare` chooses for such a frame)."""
        if self.binning is None:
            self.binning = 1

    def applied_config(self) -> PreprocessConfig:
        """The settings as applied: ``binning='auto'`` replaced by the binning chosen on the first detector frame
        (as configured before one arrived, or when every frame was already on the grid). Outputs record this."""
        if self.cfg.binning == "auto" and self.binning is not None:
            return replace(self.cfg, binning=self.binning)
        return self.cfg

    def __call__(
        self, frame: np.ndarray, mask: np.ndarray | None = None, centre: tuple[float, float] | None = None
    ) -> np.ndarray:
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

    def prepare(
        self,
        frame: np.ndarray,
        mask: np.ndarray | None = None,
        centre: tuple[float, float] | None = None,
        kind: str | None = None,
    ) -> Prepared:
        """One raw 2-D frame -> its :class:`Prepared` (output_size, output_size) amplitudes, grid mask and
        oversampling; CdinnError for a bad frame, an undersampled one included. ``mask`` (True = bad),
        ``centre`` (row, col) and ``kind`` (declared: intensity or amplitude) are what the source knows."""
        result = self.prepare_many([frame], [mask], [centre], [kind])[0]
        if isinstance(result, CdinnError):
            raise result
        return result

    def prepare_many(
        self,
        frames: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None] | None = None,
        centres: Sequence[tuple[float, float] | None] | None = None,
        kinds: Sequence[str | None] | None = None,
        bands: Sequence[Band | None] | None = None,
    ) -> list[Prepared | CdinnError]:
        """:meth:`prepare` for a batch of frames, in order: each a :class:`Prepared` or the CdinnError that
        rejects it. Frames of the same shape, type, kind and detector mask go through every step as one stack
        (array operations over the batch), with results identical to one frame at a time. ``bands``: for a
        frame its source decoded in part, the rows it holds (:class:`cdinn.host.frames.Band`; asked for with
        :meth:`window_rows`); its window must lie in them."""
        n = len(frames)
        masks = list(masks) if masks is not None else [None] * n
        centres = list(centres) if centres is not None else [None] * n
        declared = list(kinds) if kinds is not None else [None] * n
        banded = list(bands) if bands is not None else [None] * n
        results: list[Prepared | CdinnError | None] = [None] * n
        groups: dict[tuple, list[int]] = {}
        started = time.perf_counter()
        for i, frame in enumerate(frames):
            band = banded[i]
            try:
                self._check(frame, masks[i], band)
                kind = validation.frame_kind(self.cfg.input_kind, declared[i], frame.dtype)
            except CdinnError as exc:
                results[i] = exc
                continue
            key = _group_key(frame, masks[i]) if band is None else (band, frame.dtype.str, id(masks[i]), centres[i])
            groups.setdefault((kind, *key), []).append(i)
        self._lap("validate", started)
        for (kind, *_), members in groups.items():
            first, band = frames[members[0]], banded[members[0]]
            shape = first.shape if band is None else band.shape
            window = self._known_window(shape, centres[members[0]])
            per_stack = max(1, STACK_BYTES // (first.itemsize * (window[2] ** 2 if window else first.size)))
            for start in range(0, len(members), per_stack):
                part = members[start : start + per_stack]
                started = time.perf_counter()
                window = self._known_window(shape, centres[part[0]])
                if band is not None:  # one band, one centre: the band must hold the window
                    end = band.first_row + min(len(frames[i]) for i in part)
                    if window is None or not band.first_row <= window[0] <= end - window[2]:
                        reason = CdinnError(
                            f"the source decoded rows {band.first_row}-{end} of {band.shape}, "
                            f"not the crop window {window} (rows asked for otherwise than used)"
                        )
                        for i in part:
                            results[i] = reason
                        continue
                if window is not None and (band or all(centres[i] == centres[part[0]] for i in part)):
                    inside = (window[0] - (band.first_row if band else 0), *window[1:])  # in the rows held
                    stack = np.stack([_cut(frames[i], inside) for i in part])
                    self._lap("bin", started)
                    prepared = self._prepare_stack(stack, masks[part[0]], [None] * len(part), kind, cut=window)
                else:
                    stack = np.stack([frames[i] for i in part])
                    self._lap("validate", started)
                    prepared = self._prepare_stack(stack, masks[part[0]], [centres[i] for i in part], kind)
                for i, result in zip(part, prepared, strict=True):
                    results[i] = result
        return [result for result in results if result is not None]  # every slot was filled above

    def _lap(self, step: str, started: float) -> float:
        """Add the time since ``started`` (``time.perf_counter()``) to ``step``; return the time now."""
        now = time.perf_counter()
        self.seconds[step] += now - started
        return now

    def _known_window(self, shape: tuple[int, ...], centre: tuple[float, float] | None) -> tuple[int, int, int] | None:
        """The crop window ``(first row, first column, size)`` of frames of ``shape`` centred on ``centre`` (the
        source's) when it is known before looking at their pixels (the binning chosen, the centre calibrated,
        given by the source or the frame's middle) and lies on the detector: such frames are cut to it first,
        and every later step works on the window alone. None otherwise."""
        where = self._given_centre(centre)
        if where is None and self.cfg.centre == "frame":
            where = shape[0] // 2, shape[1] // 2
        if self.binning is None or where is None:
            return None
        size = self.binning * self.cfg.output_size
        if not _within(shape, where, size):
            return None
        return where[0] - size // 2, where[1] - size // 2, size

    def _check(self, frame: np.ndarray, mask: np.ndarray | None, band: Band | None = None) -> None:
        """What one frame (``band``: rows of it) must be before it can be stacked with others (CdinnError
        otherwise)."""
        shape = frame.shape if band is None else band.shape
        if frame.ndim != 2:
            raise CdinnError(f"frame has shape {frame.shape}, expected a 2-D image")
        if frame.dtype.kind not in "uif":
            raise CdinnError(f"frame dtype {frame.dtype} is not a real number type")
        if min(shape) < self.cfg.output_size:
            raise CdinnError(
                f"frame has shape {shape}, smaller than the {self.cfg.output_size}x"
                f"{self.cfg.output_size} grid (padding would invent the missing pixels)"
            )
        for name, other in (("detector mask", mask), ("mask", self.mask), ("dark frame", self.dark)):
            if other is not None and other.shape != shape:
                raise CdinnError(f"frame shape {shape} does not match the {name} {other.shape}")

    def window_rows(self, shape: tuple[int, int], centre: tuple[float, float] | None) -> tuple[int, int] | None:
        """The rows ``[first, end)`` of a frame of ``shape`` with the source's beam ``centre`` that this
        preprocessing will use, where that is known before its pixels are seen (:meth:`_known_window`: once the
        binning is chosen); None: the whole frame may be needed. A source told this
        (:data:`cdinn.host.frames.WantedRows`) may decode those rows alone."""
        window = self._known_window(shape, centre)
        return None if window is None else (window[0], window[0] + window[2])

    def _masked(
        self, stack: np.ndarray, mask: np.ndarray | None, window: tuple[int, int, int] | None
    ) -> np.ndarray | None:
        """(B or 1, H, W) pixels without a measurement: the detector's and the user's masks (cut to the
        ``window`` the stack was cut to), the unsigned sentinel, saturation; None when every pixel of every
        frame is measured."""
        masked = None
        for flags in (mask, self.mask):
            if flags is not None and window is not None:
                flags = _cut(flags, window)
            if flags is not None:
                masked = flags[None] if masked is None else masked | flags
        if stack.dtype.kind == "u" and stack.max() == np.iinfo(stack.dtype).max:  # (one pass, no bool stack)
            sentinel = stack == np.iinfo(stack.dtype).max
            masked = sentinel if masked is None else masked | sentinel
        if self.cfg.saturation is not None:
            saturated = stack >= self.cfg.saturation
            masked = saturated if masked is None else masked | saturated
        return masked if masked is not None and masked.any() else None

    @staticmethod
    def _reasons(
        measured: np.ndarray, valid: np.ndarray | None, non_finite: np.ndarray | None, kind: str
    ) -> list[str | None]:
        """Why each frame of a stack cannot be reconstructed (None: it can), as :meth:`prepare` words it.
        ``measured``: the frames with unmeasured pixels at 0; ``non_finite``: (B,) whether a float frame has
        NaN or Inf at a measured pixel."""
        b = len(measured)
        flat = measured.reshape(b, -1)
        reasons: list[str | None] = [None] * b
        checks: list[tuple[Any, str]] = []  # (B,) flags or one flag for the whole stack, and the reason
        if non_finite is not None:
            checks.append((non_finite, f"frame {validation.NON_FINITE}"))
        if valid is not None:
            checks.append((~valid.reshape(len(valid), -1).any(axis=1), f"frame {validation.ALL_MASKED}"))
        if measured.dtype.kind != "u":
            checks.append(((flat < 0).any(axis=1), f"frame {validation.negative(kind == 'intensity')}"))
            checks.append((~flat.any(axis=1), f"frame {validation.EMPTY}"))
        else:  # the same for counts that cannot be negative, in one vectorised reduction
            checks.append((flat.max(axis=1) == 0, f"frame {validation.EMPTY}"))
        for flags, reason in checks:
            for i in np.flatnonzero(np.broadcast_to(flags, (b,))):
                reasons[i] = reasons[i] or reason
        return reasons

    def _prepare_stack(
        self,
        stack: np.ndarray,
        mask: np.ndarray | None,
        centres: list[tuple[float, float] | None],
        kind: str,
        cut: tuple[int, int, int] | None = None,
    ) -> list[Prepared | CdinnError]:
        """The steps of :meth:`prepare` over a stack (B, H, W) of frames of one ``kind`` sharing one detector
        mask (the stack is this call's own copy: it is changed in place). With a ``cut``
        (:meth:`_known_window`), the frames were cut to it: the masks and the dark frame are cut alike and the
        window's middle is the centre."""
        b = len(stack)
        started = time.perf_counter()
        masked = self._masked(stack, mask, cut)
        valid = None if masked is None else ~masked
        non_finite = None
        if stack.dtype.kind == "f":
            finite = np.isfinite(stack)
            non_finite = ~(finite if valid is None else finite | masked).reshape(b, -1).all(axis=1)
            np.copyto(stack, 0, where=~finite)  # NaN/Inf: masked ones carry no measurement, others reject
        if masked is not None:
            _zero(stack, masked)
        measured = stack
        results: list[Prepared | CdinnError | None] = [
            CdinnError(r) if r else None for r in self._reasons(measured, valid, non_finite, kind)
        ]
        dark = self.dark if self.dark is None or cut is None else _cut(self.dark, cut)
        clean = subtract(measured, dark, self.cfg.background)
        if clean is not measured:  # masked pixels hold 0
            for empty in np.flatnonzero(~clean.reshape(b, -1).any(axis=1)):
                results[empty] = results[empty] or CdinnError("frame is empty after dark/background subtraction")
        good = [i for i in range(b) if results[i] is None]
        started = self._lap("validate", started)
        if not good:
            return results  # type: ignore[return-value]
        if cut is not None:
            wheres = [(cut[2] // 2, cut[2] // 2)] * b
        else:
            wheres = [self._centre_of(clean[i], centres[i]) for i in range(b)]
        if self.cfg.beamstop > 0:
            valid = np.stack(
                [
                    _without_beamstop(
                        clean.shape[1:],
                        wheres[i],
                        self.cfg.beamstop,
                        None if valid is None else valid[min(i, len(valid) - 1)],
                    )
                    for i in range(b)
                ]
            )
            clean = np.where(valid, clean, 0)
        counts = kind == "intensity"
        if self.binning is None:
            first = good[0]
            first_valid = None if valid is None else valid[min(first, len(valid) - 1)]
            self.binning = self._choose_binning(
                clean[first] if counts else np.square(clean[first], dtype=np.float64), first_valid, wheres[first]
            )
        size = self.binning * self.cfg.output_size
        window, window_valid = self._windows(clean, valid, wheres, size)
        if counts:  # invalid pixels of ``clean`` hold 0
            binned, missing, sigma, resolved = bin_with_estimate(window, window_valid, self.cfg.output_size)
        else:
            binned, missing = bin_to(window, self.cfg.output_size, window_valid)
            sigma, resolved = window_oversampling(
                np.square(window, dtype=np.float64), window_valid, self.cfg.output_size
            )
        amplitude = to_amplitude(binned, kind)
        for i in good:
            if resolved and sigma[i] < MIN_OVERSAMPLING:
                results[i] = CdinnError(
                    f"undersampled: oversampling {sigma[i]:.2f} on the {GRID}-pixel grid after "
                    f"{self.binning}x{self.binning} binning (needs >= {MIN_OVERSAMPLING}): the "
                    "object does not fit the networks' grid; bin less (--bin, --crop)"
                )
                continue
            grid_mask = None if missing is None else missing[min(i, len(missing) - 1)]  # (1, S, S): shared
            grid_mask = grid_mask if grid_mask is not None and grid_mask.any() else None
            results[i] = Prepared(amplitude[i], grid_mask, float(sigma[i]))
        self._lap("bin", started)
        return results  # type: ignore[return-value]

    def _centre_of(self, clean: np.ndarray, centre: tuple[float, float] | None) -> tuple[int, int]:
        """The zero-frequency pixel (row, col) of one frame: the calibrated one, the source's, else found."""
        given = self._given_centre(centre)
        return given if given is not None else find_centre(clean, self.cfg.centre)

    def _given_centre(self, centre: tuple[float, float] | None) -> tuple[int, int] | None:
        """The calibrated zero-frequency pixel, else the source's ``centre`` rounded; None: neither."""
        if self.cfg.centre_pixel:
            return self.cfg.centre_pixel
        if centre is not None:
            return int(round(centre[0])), int(round(centre[1]))
        return None

    @staticmethod
    def _windows(
        clean: np.ndarray, valid: np.ndarray | None, wheres: list[tuple[int, int]], size: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The (B, size, size) windows around each frame's centre and their valid pixels (None: all valid;
        pixels off the detector are not valid)."""
        shape = clean.shape[1:]
        inside = all(_within(shape, where, size) for where in wheres)
        if inside and len(set(wheres)) == 1:  # one window for the whole stack: a view, no copy
            r0, c0 = wheres[0][0] - size // 2, wheres[0][1] - size // 2
            window = clean[:, r0 : r0 + size, c0 : c0 + size]
            window_valid = None if valid is None else valid[:, r0 : r0 + size, c0 : c0 + size]
            return window, window_valid
        window = np.stack([crop_around(frame, where, size) for frame, where in zip(clean, wheres, strict=True)])
        if valid is None and inside:
            return window, None
        every = np.ones(shape, bool)
        window_valid = np.stack(
            [
                crop_around(every if valid is None else valid[min(i, len(valid) - 1)], where, size)
                for i, where in enumerate(wheres)
            ]
        )
        return window, window_valid
