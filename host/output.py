"""The one output schema of a reconstruction file: every writer (``cdinn run``'s incremental SWMR writer,
``cdinn reconstruct`` in one process or on Dask, ``cdinn merge``) creates, appends and describes its file
through this module, so a field added here appears in every output.

Layout (N = frames written, R = frames rejected, S = the networks' grid, 32, or 64 when refined):

* per frame (:data:`PER_FRAME`, each (N,) unless noted): ``amplitude`` (N, S, S) float32 in [0, 1];
  ``phase`` (N, S, S) float32 radians; ``frame_number`` int64; ``source`` UTF-8 (file:dataset or endpoint of
  the frame); ``fit`` float32 the fit error of the written object against its measured pattern
  (:mod:`cdinn.model.fit`); ``fit_before`` the network's own fit (equal to ``fit`` unless refined);
  ``iterations`` int32 ER/HIO iterations spent; ``refined`` bool; ``masked_fraction`` float32 the fraction
  of the pattern's pixels without a measurement; ``unconstrained`` float32 in [0, 1] how much of the object
  the measured pixels cannot see (:mod:`cdinn.model.constraint`: the largest fraction of an object mode within
  its support on unmeasured pixels; near 1, some of the result is unchecked by any measurement);
  ``oversampling`` float32 the object's oversampling on the networks' grid (:mod:`cdinn.model.sampling`);
  ``coherence_sigma`` float32 pixels and ``background`` float32 (fraction of the pattern's total per pixel):
  the experiment the fit assumed, fitted per frame;
  ``centre_offset`` (N, 2) float32 pixels of the networks' grid (rows, cols): how far the pattern's intensity
  centroid lies off the grid's centre pixel, the beam centre's error by convention
  (:func:`cdinn.model.fit.centre_offset`; times ``preprocess.binning``: detector pixels);
  ``arrival_time`` (read or received) and ``completion_time`` float64 UNIX seconds, ``latency`` float64 s;
* ``rejected/frame_number`` (R,) int64, ``rejected/reason`` (R,) UTF-8, ``rejected/arrival_time`` (R,) float64;
* root attributes (:data:`ROOT_ATTRS`): ``provenance`` (JSON: backend, network sha256s, library versions,
  network set, refinement, the command and its input), each ``*_sha256`` of it also as an attribute of its
  own, ``preprocess`` (JSON: the detector preprocessing settings), ``counts`` (JSON, :data:`COUNTS`:
  received = written + rejected + missed, and refined), ``complete`` (True only when the input ended normally
  and every frame received was accounted for), ``timing`` (JSON, the writer's own performance figures).

NeXus: the root is an NXroot whose ``default`` leads to ``/entry`` (NXentry) and ``/entry/reconstruction``
(NXdata, ``signal`` = amplitude, ``auxiliary_signals`` = phase and fit, ``axes`` = frame_number), which hold
hard links to the datasets above, so NeXus viewers (silx, h5web, NeXpy) plot the amplitude by default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike

from cdinn.cards import library_versions
from cdinn.errors import CdinnError
from cdinn.io import check_room
from cdinn.model.conventions import GRID


@dataclass(frozen=True)
class Field:
    """One per-frame dataset: its dtype, ``units`` (NeXus units attribute; "" dimensionless, None: not a
    quantity) and ``long_name``; ``image`` fields are (N, S, S), ``columns`` ones (N, columns), the others (N,)."""

    dtype: Any
    units: str | None
    long_name: str
    image: bool = False
    columns: int = 0  # > 0: (N, columns)

    def shape(self) -> tuple[int, ...]:
        """One frame's shape: (S, S) for images, (columns,) for vectors, () for scalars."""
        return (GRID, GRID) if self.image else (self.columns,) if self.columns else ()


PER_FRAME: dict[str, Field] = {
    "amplitude": Field(np.float32, "", "object amplitude (max 1)", image=True),
    "phase": Field(np.float32, "rad", "object phase", image=True),
    "frame_number": Field(np.int64, None, "frame number"),
    "source": Field(h5py.string_dtype(), None, "file:dataset or endpoint the frame came from"),
    "fit": Field(np.float32, "", "fit error chi^2 against the measured pattern"),
    "fit_before": Field(np.float32, "", "the network's own fit error (before refinement)"),
    "iterations": Field(np.int32, None, "ER/HIO iterations spent"),
    "refined": Field(np.bool_, None, "refined by ER/HIO"),
    "masked_fraction": Field(np.float32, "", "fraction of the pattern's pixels without a measurement"),
    "unconstrained": Field(
        np.float32, "", "largest fraction of an object mode within the support on unmeasured pixels (0-1)"
    ),
    "oversampling": Field(np.float32, "", "the object's oversampling on the networks' grid"),
    "coherence_sigma": Field(np.float32, "pixel", "fitted partial-coherence width"),
    "background": Field(np.float32, "", "fitted background, fraction of the pattern's total per pixel"),
    "centre_offset": Field(
        np.float32,
        "pixel",
        "offset (row, col) of the pattern's intensity centroid from the grid's centre",
        columns=2,
    ),
    "arrival_time": Field(np.float64, "s", "UNIX time the frame was received or read"),
    "completion_time": Field(np.float64, "s", "UNIX time its reconstruction was done"),
    "latency": Field(np.float64, "s", "completion_time - arrival_time"),
}
"""Every per-frame dataset, in order, with its dtype, units and name."""

REJECTED: dict[str, Any] = {"frame_number": np.int64, "arrival_time": np.float64, "reason": h5py.string_dtype()}
"""The datasets of the ``rejected`` group (one entry per input that was not reconstructed)."""

COUNTS = ("received", "written", "rejected", "missed", "refined")
"""The keys of the ``counts`` attribute."""

ROOT_ATTRS = ("NX_class", "default", "provenance", "preprocess", "counts", "complete", "timing")
"""The root attributes every output has (besides one ``*_sha256`` per network of the provenance)."""

NXDATA = "entry/reconstruction"
"""Where the NXdata group lives."""


def create(fh: h5py.File, compression: str | None = None) -> None:
    """Create the empty, growable datasets of an output (objects on the networks' (N, N) grid, refined or not),
    with their units and the NeXus structure. ``compression`` (e.g. "gzip") applies to the images: whole-file
    writers compress, the streaming writer does not."""
    for name, field in PER_FRAME.items():
        shape = field.shape()
        fh.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=field.dtype,
            chunks=(16, *shape) if field.image else (1024, *shape),
            compression=compression if field.image else None,
        )
        if field.units is not None:
            fh[name].attrs["units"] = field.units
        fh[name].attrs["long_name"] = field.long_name
    group = fh.create_group("rejected")
    for name, dtype in REJECTED.items():
        group.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(1024,), dtype=dtype)
    fh.attrs.update(NX_class="NXroot", default="entry")
    entry = fh.create_group("entry")
    entry.attrs.update(NX_class="NXentry", default="reconstruction")
    data = fh.create_group(NXDATA)
    data.attrs.update(
        NX_class="NXdata",
        signal="amplitude",
        auxiliary_signals=["phase", "fit"],
        axes=["frame_number", ".", "."],
        frame_number_indices=0,
    )
    for name in ("amplitude", "phase", "fit", "frame_number"):
        data[name] = fh[name]


def _extend(dset: h5py.Dataset, values: Any) -> None:
    """Append ``values`` along the first axis. Numbers go through HDF5's own calls (extent, selection, write):
    h5py's slicing took ~2.5x as long for the runner's small batches; text goes through h5py's conversion."""
    values = np.asarray(values)
    if dset.dtype.kind == "O":
        n = dset.shape[0]
        dset.resize(n + len(values), axis=0)
        dset[n:] = values.astype(object)
        return
    dsid = dset.id
    n, *rest = dsid.shape
    values = np.ascontiguousarray(np.broadcast_to(values, (len(values), *rest)), dtype=dset.dtype)
    dsid.set_extent((n + len(values), *rest))
    target = dsid.get_space()
    target.select_hyperslab((n, *[0] * len(rest)), (len(values), *rest))
    dsid.write(h5py.h5s.create_simple(values.shape), target, values)


def datasets(fh: h5py.File) -> dict[str, h5py.Dataset]:
    """The file's :data:`PER_FRAME` datasets by name (for a writer that appends many batches: looked up once)."""
    return {name: fh[name] for name in PER_FRAME}


def append(fh: h5py.File, fields: Mapping[str, Any], per_frame: Mapping[str, h5py.Dataset] | None = None) -> None:
    """Append one batch: ``fields`` holds every :data:`PER_FRAME` field, each with the same number of frames
    (``per_frame``: the file's :func:`datasets`, when the caller holds them)."""
    if set(fields) != set(PER_FRAME):
        raise ValueError(
            f"output fields differ from the schema: missing {sorted(set(PER_FRAME) - set(fields))}, "
            f"unknown {sorted(set(fields) - set(PER_FRAME))}"
        )
    lengths = {len(np.atleast_1d(v)) for v in fields.values()}
    if len(lengths) != 1:
        raise ValueError(f"output fields of different lengths: {sorted(lengths)}")
    check_room(fh.filename, sum(np.asarray(v).nbytes for v in fields.values()))
    for name in PER_FRAME:
        _extend(fh[name] if per_frame is None else per_frame[name], fields[name])


def frame_fields(
    record: Any, numbers: ArrayLike, sources: Sequence[str], arrivals: ArrayLike, completion: float
) -> dict[str, np.ndarray]:
    """Every :data:`PER_FRAME` field of a batch: a :class:`cdinn.inversion.Reconstruction` ``record`` of the
    frames ``numbers`` (read from ``sources`` at ``arrivals``, UNIX s), done at ``completion`` (UNIX s)."""
    arrival = np.asarray(arrivals, np.float64)
    return {
        **record.fields(),
        "frame_number": np.asarray(numbers, np.int64),
        "source": np.asarray(sources, object),
        "arrival_time": arrival,
        "completion_time": np.full(len(arrival), completion),
        "latency": completion - arrival,
    }


def truncate(fh: h5py.File, frames: int, rejected: int) -> None:
    """Cut every per-frame dataset back to ``frames`` rows and the ``rejected`` group to ``rejected`` (a batch a
    failed write left half appended)."""
    for name in PER_FRAME:
        fh[name].resize(frames, axis=0)
    for name in REJECTED:
        fh["rejected"][name].resize(rejected, axis=0)


def reject(fh: h5py.File, rejected: Sequence[tuple[int, str, float]]) -> None:
    """Append rejections, each (frame number, one-line reason, arrival time in UNIX s)."""
    if not rejected:
        return
    check_room(fh.filename, sum(len(r[1]) + 16 for r in rejected))
    group = fh["rejected"]
    _extend(group["frame_number"], np.array([r[0] for r in rejected], np.int64))
    _extend(group["reason"], np.array([r[1] for r in rejected], object))
    _extend(group["arrival_time"], np.array([r[2] for r in rejected], np.float64))


def check_written(fh: h5py.File) -> None:
    """CdinnError (naming the first rejection) when ``fh`` holds no reconstructed frame: a whole-file writer
    calls it before its file is published, so a run that achieved nothing leaves no output."""
    if len(fh["frame_number"]):
        return
    numbers, reasons = fh["rejected/frame_number"], fh["rejected/reason"]
    first = f" (frame {numbers[0]} {reasons.asstr()[0].removeprefix('frame ')})" if len(numbers) else ""
    raise CdinnError(f"no frame was reconstructed: all {len(numbers)} frames were rejected{first}")


def provenance(backend: Mapping[str, Any], **run: Any) -> dict:
    """The provenance record: the backend's (name, network sha256s, files, settings) and what the run was
    (``command``, ``source``, ``net``, ``refine``, ...); :func:`describe` adds the library versions."""
    return dict(backend, **run)


def describe(fh: h5py.File, provenance: Mapping[str, Any], preprocess: Mapping[str, Any]) -> None:
    """The root attributes known when an output is created, the library versions added to the provenance
    unless it has them (a merge keeps its inputs'); ``counts`` and ``complete`` are set by :func:`finish`
    (``complete`` False until then)."""
    fh.attrs["provenance"] = json.dumps({"versions": library_versions(), **provenance})
    fh.attrs["preprocess"] = json.dumps(preprocess)
    fh.attrs.update({k: v for k, v in provenance.items() if k.endswith("_sha256")})
    fh.attrs["complete"] = False
    fh.attrs["counts"] = json.dumps(dict.fromkeys(COUNTS, 0))
    fh.attrs["timing"] = json.dumps({})


def finish(
    fh: h5py.File,
    counts: Mapping[str, int],
    complete: bool,
    timing: Mapping[str, Any] | None = None,
    preprocess: Mapping[str, Any] | None = None,
) -> None:
    """The final ``counts`` (:data:`COUNTS`), whether the output is ``complete``, the writer's ``timing`` and,
    where given, the preprocessing as applied (choices made on the first frame, e.g. the binning, resolved)."""
    if set(counts) != set(COUNTS):
        raise ValueError(f"counts must have the keys {COUNTS}, got {sorted(counts)}")
    fh.attrs["counts"] = json.dumps({k: int(counts[k]) for k in COUNTS})
    fh.attrs["complete"] = bool(complete)
    fh.attrs["timing"] = json.dumps(dict(timing or {}))
    if preprocess is not None:
        fh.attrs["preprocess"] = json.dumps(dict(preprocess))


def _values(dset: h5py.Dataset) -> np.ndarray:
    """A dataset's values; strings decoded to ``str``."""
    return dset.asstr()[()] if h5py.check_string_dtype(dset.dtype) else dset[()]


def read(path: str) -> dict[str, Any]:
    """An output's per-frame fields, its ``rejected`` group (``"rejected"``: a dict) and its root attributes
    (``"attrs"``: JSON ones parsed); CdinnError if ``path`` is not a cdinn output."""
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as fh:
            lacking = [name for name in PER_FRAME if name not in fh]
            if lacking and "provenance" in fh.attrs and "amplitude" in fh:
                raise CdinnError(
                    f"{path}: written by an older cdinn (it lacks {', '.join(lacking)}); reconstruct its input again"
                )
            data: dict[str, Any] = {name: _values(fh[name]) for name in PER_FRAME}
            data["rejected"] = {name: _values(fh["rejected"][name]) for name in REJECTED}
            attrs = dict(fh.attrs)
    except (OSError, KeyError) as exc:
        raise CdinnError(f"{path}: not a cdinn output ({str(exc).splitlines()[0]})") from None
    for key in ("provenance", "preprocess", "counts", "timing"):
        if key in attrs:
            attrs[key] = json.loads(attrs[key])
    attrs["complete"] = bool(attrs.get("complete", False))
    data["attrs"] = attrs
    return data
