"""Frames of a file for the batch commands (``cdinn reconstruct``): read through the runner's file source
(NXmx masters, compression filters, frame numbers) and, for detector-size frames, the runner's preprocessing
(masks, beam centre, crop, binning), so both commands treat a detector file the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host import output
from cdinn.host.frames import Frame, Rejected
from cdinn.host.preprocess import Prepared, PreprocessConfig, Preprocessor
from cdinn.host.sources import FileSource
from cdinn.inversion import Refine, invert, refine_label
from cdinn.model.validation import frame_kind, frame_mask, frame_reasons, validate_frames


def batch_config(preprocess: PreprocessConfig | None, size: int) -> PreprocessConfig:
    """The preprocessing a batch command applies (and records): ``preprocess``'s settings on the output grid
    ``size``."""
    return PreprocessConfig(**dict((preprocess or PreprocessConfig()).as_dict(), output_size=size))


def detector_preprocessor(preprocess: PreprocessConfig | None, size: int) -> Preprocessor:
    """The runner's preprocessing for the frames of a batch command (:func:`batch_config`)."""
    return Preprocessor(batch_config(preprocess, size))


def batch_provenance(backend: dict, spec: str, net: str, refine: int | str, views: int, **run: object) -> dict:
    """The provenance record of a batch command's output, the same in one process and on Dask: the backend's,
    the input ``spec``, the network set, the refinement and views asked for and ``run`` (e.g. the command
    line)."""
    return output.provenance(backend, source=spec, net=net, refine=refine_label(refine), views=views, **run)


def stack_masks(masks: list[np.ndarray | None], shape: tuple[int, ...]) -> np.ndarray | None:
    """Per-frame masks (None = every pixel measured) as one (B, *shape) bool array, or None if all are None."""
    if all(m is None for m in masks):
        return None
    return np.stack([np.zeros(shape, bool) if m is None else m for m in masks])


class Patterns(NamedTuple):
    """A file's frames on the grid: ``patterns`` (B, S, S), ``mask`` (B, S, S) bool (True = no measurement)
    or None, ``oversampling`` (B,) measured by the detector preprocessing (None for frames stored on the
    grid), ``numbers`` (B,) frame numbers, ``sources`` (B,) where each frame was read (file:dataset) and
    ``arrivals`` (B,) when (UNIX s), ``intensity``: whether the patterns are still intensities;
    ``rejected``: the frames left out, as (frame number, reason, arrival) (B may be 0)."""

    patterns: np.ndarray
    mask: np.ndarray | None
    oversampling: np.ndarray | None
    numbers: np.ndarray
    sources: list[str]
    arrivals: np.ndarray
    intensity: bool
    rejected: list[tuple[int, str, float]]


BLOCK_FRAMES = 1024
"""Frames a batch command reads, reconstructs and writes at a time: its memory does not grow with the file."""


def load_patterns(spec: str, size: int, preprocess: PreprocessConfig | None = None) -> Patterns:
    """All the :class:`Patterns` of a file in one (for commands that need every frame at once, e.g. ``cdinn
    adapt``); see :func:`iter_patterns`."""
    blocks = list(iter_patterns(spec, size, detector_preprocessor(preprocess, size)))
    bad = next((r for b in blocks for r in b.rejected), None)
    if bad is not None:
        raise CdinnError(f"frame {bad[0]} of {spec}: {bad[1]}")
    if len(blocks) == 1:
        return blocks[0]
    masks = [b.mask for b in blocks]
    mask = (
        None
        if all(m is None for m in masks)
        else np.concatenate([np.zeros(b.patterns.shape, bool) if b.mask is None else b.mask for b in blocks])
    )
    sigmas = [b.oversampling for b in blocks]
    return Patterns(
        np.concatenate([b.patterns for b in blocks]),
        mask,
        None if any(x is None for x in sigmas) else np.concatenate(sigmas),  # type: ignore[arg-type]
        np.concatenate([b.numbers for b in blocks]),
        [s for b in blocks for s in b.sources],
        np.concatenate([b.arrivals for b in blocks]),
        blocks[0].intensity,
        [],
    )


def iter_patterns(
    spec: str, size: int, prepare: Preprocessor, block: int | None = None, channel: str | None = None
) -> Iterator[Patterns]:
    """The :class:`Patterns` of a file (``channel``: of multi-channel data, :class:`FileSource`), block by block
    (at most ``block`` frames each, default :data:`BLOCK_FRAMES`, in order). The mask is
    True where a pixel has no measurement: the file's pixel mask and ``preprocess.mask`` ((size, size) or one
    per frame) for frames stored on the grid, the binned detector mask for detector frames.

    Frames already ``size x size`` are returned as stored (``prepare``'s ``input_kind`` and what the file
    declares say what they hold: :func:`cdinn.model.validation.frame_kind`); larger frames are preprocessed
    into amplitudes by ``prepare`` (:func:`detector_preprocessor`: its output grid is ``size``; it keeps the
    choices made on the first frame, :meth:`Preprocessor.applied_config`). A frame that cannot be
    reconstructed (NaN/Inf, negative, empty,
    fully masked, undersampled, ...: :func:`cdinn.model.validation.frame_reasons` and the detector
    preprocessing) is left out with its reason in ``rejected``; a file that cannot be read, or frames of a size
    that fits neither, raise CdinnError. A single 2-D array counts as one frame."""
    block = block or BLOCK_FRAMES
    items: list[Frame] = []
    done = 0
    source = FileSource(spec, channel)
    source.wanted_rows = prepare.window_rows  # detector frames: the crop window's rows alone, once it is known
    for item in source:
        if isinstance(item, Rejected):
            raise CdinnError(item.reason)
        items.append(item)
        if len(items) == block:
            yield block_patterns(items, size, prepare, done)
            done += len(items)
            items = []
    if items or not done:
        if not items:
            raise CdinnError(f"{spec}: no frames")
        yield block_patterns(items, size, prepare, done)
        done += len(items)
    extra = prepare.mask
    if extra is not None and extra.ndim == 3 and len(extra) != done:
        raise CdinnError(f"mask has {len(extra)} frames; the file has {done}")


def block_patterns(items: list[Frame], size: int, prepare: Preprocessor, offset: int) -> Patterns:
    """The Patterns of consecutive frames ``items``, the first of which is frame ``offset`` (its position, from 0)
    of the input, through ``prepare`` (its settings' ``input_kind`` applies to frames on the grid too, and so
    does the user's mask it holds: (size, size), or one per input frame)."""
    extra = prepare.mask
    numbers = np.array([item.number for item in items], np.int64)
    sources = [item.source for item in items]
    arrivals = np.array([item.arrival for item in items], np.float64)
    small = next((item for item in items if min(item.shape) < size or item.data.ndim != 2), None)
    if small is not None:
        raise CdinnError(
            f"diffraction frames must have shape ({size}, {size}) or be larger detector frames; frame "
            f"{small.number} of {small.source} has shape {small.shape}"
        )
    if all(item.shape == (size, size) and item.band is None for item in items):
        prepare.on_grid()
        mask = stack_masks([item.mask for item in items], (size, size))
        if extra is not None:
            if extra.shape not in ((size, size), (extra.shape[0], size, size)) or (
                extra.ndim == 3 and len(extra) < offset + len(items)
            ):
                raise CdinnError(
                    f"mask has shape {extra.shape}; the frames need ({size}, {size}) or ({size}, {size}) per frame"
                )
            flags = extra if extra.ndim == 2 else extra[offset : offset + len(items)]
            flags = np.broadcast_to(flags, (len(items), size, size))
            mask = flags if mask is None else mask | flags
        stack = np.stack([item.data for item in items])
        kinds = {frame_kind(prepare.cfg.input_kind, item.kind, item.data.dtype) for item in items}
        if len(kinds) > 1:
            raise CdinnError(
                f"the frames of {items[0].source} ... {items[-1].source} hold both intensities and "
                "amplitudes; reconstruct them separately"
            )
        intensity = kinds == {"intensity"}
        missing = frame_mask(stack, mask)
        values = np.asarray(stack, np.float32)
        reasons = frame_reasons(
            values if missing is None else np.where(missing, np.float32(0), values), intensity, missing
        )
        keep = [i for i, reason in enumerate(reasons) if reason is None]
        return Patterns(
            stack[keep],
            None if mask is None else np.asarray(mask)[keep],
            None,
            numbers[keep],
            [sources[i] for i in keep],
            arrivals[keep],
            intensity,
            [(int(numbers[i]), f"frame {reason}", float(arrivals[i])) for i, reason in enumerate(reasons) if reason],
        )
    prepared = prepare.prepare_many(
        [item.data for item in items],
        [item.mask for item in items],
        [item.centre for item in items],
        [item.kind for item in items],
        [item.band for item in items],
    )
    keep = [i for i, result in enumerate(prepared) if isinstance(result, Prepared)]
    good = [result for result in prepared if isinstance(result, Prepared)]
    return Patterns(
        np.stack([p.amplitude for p in good]) if good else np.zeros((0, size, size), np.float32),
        stack_masks([p.mask for p in good], (size, size)),
        np.array([p.oversampling for p in good], np.float32),
        numbers[keep],
        [sources[i] for i in keep],
        arrivals[keep],
        False,
        [
            (int(item.number), str(result), item.arrival)
            for item, result in zip(items, prepared, strict=True)
            if isinstance(result, CdinnError)
        ],
    )


def invert_block(engine, loaded: Patterns, refine: Refine = 0, views: int = 1) -> dict[str, np.ndarray]:
    """Every per-frame output field (:data:`cdinn.host.output.PER_FRAME`) of a block's frames, reconstructed by
    ``engine`` through :func:`cdinn.inversion.invert` (``refine``, ``views``: see there; with a refinement the
    patterns must be 2x oversampled)."""
    size = loaded.patterns.shape[-1]
    if loaded.oversampling is None:  # frames stored on the grid: validated, their unmeasured pixels set to 0
        amplitudes, mask = validate_frames(loaded.patterns, size, loaded.intensity, loaded.mask)
    else:  # the detector preprocessing's amplitudes, checked there, as `cdinn run` gives them to the networks
        amplitudes, mask = loaded.patterns, loaded.mask  # (unmeasured blocks hold 0, as validated frames do)
    result = invert(engine, amplitudes, mask, refine, loaded.oversampling, views)
    return output.frame_fields(result, loaded.numbers, loaded.sources, loaded.arrivals, time.time())
