"""Incremental HDF5 output of a run, readable while it is written and after a crash.

The file is opened in single-writer/multiple-reader (SWMR) mode: datasets grow batch by batch and are
flushed after every batch, so a reader (or a restart after a crash) sees every completed frame; at most
the batch in flight is lost. Its layout, attributes and NeXus structure are the one output schema of
:mod:`cdinn.host.output`; ``counts`` and ``complete`` are final once the run has closed the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from cdinn.errors import CdinnError
from cdinn.host import output
from cdinn.model.conventions import GRID


class RunWriter:
    """Append reconstructions and rejections to ``path`` (which must not exist yet); ``provenance`` is
    :func:`cdinn.host.output.provenance`'s record, ``preprocess`` the preprocessing settings."""

    def __init__(self, path: str | os.PathLike, provenance: dict, preprocess: dict, size: int = GRID):
        self.path = Path(path)
        if self.path.exists():
            raise CdinnError(f"output file {self.path} already exists; choose another name (nothing was changed)")
        if not self.path.parent.is_dir():
            raise CdinnError(f"output folder does not exist: {self.path.parent}")
        self.written = 0
        self.rejected = 0
        fh = h5py.File(self.path, "w", libver="latest")
        output.create(fh, size)
        output.describe(fh, provenance, preprocess)
        fh.swmr_mode = True
        self._fh = fh
        self._fh.flush()

    def write(self, record, frames: list, completion: float) -> None:
        """Append one batch of reconstructions (a :class:`cdinn.inversion.Reconstruction` of the ``frames``,
        the Frame objects, in order, done at ``completion``, UNIX s) and flush."""
        output.append(
            self._fh,
            output.frame_fields(
                record, [f.number for f in frames], [f.source for f in frames], [f.arrival for f in frames], completion
            ),
        )
        self.written += len(frames)
        self._fh.flush()

    def reject(self, number: int, reason: str, arrival: float) -> None:
        """Record one rejected input and flush."""
        output.reject(self._fh, [(number, reason, arrival)])
        self.rejected += 1
        self._fh.flush()

    def close(self, counts: dict, complete: bool = True, timing: dict | None = None) -> None:
        """Close the stream, then record the final :data:`cdinn.host.output.COUNTS`, whether the run is
        complete and its timing (attributes cannot change while the file is in SWMR mode)."""
        if self._fh.id.valid:
            self._fh.close()
        with h5py.File(self.path, "a", libver="latest") as fh:
            output.finish(fh, counts, complete, timing)
