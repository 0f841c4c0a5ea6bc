"""File specs and NeXus defaults, and writing results atomically.

Input specs: ``frames.npy``; ``file.h5`` (the NeXus default plottable data, i.e. following the ``default``
attributes of the root and entry and the ``signal`` attribute of the NXdata group, else the dataset
``diffraction``); ``file.h5:/entry/data/data`` (an explicit dataset path). Frames are read by one reader,
:class:`cdinn.host.sources.FileSource` (:func:`cdinn.host.sources.read_stack` for a whole input at once).
Whole output files are written to a temporary file in the same folder and renamed into place. Every HDF5 output
keeps :data:`RESERVE_BYTES` of its file system in reserve (:class:`SpaceReserve`) until it is closed: when the
file system fills, HDF5 can no longer write the metadata it needs to close a file, and the process dies at exit;
with the reserve released at the first failed write, the writer shrinks, flushes and closes the file and says
what happened in one line.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4, LZ4, Blosc, Zstd ... with HDF5 for every h5py read)
import numpy as np

from cdinn.errors import CdinnError

HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".hdf", ".nx5")

RESERVE_BYTES = 32 << 20
"""Bytes an HDF5 output holds in reserve beside it while it is open (:class:`SpaceReserve`): enough for HDF5 to
flush its caches (the 1 MiB raw-data chunk cache of each dataset, the metadata) and close the file."""


class SpaceReserve:
    """``nbytes`` of disk allocated beside ``output`` in a file that has no name: created hidden
    (``.NAME.reserve``), unlinked at once and held open, so the file system keeps the space until :meth:`release`
    closes it (when a write fails or the output is closed) or the process ends, however it ends (a killed
    process leaves nothing behind). CdinnError when the file system lacks them, before the output exists (so an
    already full disk leaves no empty output behind)."""

    def __init__(self, output: str | os.PathLike, nbytes: int = RESERVE_BYTES):
        output = Path(output)
        hidden = output.with_name(f".{output.name}.reserve")
        fd = os.open(hidden, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        hidden.unlink()
        try:
            os.posix_fallocate(fd, 0, nbytes)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            free = shutil.disk_usage(output.parent).free
            raise CdinnError(
                f"not enough space for {output}: {free / 2**20:.1f} MiB free on its file system, an output needs "
                f"{nbytes / 2**20:.0f} MiB of headroom; nothing was written"
            ) from None
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the reserved space back (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_failure(exc: BaseException) -> str | None:
    """The one-line reason of a write stopped for want of room (:class:`NoRoom`) or that failed in the file
    system (HDF5's ``'No space left on device'``), or None when ``exc`` is neither."""
    if isinstance(exc, NoRoom):
        return str(exc)
    if not isinstance(exc, OSError | RuntimeError):
        return None
    found = re.search(r"error message = '([^']*)'", str(exc))  # HDF5's report of the failed system call
    if found:
        return found.group(1)
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return exc.strerror.splitlines()[0]
    return None


ROOM_MARGIN = 1 << 20
"""Bytes beyond a write's own that :func:`check_room` asks for (HDF5's metadata, chunk rounding)."""


class NoRoom(CdinnError):
    """A write :func:`check_room` stopped, with the ``free`` and ``needed`` bytes of the file system."""

    def __init__(self, free: int, needed: int):
        super().__init__(f"the file system is full ({free / 2**20:.1f} MiB free, {needed / 2**20:.1f} MiB needed)")


def check_room(path: str | os.PathLike, nbytes: int) -> None:
    """:class:`NoRoom` unless the file system of ``path`` has room for ``nbytes`` more (+ :data:`ROOM_MARGIN`):
    a writer stops cleanly before a write the file system would refuse (after which HDF5 cannot always flush)."""
    free = shutil.disk_usage(Path(path).parent).free
    if free < nbytes + ROOM_MARGIN:
        raise NoRoom(free, nbytes + ROOM_MARGIN)


def _publish(tmp: str | os.PathLike, path: Path) -> None:
    """Give a finished temporary file the permissions a normally created file would have (mkstemp makes
    it owner-only), then rename it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``'file.h5:/path/in/file'`` -> (Path('file.h5'), '/path/in/file'); no colon part -> (path, None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail.startswith("/"):
        return Path(head), tail
    return Path(spec), None


def check_output(output: str | os.PathLike, inputs: list[str] | tuple[str, ...] = ()) -> Path:
    """``output`` as a path a command may write, or CdinnError: not a dangling symbolic link, not a folder,
    and not (resolving to) one of the ``inputs`` (file specs: ``FILE`` or ``FILE:/dataset``), whose data a
    rename over them would destroy."""
    path = Path(output)
    if path.is_symlink() and not path.exists():
        raise CdinnError(
            f"output {path} is a symbolic link to nothing ({os.readlink(path)}); remove it or choose another name"
        )
    if path.is_dir():
        raise CdinnError(f"output {path} is a folder; give a file name")
    target = path.resolve()
    for spec in inputs:
        source = split_spec(spec)[0]
        if source.exists() and source.resolve() == target:
            raise CdinnError(f"output {path} is the input {spec}; choose another name (nothing was changed)")
    return path


def attr_text(node: h5py.HLObject, name: str) -> str | None:
    """An HDF5 attribute as text (bytes decoded), or None when absent."""
    value = node.attrs.get(name)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def nexus_default_dataset(fh: h5py.File) -> str | None:
    """Path (in ``fh``) of the NeXus default plottable signal, following ``default`` and ``signal``
    attributes. The path is built from the names followed, so a signal reached through an external link is
    named by its path in this file, not in the linked one."""
    node: h5py.Group = fh
    path = ""
    for _ in range(3):
        target = attr_text(node, "default")
        if target is None:
            break
        if target not in node or not isinstance(node[target], h5py.Group):
            return None
        node, path = node[target], f"{path}/{target}"
    signal = attr_text(node, "signal")
    if signal is None:
        return None
    return f"{path}/{signal}" if signal in node else None


@contextmanager
def atomic_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a temporary HDF5 file beside ``path``; on success it replaces ``path``, on error it is removed
    and whatever ``path`` held before is untouched. A write the file system refuses (disk full) becomes a
    one-line CdinnError (:class:`SpaceReserve`)."""
    path = check_output(path)
    if not path.parent.is_dir():
        raise CdinnError(f"output folder does not exist: {path.parent}")
    reserve = SpaceReserve(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        fh = h5py.File(tmp, "w")
        try:
            yield fh
            fh.flush()
        except BaseException:
            reserve.release()  # room for HDF5 to close the file it will not keep
            fh.close()
            raise
        fh.close()
        _publish(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = write_failure(exc)
        if reason is not None:
            raise CdinnError(f"writing {path} failed ({reason}); nothing was written") from None
        raise
    finally:
        reserve.release()


def write_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> None:
    """Write named arrays (and root attributes) to an HDF5 file atomically."""
    with atomic_hdf5(path) as fh:
        for name, value in arrays.items():
            fh.create_dataset(name, data=value, compression="gzip" if np.ndim(value) >= 2 else None)
        for key, value in (attrs or {}).items():
            fh.attrs[key] = value


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n")


def read_json(path: str | os.PathLike, what: str, missing_hint: str) -> dict:
    """Parse a JSON file, or raise one CdinnError line: ``missing_hint`` when absent, the parse error when
    corrupt. ``what`` names the file's role in messages (e.g. 'model card')."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CdinnError(f"{what} not found at {path}: {missing_hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CdinnError(f"{what} {path} is not valid JSON: {getattr(exc, 'msg', exc)}") from None


def read_yaml(path: str | os.PathLike, what: str) -> dict:
    """Parse a YAML file holding a mapping, or raise one CdinnError line naming ``what`` and the problem."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise CdinnError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise CdinnError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise CdinnError(f"{what} {path} must be a mapping")
    return raw
