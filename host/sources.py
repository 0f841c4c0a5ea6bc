"""Frame sources for the runner: ``.npy`` files, HDF5/NeXus datasets and NXmx masters (one file or a glob;
:mod:`cdinn.host.hdf5_frames`), a watched directory, and a live ZeroMQ stream. Files are read frame block by
frame block (``.npy`` memory-mapped), so memory does not grow with the file; each frame's arrival time is
stamped when it is read. A file source whose file could not be read (or whose data file is missing) keeps
the frames read so far and sets ``ended_normally = False``.

ZeroMQ: the DECTRIS stream v1 and v2 formats (:mod:`cdinn.host.dectris`) or cdinn's own, detected from the
first message (or named with ``format``). cdinn's own format (one multipart message per frame, see
``cdinn stream-sim``):

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
from cdinn.host.dectris import END, Stream1Decoder, Stream2Decoder, detect_format
from cdinn.host.frames import Frame, Rejected
from cdinn.host.hdf5_frames import Hdf5Frames
from cdinn.io import HDF5_SUFFIXES, split_spec

Item = Frame | Rejected


def _npy_frames(path: Path, first_number: int) -> Iterator[Item]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CdinnError(f"{path}: not a readable .npy file ({str(exc).splitlines()[0]})") from None
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise CdinnError(f"{path}: expected frames (N, rows, cols), got shape {array.shape}")
    for i in range(len(array)):
        yield Frame(first_number + i, np.array(array[i]), str(path), time.time())


class _SpecReader:
    """The frames of file specs one after another, numbered on from each other; remembers whether every
    file ended normally."""

    def __init__(self) -> None:
        self.ended_normally = True
        self.next_number = 0

    def frames(self, spec: str) -> Iterator[Item]:
        path, dataset = split_spec(spec)
        try:
            if not path.exists():
                raise CdinnError(f"input file not found: {path}")
            if path.suffix == ".npy":
                if dataset:
                    raise CdinnError(f"{path}: a .npy file has no dataset paths")
                items = _npy_frames(path, self.next_number)
            elif path.suffix.lower() in HDF5_SUFFIXES or dataset:
                reader = Hdf5Frames(path, dataset)
                items = reader.iter(self.next_number)
            else:
                raise CdinnError(f"{path}: unknown input format (use .npy or HDF5: {', '.join(HDF5_SUFFIXES)})")
            for item in items:
                self.next_number = max(self.next_number, item.number + 1)
                yield item
            if path.suffix != ".npy" and not reader.ended_normally:
                self.ended_normally = False
        except CdinnError as exc:
            self.ended_normally = False
            yield Rejected(self.next_number, str(exc), spec, time.time())
            self.next_number += 1


class FileSource:
    """Frames from one or more files (``.npy`` or HDF5, a glob allowed), numbered consecutively (HDF5 data
    files that record ``image_nr_low``: by the detector's numbers)."""

    def __init__(self, spec: str):
        path, dataset = split_spec(spec)
        files = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)]
        if not files:
            raise CdinnError(f"no input files match {path}")
        self.specs = [f"{f}:{dataset}" if dataset else f for f in files]
        self._reader = _SpecReader()

    @property
    def ended_normally(self) -> bool:
        return self._reader.ended_normally

    def __iter__(self) -> Iterator[Item]:
        for spec in self.specs:
            yield from self._reader.frames(spec)

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
        reader = _SpecReader()  # a bad file in a watched folder is rejected; the watch goes on
        last_new = time.monotonic()
        while not self.stop.is_set():
            files = self._ready_files()
            for path in files:
                self._seen.add(path.name)
                spec = f"{path}:{self.dataset}" if self.dataset and path.suffix != ".npy" else str(path)
                yield from reader.frames(spec)
            if files:
                last_new = time.monotonic()
            elif self.idle_timeout is not None and time.monotonic() - last_new > self.idle_timeout:
                return
            self.stop.wait(self.poll)

    def close(self) -> None:
        self.stop.set()


def decode_message(parts: list[bytes], source: str) -> Item | str:
    """One cdinn-format ZeroMQ multipart message -> Frame, Rejected, or END for the end-of-stream marker."""
    now = time.time()
    try:
        header = json.loads(parts[0].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejected(-1, f"corrupt message header ({exc})", source, now)
    if header.get("end"):
        return END
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


STREAM_FORMATS = ("auto", "cdinn", "dectris-v1", "dectris-v2")


def _decoder(fmt: str, source: str):
    if fmt == "dectris-v1":
        return Stream1Decoder(source)
    if fmt == "dectris-v2":
        return Stream2Decoder(source)
    return lambda parts: decode_message(parts, source)


class ZmqSource:
    """Frames from a ZeroMQ PULL (load-balanced between consumers) or SUB (every consumer gets all) socket.

    ``format``: 'auto' (detected from the first message), 'cdinn', 'dectris-v1' or 'dectris-v2'. Ends on the
    end-of-stream / end-of-series message, when ``stop`` is set, or after ``idle_timeout`` seconds of silence.
    """

    def __init__(self, endpoint: str, mode: str = "pull", bind: bool = False, idle_timeout: float | None = None,
                 stop: threading.Event | None = None, stream_format: str = "auto"):
        import zmq

        if mode not in ("pull", "sub"):
            raise CdinnError(f"ZeroMQ mode must be 'pull' or 'sub', got {mode!r}")
        if stream_format not in STREAM_FORMATS:
            raise CdinnError(f"stream format must be one of {STREAM_FORMATS}, got {stream_format!r}")
        self.format = stream_format
        self.endpoint, self.idle_timeout = endpoint, idle_timeout
        self.stop = stop or threading.Event()
        self._ctx: zmq.Context = zmq.Context.instance()
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
        decode = None
        while not self.stop.is_set():
            if not poller.poll(100):
                if self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout:
                    return
                continue
            last = time.monotonic()
            parts = self._socket.recv_multipart()
            if decode is None:
                if self.format == "auto":
                    self.format = detect_format(parts)
                decode = _decoder(self.format, self.endpoint)
            item = decode(parts)
            if item is END:
                return
            if item is not None:
                yield item

    def close(self) -> None:
        self.stop.set()
        self._socket.close(linger=0)


def open_source(spec: str, idle_timeout: float | None = None, stop: threading.Event | None = None,
                zmq_mode: str = "pull", zmq_bind: bool = False, stream_format: str = "auto"):
    """A source from a spec: ``pva://CHANNEL`` (EPICS pvAccess NTNDArray), ``tcp://``/``ipc://`` (ZeroMQ),
    an existing folder (watched), else files."""
    if spec.startswith("pva://"):
        from cdinn.host.pva import PvaSource

        return PvaSource(spec, idle_timeout, stop)
    if spec.startswith(("tcp://", "ipc://", "inproc://")):
        return ZmqSource(spec, zmq_mode, zmq_bind, idle_timeout, stop, stream_format)
    path, dataset = split_spec(spec)
    if path.is_dir():
        return DirectorySource(str(path), dataset, idle_timeout=idle_timeout, stop=stop)
    return FileSource(spec)
