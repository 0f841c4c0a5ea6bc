"""Frame sources for the runner: ``.npy`` files, HDF5/NeXus datasets and NXmx masters (one file or a glob;
:mod:`cdinn.host.hdf5_frames`), a watched directory, and a live ZeroMQ stream. Files are read frame block by
frame block (``.npy`` memory-mapped), so memory does not grow with the file; each frame's arrival time is
stamped when it is read. A file source whose file could not be read (or whose data file is missing) keeps
the frames read so far and sets ``ended_normally = False``.

Folders and globs are read in natural order (``scan_9.tif`` before ``scan_10.tif``), so an areaDetector
TIFF series (one ``.tif`` per frame, read with tifffile) comes in the order it was recorded.

ZeroMQ: the DECTRIS stream v1 and v2 formats (:mod:`cdinn.host.dectris`) or cdinn's own
(:mod:`cdinn.host.decoding`), detected from the first message (or named with ``format``); a decoder per
format, found by name in :data:`DECODERS`. Every source keeps the :class:`~cdinn.host.frames.Source`
contract; ``stop`` (a ``threading.Event``) ends the live sources early.
"""

from __future__ import annotations

import glob
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.decoding import END, MAX_FRAME_BYTES, CdinnDecoder, SeriesDecoder
from cdinn.host.dectris import Stream1Decoder, Stream2Decoder, detect_format
from cdinn.host.frames import Frame, Rejected, Source, WantedRows
from cdinn.host.hdf5_frames import Hdf5Frames
from cdinn.io import HDF5_SUFFIXES, split_spec
from cdinn.options import option

TIFF_SUFFIXES = (".tif", ".tiff")
FRAME_SUFFIXES = (".npy", *HDF5_SUFFIXES, *TIFF_SUFFIXES)

Item = Frame | Rejected


def npy_stack(path: str | Path) -> np.ndarray:
    """The frames of a ``.npy`` file as a memory-mapped (N, rows, cols) array of numbers (a single 2-D frame is
    one frame); CdinnError for anything else (never unpickled)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CdinnError(f"{path}: not a readable .npy file of numbers ({str(exc).splitlines()[0]})") from None
    if array.dtype.kind not in "buif":  # booleans for masks; frames are checked for numbers where they are used
        raise CdinnError(f"{path}: frames must be real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise CdinnError(f"{path}: expected frames (N, rows, cols), got shape {array.shape}")
    return array


def _npy_frames(path: Path, first_number: int) -> Iterator[Item]:
    array = npy_stack(path)
    for i in range(len(array)):
        yield Frame(first_number + i, np.array(array[i]), str(path), time.time())


def _tiff_frames(path: Path, first_number: int) -> Iterator[Item]:
    """The pages of a TIFF file (areaDetector NDFileTIFF writes one frame per file), one frame each."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise CdinnError(f"{path}: not a readable TIFF file ({str(exc).splitlines()[0]})") from None
    with tif:
        if not len(tif.pages):
            raise CdinnError(f"{path}: a TIFF file without a readable image")
        for i, page in enumerate(tif.pages):
            try:
                frame = page.asarray()
            except Exception as exc:  # noqa: BLE001 - tifffile and its codecs raise many types on a corrupt page
                raise CdinnError(f"{path}: page {i} cannot be read ({type(exc).__name__}: {exc})") from None
            if frame.ndim != 2:
                raise CdinnError(f"{path}: page {i} has shape {frame.shape}, not a 2-D frame")
            yield Frame(first_number + i, frame, str(path), time.time())


def natural_key(name: str) -> list:
    """Sort key that orders the numbers inside names by value (``scan_9`` before ``scan_10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def expand_files(path: Path) -> list[str]:
    """The files a path names, in natural order: a glob's matches, a folder's frame files (``.npy``, HDF5,
    TIFF; hidden ones skipped), or the path itself."""
    if glob.has_magic(str(path)):
        files = glob.glob(str(path))
    elif path.is_dir():
        files = [str(p) for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")]
        if not files:
            raise CdinnError(f"folder {path} holds no frame files ({', '.join(FRAME_SUFFIXES)})")
    else:
        return [str(path)]
    return sorted(files, key=natural_key)


class _SpecReader:
    """The frames of file specs one after another, numbered on from each other; remembers whether every
    file ended normally."""

    def __init__(self, channel: str | None = None) -> None:
        self.ended_normally = True
        self.next_number = 0
        self.channel = channel
        self.wanted_rows: WantedRows | None = None  # passed on to the HDF5 reader (Source's contract)
        self.decode_seconds = 0.0  # reading and decoding the files' frames

    def frames(self, spec: str) -> Iterator[Item]:
        path, dataset = split_spec(spec)
        reader = None
        try:
            if not path.exists():
                raise CdinnError(f"input file not found: {path}")
            if path.suffix == ".npy":
                if dataset:
                    raise CdinnError(f"{path}: a .npy file has no dataset paths")
                items = _npy_frames(path, self.next_number)
            elif path.suffix.lower() in TIFF_SUFFIXES:
                items = _tiff_frames(path, self.next_number)
            elif path.suffix.lower() in HDF5_SUFFIXES or dataset:
                reader = Hdf5Frames(path, dataset, self.channel, self.wanted_rows)
                items = reader.iter(self.next_number)
            else:
                raise CdinnError(f"{path}: unknown input format (use .npy, TIFF or HDF5: {', '.join(HDF5_SUFFIXES)})")
            while True:
                started = time.perf_counter()
                item = next(items, None)
                self.decode_seconds += time.perf_counter() - started
                if item is None:
                    break
                self.next_number = max(self.next_number, item.number + 1)
                yield item
            if reader is not None and not reader.ended_normally:
                self.ended_normally = False
        except CdinnError as exc:
            self.ended_normally = False
            yield Rejected(self.next_number, str(exc), spec, time.time())
            self.next_number += 1


class _ReadsSpecs:
    """What a source reading files through a :class:`_SpecReader` (``_reader``) reports and is told."""

    _reader: _SpecReader

    @property
    def decode_seconds(self) -> float:
        return self._reader.decode_seconds

    @property
    def wanted_rows(self) -> WantedRows | None:
        return self._reader.wanted_rows

    @wanted_rows.setter
    def wanted_rows(self, wanted: WantedRows | None) -> None:
        self._reader.wanted_rows = wanted


class FileSource(_ReadsSpecs):
    """Frames from one or more files (``.npy``, TIFF or HDF5; a glob or a folder allowed, read in natural
    order), numbered consecutively (HDF5 data files that record ``image_nr_low``: by the detector's numbers);
    ``channel``: of multi-channel HDF5 data (:func:`cdinn.host.hdf5_frames.frame_channel`). Ends normally when
    the last file ended normally and none failed."""

    missed = 0

    def __init__(self, spec: str, channel: str | None = None):
        path, dataset = split_spec(spec)
        files = expand_files(path)
        if not files:
            raise CdinnError(f"no input files match {path}")
        self.specs = [f"{f}:{dataset}" if dataset and not f.endswith((".npy", *TIFF_SUFFIXES)) else f for f in files]
        self._reader = _SpecReader(channel)

    @property
    def ended_normally(self) -> bool:
        return self._reader.ended_normally

    def __iter__(self) -> Iterator[Item]:
        for spec in self.specs:
            yield from self._reader.frames(spec)

    def close(self) -> None:
        pass


class DirectorySource(_ReadsSpecs):
    """Frames from files that appear in a folder (``*.npy`` and HDF5), oldest first, each read once.

    Files are picked up once their size has been stable for one poll (so half-written files are not read).
    Ends when ``stop`` is set or after ``idle_timeout`` seconds without a new file (None: never); a watched
    folder has no end of its own, so it never ``ended_normally``.
    """

    ended_normally = False
    missed = 0

    def __init__(
        self,
        folder: str,
        dataset: str | None = None,
        poll: float = 0.2,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
        channel: str | None = None,
    ):
        self.folder = Path(folder)
        self.channel = channel
        if not self.folder.is_dir():
            raise CdinnError(f"watched folder does not exist: {folder}")
        self.dataset, self.poll, self.idle_timeout = dataset, poll, idle_timeout
        self.stop = stop or threading.Event()
        self._seen: set[str] = set()
        self._sizes: dict[str, int] = {}
        self._reader = _SpecReader(channel)  # a bad file in a watched folder is rejected; the watch goes on

    def _ready_files(self) -> list[Path]:
        """New frame files whose size held over one poll, oldest first. Hidden files (a writer's temporary
        names) are not looked at; a file gone since the listing (renamed into place meanwhile) is skipped."""
        found = {}
        for p in self.folder.iterdir():
            if p.suffix.lower() not in FRAME_SUFFIXES or p.name.startswith(".") or p.name in self._seen:
                continue
            try:
                found[p] = p.stat()
            except FileNotFoundError:
                continue
        ready = []
        for p in sorted(found, key=lambda p: (found[p].st_mtime, natural_key(p.name))):
            size = found[p].st_size
            if self._sizes.get(p.name) == size and size > 0:
                ready.append(p)
            self._sizes[p.name] = size
        return ready

    def __iter__(self) -> Iterator[Item]:
        reader = self._reader
        last_new = time.monotonic()
        while not self.stop.is_set():
            files = self._ready_files()
            for path in files:
                self._seen.add(path.name)
                spec = f"{path}:{self.dataset}" if self.dataset and path.suffix.lower() in HDF5_SUFFIXES else str(path)
                yield from reader.frames(spec)
            if files:
                last_new = time.monotonic()
            elif self.idle_timeout is not None and time.monotonic() - last_new > self.idle_timeout:
                return
            self.stop.wait(self.poll)

    def close(self) -> None:
        self.stop.set()


STREAM_FORMATS = ("auto", "cdinn", "dectris-v1", "dectris-v2")
DECODERS: dict[str, type[SeriesDecoder]] = {
    "cdinn": CdinnDecoder,
    "dectris-v1": Stream1Decoder,
    "dectris-v2": Stream2Decoder,
}


class ZmqSource:
    """Frames from a ZeroMQ PULL (load-balanced between consumers) or SUB (every consumer gets all) socket.

    ``format``: 'auto' (detected from the first message), 'cdinn', 'dectris-v1' or 'dectris-v2';
    ``max_frame_bytes``: the largest frame a message may decode to; ``channel``: the threshold of
    multi-channel stream v2 images (default: the first). Ends normally on the end-of-stream / end-of-series
    message; otherwise when ``stop`` is set or after ``idle_timeout`` seconds of silence, and then the messages
    still buffered in the socket are drained and counted as ``missed``.
    """

    def __init__(
        self,
        endpoint: str,
        mode: str = "pull",
        bind: bool = False,
        idle_timeout: float | None = None,
        stop: threading.Event | None = None,
        stream_format: str = "auto",
        max_frame_bytes: int = MAX_FRAME_BYTES,
        channel: str | None = None,
    ):
        import zmq

        if mode not in ("pull", "sub"):
            raise CdinnError(f"ZeroMQ mode must be 'pull' or 'sub', got {mode!r}")
        if stream_format not in STREAM_FORMATS:
            raise CdinnError(f"stream format must be one of {STREAM_FORMATS}, got {stream_format!r}")
        self.format = stream_format
        self.endpoint, self.idle_timeout = endpoint, idle_timeout
        self.max_frame_bytes, self.channel = max_frame_bytes, channel
        self.stop = stop or threading.Event()
        self.ended_normally = False
        self.missed = 0
        self.decode_seconds = 0.0  # receiving and decoding messages (not the polls that wait for them)
        self.wanted_rows: WantedRows | None = None  # see Source; the DECTRIS decoders honour it
        self._ctx: zmq.Context = zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.PULL if mode == "pull" else zmq.SUB)
        if mode == "sub":
            self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.RCVHWM, 100_000)
        try:
            (self._socket.bind if bind else self._socket.connect)(endpoint)
        except zmq.ZMQError as exc:
            raise CdinnError(f"cannot {'bind' if bind else 'connect'} ZeroMQ socket {endpoint}: {exc}") from None

    def _decoder(self, parts: list[bytes]) -> SeriesDecoder:
        if self.format == "auto":
            self.format = detect_format(parts)
        decoder = DECODERS[self.format](self.endpoint, self.max_frame_bytes, self.channel)
        decoder.wanted_rows = self.wanted_rows
        return decoder

    def __iter__(self) -> Iterator[Item]:
        import zmq

        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        last = time.monotonic()
        decode: SeriesDecoder | None = None
        try:
            while not self.stop.is_set():
                if not poller.poll(100):
                    if self.idle_timeout is not None and time.monotonic() - last > self.idle_timeout:
                        return
                    continue
                last = time.monotonic()
                started = time.perf_counter()
                parts = self._socket.recv_multipart()
                decode = decode or self._decoder(parts)
                item = decode(parts)
                self.decode_seconds += time.perf_counter() - started
                if item is END:
                    self.ended_normally = True
                    return
                if item is not None:
                    yield item
        finally:
            if not self.ended_normally:
                self._drain(decode)

    def _drain(self, decode: SeriesDecoder | None) -> None:
        """Count the frames still buffered in the socket (decoded, so headers and end markers are not counted)
        as missed: the run stopped before they were read."""
        import zmq

        while not self._socket.closed and self._socket.poll(0):
            parts = self._socket.recv_multipart(zmq.NOBLOCK)
            decode = decode or self._decoder(parts)
            self.missed += isinstance(decode(parts), Frame | Rejected)

    def close(self) -> None:
        self.stop.set()
        self._socket.close(linger=0)


def read_stack(spec: str, channel: str | None = None) -> tuple[np.ndarray, str | None]:
    """Every frame of a file spec, read as ``cdinn run`` reads files (:class:`FileSource`: ``.npy``, TIFF, HDF5
    with its NeXus default or a dataset path, NXmx masters and their data files, globs; ``channel`` of
    multi-channel data), as one
    (N, rows, cols) array, and the kind the input declares (None: undeclared); CdinnError for an input that
    cannot be read, frames of different shapes or kinds, or no frame."""
    frames: list[np.ndarray] = []
    kinds: set[str | None] = set()
    for item in FileSource(spec, channel):
        if isinstance(item, Rejected):
            raise CdinnError(item.reason)
        if frames and item.data.shape != frames[0].shape:
            raise CdinnError(f"{spec}: frames of different shapes ({frames[0].shape} and {item.data.shape})")
        frames.append(item.data)
        kinds.add(item.kind)
    if not frames:
        raise CdinnError(f"{spec}: no frames")
    if len(kinds) > 1:
        raise CdinnError(f"{spec}: its files declare different kinds ({sorted(map(str, kinds))})")
    return np.stack(frames), kinds.pop()


StreamFormat = Literal["auto", "cdinn", "dectris-v1", "dectris-v2"]


@dataclass(frozen=True)
class SourceConfig:
    """How a source is opened (``cdinn run``'s source options)."""

    idle_timeout: float | None = option(None, "stop after this many seconds without frames (live sources)")
    zmq_mode: Literal["pull", "sub"] = option("pull", "ZeroMQ socket")
    zmq_bind: bool = option(False, "bind the ZeroMQ endpoint instead of connecting")
    stream_format: StreamFormat = option(
        "auto",
        "ZeroMQ message format: detected from the first message, or "
        "DECTRIS stream v1 (multipart JSON), stream v2 (CBOR), or cdinn's own "
        "(cdinn stream-sim)",
        flag="format",
    )
    channel: str | None = option(
        None,
        "the channel (threshold, difference mode) of multi-channel data: DECTRIS stream v2 images (default: the "
        "first) and NXmx files of the FileWriter's v2024.2 format, frames (N, channels, rows, cols) (default: "
        "their default_slice's)",
        metavar="NAME",
    )
    max_frame_mb: float = option(
        MAX_FRAME_BYTES / 1e6,
        "largest frame (MB, decoded) a stream message may claim; "
        "larger ones are rejected before anything is allocated (default: four 32-bit "
        "frames of a 16M Eiger, 290 MB; after a start message also at most 8 bytes a "
        "pixel of the image size it announces)",
    )

    def __post_init__(self) -> None:
        if not self.max_frame_mb > 0:
            raise CdinnError(f"--max-frame-mb must be > 0, got {self.max_frame_mb}")


Opener = Callable[[str, SourceConfig, threading.Event | None], Source]
"""Opens a source from its spec, the source options and the run's stop event."""


def _pva(spec: str, cfg: SourceConfig, stop: threading.Event | None) -> Source:
    from cdinn.host.pva import PvaSource

    return PvaSource(spec, cfg.idle_timeout, stop)


def _zmq(spec: str, cfg: SourceConfig, stop: threading.Event | None) -> Source:
    return ZmqSource(
        spec,
        cfg.zmq_mode,
        cfg.zmq_bind,
        cfg.idle_timeout,
        stop,
        cfg.stream_format,
        int(cfg.max_frame_mb * 1e6),
        cfg.channel,
    )


SCHEMES: dict[str, Opener] = {"pva://": _pva, "tcp://": _zmq, "ipc://": _zmq, "inproc://": _zmq}
"""Live sources by the scheme their spec starts with (:func:`register_source` adds one)."""


def register_source(scheme: str, opener: Opener) -> None:
    """Make specs starting with ``scheme`` (e.g. ``"myproto://"``) open through ``opener`` (a plugin's source,
    which must follow :class:`cdinn.host.frames.Source`'s contract)."""
    SCHEMES[scheme] = opener


def open_source(spec: str, config: SourceConfig | None = None, stop: threading.Event | None = None) -> Source:
    """A source from a spec: a registered scheme (:data:`SCHEMES`: ``pva://CHANNEL`` EPICS pvAccess NTNDArray,
    ``tcp://``/``ipc://``/``inproc://`` ZeroMQ), else an existing folder (watched), else files."""
    cfg = config or SourceConfig()
    scheme = next((s for s in SCHEMES if spec.startswith(s)), None)
    if scheme is not None:
        return SCHEMES[scheme](spec, cfg, stop)
    path, dataset = split_spec(spec)
    if path.is_dir():
        return DirectorySource(str(path), dataset, idle_timeout=cfg.idle_timeout, stop=stop, channel=cfg.channel)
    return FileSource(spec, cfg.channel)
