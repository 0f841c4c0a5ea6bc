"""Incremental HDF5 output of a run, readable while it is written and after a crash.

The file is opened in single-writer/multiple-reader (SWMR) mode: datasets grow batch by batch and are
flushed after every batch, so a reader (or a restart after a crash) sees every completed frame; at most
the batch in flight is lost. Its layout, attributes and NeXus structure are the one output schema of
:mod:`cdinn.host.output`; ``counts`` and ``complete`` are final once the run has closed the file. When the
next batch would not fit on the file system (:func:`cdinn.io.check_room`), it is not written and a one-line
CdinnError stops the run; when the file system refuses a write anyway (another process filled it), the half
written batch is cut off and the file flushed. Either way the space kept in reserve
(:class:`cdinn.io.SpaceReserve`) is released, every frame written before stays, and :meth:`RunWriter.close`
still records the counts (``complete`` False).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from cdinn.errors import CdinnError
from cdinn.host import output
from cdinn.io import NoRoom, SpaceReserve, write_failure


class RunWriter:
    """Append reconstructions and rejections to ``path`` (which must not exist yet); ``provenance`` is
    :func:`cdinn.host.output.provenance`'s record, ``preprocess`` the preprocessing settings."""

    def __init__(self, path: str | os.PathLike, provenance: dict, preprocess: dict):
        self.path = Path(path)
        if self.path.exists():
            raise CdinnError(f"output file {self.path} already exists; choose another name (nothing was changed)")
        if not self.path.parent.is_dir():
            raise CdinnError(f"output folder does not exist: {self.path.parent}")
        self.written = 0
        self.rejected = 0
        self._reserve = SpaceReserve(self.path)
        try:
            fh = h5py.File(self.path, "w", libver="latest")
            output.create(fh)
            output.describe(fh, provenance, preprocess)
            fh.swmr_mode = True
            fh.flush()
        except BaseException:
            self._reserve.release()
            raise
        self._fh = fh
        self._datasets = output.datasets(fh)

    def write(self, record, frames: list, completion: float) -> None:
        """Append one batch of reconstructions (a :class:`cdinn.inversion.Reconstruction` of the ``frames``,
        the Frame objects, in order, done at ``completion``, UNIX s) and flush."""
        fields = output.frame_fields(
            record, [f.number for f in frames], [f.source for f in frames], [f.arrival for f in frames], completion
        )
        try:
            output.append(self._fh, fields, self._datasets)
            self._fh.flush()
        except (NoRoom, OSError, RuntimeError) as exc:
            self._failed(exc)
        self.written += len(frames)

    def reject(self, number: int, reason: str, arrival: float) -> None:
        """Record one rejected input and flush."""
        try:
            output.reject(self._fh, [(number, reason, arrival)])
            self._fh.flush()
        except (NoRoom, OSError, RuntimeError) as exc:
            self._failed(exc)
        self.rejected += 1

    def _failed(self, exc: Exception) -> None:
        """A write stopped for want of room (:func:`cdinn.io.check_room`) or refused by the file system: keep
        what was written before (see the module docstring)."""
        self._reserve.release()  # room to close the file
        reason = write_failure(exc)
        if reason is None:
            raise exc
        if not isinstance(exc, NoRoom):
            output.truncate(self._fh, self.written, self.rejected)
            self._fh.flush()
        raise CdinnError(
            f"writing {self.path} failed ({reason}): the {self.written} frames and {self.rejected} rejections "
            "written before are kept; the run stopped"
        ) from None

    def close(
        self, counts: dict, complete: bool = True, timing: dict | None = None, preprocess: dict | None = None
    ) -> None:
        """Close the stream, then record the final :data:`cdinn.host.output.COUNTS`, whether the run is
        complete, its timing and the preprocessing as applied (attributes cannot change while the file is in
        SWMR mode)."""
        if self._fh.id.valid:
            self._fh.close()
        self._reserve.release()
        with h5py.File(self.path, "a", libver="latest") as fh:
            output.finish(fh, counts, complete, timing, preprocess)
