"""Frame sources for the runner: ``.npy`` files, HDF5/NeXus datasets (one file or a glob), a watched
directory, and a live ZeroMQ stream.

ZeroMQ message format (one multipart message per frame, see ``cdinn stream-sim``):

* part 1: UTF-8 JSON header ``{"frame": <int>, "shape": [rows, cols], "dtype": "<numpy dtype str>"}``;
* part 2: the raw frame bytes, C order, ``rows * cols * itemsize`` long.

A header ``{"end": true}`` (single part) ends the stream for one consumer. Anything else (bad JSON, a
missing part, a size that does not match the header) becomes a :class:`~cdinn.host.frames.Rejected`.
Every source is an iterator; :meth:`close` releases what it holds. ``stop`` (a ``threading.Event``) ends
the live sources early.
"""

from __future__ import annotations

import glob
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.frames import Frame, Rejected
from cdinn.io import HDF5_SUFFIXES, read_frames, split_spec

Item = Frame | Rejected


def _frames_of(array: np.ndarray, source: str, first_number: int) -> Iterator[Item]:
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        yield Rejected(first_number, f"expected frames (N, rows, cols), got shape {array.shape}", source, time.time())
        return
    for i, frame in enumerate(array):
        yield Frame(first_number + i, frame, source, time.time())


def _read_spec(spec: str, first_number: int) -> Iterator[Item]:
    """The frames of one file spec, numbered from ``first_number``, or one Rejected if it is unreadable."""
    try:
        array = read_frames(spec)
    except CdinnError as exc:
        yield Rejected(first_number, str(exc), spec, time.time())
        return
    yield from _frames_of(array, spec, first_number)


class FileSource:
    """Frames from one or more files (``.npy`` or HDF5, a glob allowed), numbered consecutively."""

    def __init__(self, spec: str):
        path, dataset = split_spec(spec)
        files = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)]
        if not files:
            raise CdinnError(f"no input files match {path}")
        self.specs = [f"{f}:{dataset}" if dataset else f for f in files]

    def __iter__(self) -> Iterator[Item]:
        number = 0
        for spec in self.specs:
            items = list(_read_spec(spec, number))
            yield from items
            number += len(items)

    def close(self) -> None:
        pass


class DirectorySource:
    """Frames from files that appear in a folder (``*.npy`` and HDF5), oldest first, each read once.

    Files are picked up once their size has been stable for one poll (so half-written files are not read).
    Ends when ``stop`` is set or after ``idle_timeout`` seconds without a new file (None: never).
    """

    def __init__(self, folder: str, dataset: str | None = None, poll: float = 0.2,
                 idle_timeout: float | None = None, stop: threading.Event | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise CdinnError(f"watched folder does not exist: {folder}")
        self.dataset, self.poll, self.idle_timeout = dataset, poll, idle_timeout
        self.stop = stop or threading.Event()
        self._seen: set[str] = set()
        self._sizes: dict[str, int] = {}

    def _ready_files(self) -> list[Path]:
        ready = []
        candidates = [p for p in self.folder.iterdir() if p.suffix == ".npy" or p.suffix.lower() in HDF5_SUFFIXES]
        for p in sorted(candidates, key=lambda p: (p.stat().st_mtime, p.name)):
            if p.name in self._seen or p.name.startswith("."):
                continue
            size = p.stat().st_size
            if self._sizes.get(p.name) == size and size > 0:
                ready.append(p)
            self._sizes[p.name] = size
        return ready

    def __iter__(self) -> Iterator[Item]:
        number = 0
        last_new = time.monotonic()
        while not self.stop.is_set():
            files = self._ready_files()
            for path in files:
                self._seen.add(path.name)
                spec = f"{path}:{self.dataset}" if self.dataset and path.suffix != ".npy" else str(path)
                items = list(_read_spec(spec, number))
                yield from items
                number += len(items)
            if files:
                last_new = time.monotonic()
            elif self.idle_timeout is not None and time.monotonic() - last_new > self.idle_timeout:
                return
            self.stop.wait(self.poll)

    def close(self) -> None:
        self.stop.set()


def decode_message(parts: list[bytes], source: str) -> Item | None:
    """One ZeroMQ multipart message -> Frame, Rejected, or None for the end-of-stream marker."""
    now = time.time()
    try:
        header = json.loads(parts[0].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejected(-1, f"corrupt message header ({exc})", source, now)
    if header.get("end"):
        return None
    number = header.get("frame", -1)
    try:
        number = int(number)
        shape = tuple(int(v) for v in header["shape"])
        dtype = np.dtype(header["dtype"])
        if len(parts) != 2:
            raise ValueError(f"expected 2 message parts, got {len(parts)}")
        if len(parts[1]) != int(np.prod(shape)) * dtype.itemsize:
            raise ValueError(f"payload of {len(parts[1])} bytes does not match shape {shape} and dtype {dtype}")
        data = np.frombuffer(parts[1], dtype=dtype).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        return Rejected(number if isinstance(number, int) else -1, f"corrupt message ({exc})", source, now)
    return Frame(number, data, source, now)


class ZmqSource:
    """Frames from a ZeroMQ PULL (load-balanced between consumers) or SUB (every consumer gets all) socket.

    Ends on the end-of-stream marker, when ``stop`` is set, or after ``idle_timeout`` seconds of silence.
    """

    def __init__(self, endpoint: str, mode: str = "pull", bind: bool = False, idle_timeout: float | None = None,
                 stop: threading.Event | None = None):
        import zmq

        if mode not in ("pull", "sub"):
            raise CdinnError(f"ZeroMQ mode must be 'pull' or 'sub', got {mode!r}")
        self.endpoint, self.idle_timeout = endpoint, idle_timeout
        self.stop = stop or threading.Event()
        self._ctx = zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.PULL if mode == "pull" else zmq.SUB)
        if mode == "sub":
            self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.RCVHWM, 100_000)
        try:
            (self._socket.bind if bind else self._socket.connect)(endpoint)
        except zmq.ZMQError as exc:
            raise CdinnError(f"cannot {'bind' if bind else 'connect'} ZeroMQ socket {endpoint}: {exc}") from None

    def __iter__(self) -> Iterator[Item]:
        import zmq

        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        last = time.monotonic()
        while not self.stop.is_set():
            if not poller.poll(100):
                if self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout:
                    return
                continue
            last = time.monotonic()
            item = decode_message(self._socket.recv_multipart(), self.endpoint)
            if item is None:
                return
            yield item

    def close(self) -> None:
        self.stop.set()
        self._socket.close(linger=0)


def open_source(spec: str, idle_timeout: float | None = None, stop: threading.Event | None = None,
                zmq_mode: str = "pull", zmq_bind: bool = False):
    """A source from a spec: ``tcp://``/``ipc://`` (ZeroMQ), an existing folder (watched), else files."""
    if spec.startswith(("tcp://", "ipc://", "inproc://")):
        return ZmqSource(spec, zmq_mode, zmq_bind, idle_timeout, stop)
    path, dataset = split_spec(spec)
    if path.is_dir():
        return DirectorySource(str(path), dataset, idle_timeout=idle_timeout, stop=stop)
    return FileSource(spec)
