"""Incremental HDF5 output of a run, readable while it is written and after a crash.

The file is opened in single-writer/multiple-reader (SWMR) mode: datasets grow batch by batch and are
flushed after every batch, so a reader (or a restart after a crash) sees every completed frame; at most
the batch in flight is lost. Layout (N = frames written, R = frames rejected):

* ``amplitude`` (N, 32, 32) float32 in [0, 1]; ``phase`` (N, 32, 32) float32 radians;
* ``frame_number`` (N,) int64; ``source`` (N,) UTF-8 strings (file, dataset or endpoint of each frame);
* ``fit`` (N,) float32: the fit error of the written object against its measured pattern
  (:mod:`cdinn.model.fit`); ``fit_before`` (N,) the network's own fit (equal to ``fit`` unless refined);
  ``iterations`` (N,) int32 ER/HIO iterations spent; ``refined`` (N,) bool; ``masked_fraction`` (N,)
  float32 the fraction of the pattern's pixels without a measurement; ``oversampling`` (N,) float32 the
  object's oversampling on the networks' grid (:mod:`cdinn.model.sampling`); ``coherence_sigma`` (N,)
  float32 pixels and ``background`` (N,) float32 (fraction of the pattern's total per pixel): the
  experiment the fit assumed, fitted per frame;
* ``arrival_time``, ``completion_time`` (N,) float64 UNIX seconds; ``latency`` (N,) float64 seconds;
* ``rejected/frame_number`` (R,) int64, ``rejected/reason`` (R,) UTF-8 strings, ``rejected/arrival_time``;
* root attributes: ``provenance`` (JSON: backend, model sha256s, versions), ``preprocess`` (JSON), and at
  close ``counts`` (JSON: received, written, rejected, refined) and ``complete`` (True only when the source
  ended normally and every received frame was accounted for).

NeXus: the root is an NXroot whose ``default`` leads to ``/entry`` (NXentry) and ``/entry/reconstruction``
(NXdata, ``signal`` = amplitude, ``auxiliary_signals`` = phase and fit, ``axes`` = frame_number), which hold
hard links to the datasets above, so NeXus viewers (silx, h5web, NeXpy) plot the amplitude by default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from cdinn.cards import library_versions
from cdinn.errors import CdinnError
from cdinn.model.conventions import GRID

FRAME_FIELDS = {"frame_number": np.int64, "source": h5py.string_dtype(), "arrival_time": np.float64,
                 "completion_time": np.float64, "latency": np.float64, "fit": np.float32, "fit_before": np.float32,
                 "iterations": np.int32, "refined": np.bool_, "masked_fraction": np.float32,
                 "oversampling": np.float32, "coherence_sigma": np.float32, "background": np.float32}
"""Every per-frame dataset besides ``amplitude`` and ``phase``, with its dtype."""
PER_FRAME = ("amplitude", "phase", *FRAME_FIELDS)
"""Every per-frame dataset of a run output."""


class RunWriter:
    """Append reconstructions and rejections to ``path`` (which must not exist yet)."""

    def __init__(self, path: str | os.PathLike, provenance: dict, preprocess: dict, size: int = GRID):
        self.path = Path(path)
        if self.path.exists():
            raise CdinnError(f"output file {self.path} already exists; choose another name (nothing was changed)")
        if not self.path.parent.is_dir():
            raise CdinnError(f"output folder does not exist: {self.path.parent}")
        self.written = 0
        self.rejected = 0
        fh = h5py.File(self.path, "w", libver="latest")
        images = dict(shape=(0, size, size), maxshape=(None, size, size), chunks=(16, size, size), dtype="float32")
        fh.create_dataset("amplitude", **images)
        fh.create_dataset("phase", **images).attrs["units"] = "radians"
        for name, dtype in FRAME_FIELDS.items():
            fh.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(1024,), dtype=dtype)
        group = fh.create_group("rejected")
        group.create_dataset("frame_number", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.int64)
        group.create_dataset("arrival_time", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=np.float64)
        group.create_dataset("reason", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=h5py.string_dtype())
        self.nexus(fh)
        fh.attrs["provenance"] = json.dumps(dict(provenance, versions=library_versions()))
        fh.attrs["preprocess"] = json.dumps(preprocess)
        fh.attrs["complete"] = False
        fh.swmr_mode = True
        self._fh = fh
        self._fh.flush()

    @staticmethod
    def nexus(fh: h5py.File) -> None:
        """The NXroot/NXentry/NXdata structure over the flat datasets (hard links) and their units."""
        fh.attrs.update(NX_class="NXroot", default="entry")
        entry = fh.create_group("entry")
        entry.attrs.update(NX_class="NXentry", default="reconstruction")
        data = entry.create_group("reconstruction")
        data.attrs.update(NX_class="NXdata", signal="amplitude", auxiliary_signals=["phase", "fit"],
                          axes=["frame_number", ".", "."], frame_number_indices=0)
        for name in ("amplitude", "phase", "fit", "frame_number"):
            data[name] = fh[name]
        fh["amplitude"].attrs.update(units="", long_name="object amplitude (max 1)")
        fh["phase"].attrs.update(units="rad", long_name="object phase")
        fh["fit"].attrs.update(units="", long_name="fit error chi^2 against the measured pattern")
        for name in ("arrival_time", "completion_time"):
            fh[name].attrs["units"] = "s"  # UNIX time
        fh["latency"].attrs["units"] = "s"

    @staticmethod
    def _append(dset: h5py.Dataset, values) -> None:
        n = dset.shape[0]
        dset.resize(n + len(values), axis=0)
        dset[n:] = values

    def write(self, record, frames: list, completion: float) -> None:
        """Append one batch of reconstructions (a :class:`cdinn.inversion.Reconstruction` of the ``frames``,
        the Frame objects, in order) and flush."""
        fh = self._fh
        for name, values in record.fields().items():
            self._append(fh[name], values)
        self._append(fh["frame_number"], [f.number for f in frames])
        self._append(fh["source"], [f.source for f in frames])
        self._append(fh["arrival_time"], [f.arrival for f in frames])
        self._append(fh["completion_time"], [completion] * len(frames))
        self._append(fh["latency"], [completion - f.arrival for f in frames])
        self.written += len(frames)
        fh.flush()

    def reject(self, number: int, reason: str, arrival: float) -> None:
        """Record one rejected input and flush."""
        group = self._fh["rejected"]
        self._append(group["frame_number"], [number])
        self._append(group["arrival_time"], [arrival])
        self._append(group["reason"], [reason])
        self.rejected += 1
        self._fh.flush()

    def close(self, counts: dict, complete: bool = True) -> None:
        """Close the stream, then record the final counts and whether the run is complete (attributes
        cannot change while the file is in SWMR mode)."""
        if self._fh.id.valid:
            self._fh.close()
        with h5py.File(self.path, "a", libver="latest") as fh:
            fh.attrs["complete"] = bool(complete)
            fh.attrs["counts"] = json.dumps(counts)
