"""The runner's front end: a source's frames, validated and preprocessed, delivered in batches to the network.

Contract (:class:`FrontEnd`, every front end keeps it): ``start()`` opens the source and the preprocessing
(CdinnError, one line, if either cannot be opened: before any output exists) and begins reading; iterating
yields :class:`Batch` objects, in arrival order, until the source ended, ``stop`` was set or the front end
failed; ``finish()`` (after the iteration, or to abandon it) stops reading, releases the source and returns a
:class:`FrontResult`: the frames the source missed, whether it ended normally, the error that ended it (None)
and the preprocessing as applied. A batch holds at least one item the source delivered, at most ``max_batch``:
1 frame when the network is idle, more under load.

Two front ends:

* :class:`ThreadFront`: a reader thread decodes the source's frames into a bounded queue; a preprocessing
  thread takes what is queued and prepares it as array operations over the batch, one batch ahead of the
  network. Any source object (a plugin's, ``inproc://``).
* :class:`ProcessFront`: the same, in a process of its own (``--front process``, ``cdinn run``'s default):
  decoding and preprocessing are Python and numpy work that holds the interpreter lock, and beside the network
  in one process the three threads wait on each other for it (docs/runner.md measures both). The child
  (``python -c "...child_main()"``, so no user script is imported again) gets its settings as one JSON line on
  stdin and opens the source from its spec; batches come back through a pipe as a JSON header and the arrays'
  raw bytes (nothing is unpickled); memory stays flat (the child is at most one batch ahead). Should the child
  die (a decompressor's crash, a kill), the run ends as a failed source: what was written is kept. The child
  runs in a session of its own (a terminal's Ctrl-C is the runner's to handle) and stops when the runner says so
  on its stdin, or when that closes because the runner is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.batch_input import stack_masks
from cdinn.host.frames import Frame, Rejected, Source
from cdinn.host.preprocess import PREPROCESS_STEPS, PreprocessConfig, Preprocessor
from cdinn.host.sources import SCHEMES, SourceConfig, open_source
from cdinn.model.fit import pattern_centre

FrontKind = Literal["process", "thread"]
FRONTS: tuple[str, ...] = ("process", "thread")

_END = object()
_POLL_S = 0.1
QUEUED_BYTES = 128 * 2**20
"""The most decoded frame data (bytes) the reader holds queued for preprocessing, beside at most 8 batches of
items: 512 frames of 256x256 uint32, one or two of an EIGER2 16M (one frame always fits)."""
FRONT_STAGES = ("decode", *PREPROCESS_STEPS)
"""The front end's stages, each batch's seconds in them: ``decode`` (the source's own ``decode_seconds``:
reading, receiving, decompressing), then the preprocessing's ``validate`` and ``bin``
(:data:`cdinn.host.preprocess.PREPROCESS_STEPS`; ``bin`` also measures the patterns' centre offset)."""


class FrameInfo(NamedTuple):
    """What the output keeps of a frame besides its reconstruction: its ``number``, ``source`` and ``arrival``
    (UNIX s)."""

    number: int
    source: str
    arrival: float


class Batch(NamedTuple):
    """One batch for the network: ``received`` items the source delivered (frames and its own rejections),
    the first of them arrived at ``first_arrival`` (UNIX s); ``rejected`` (the source's rejections, then the
    frames preprocessing rejected, in order); the ``frames`` kept, their ``patterns`` (B, S, S) float32
    amplitudes, ``mask`` (B, S, S) bool (True = no measurement; None: all measured), ``oversampling`` (B,) and
    ``centre_offset`` (B, 2; :func:`cdinn.model.fit.pattern_centre`, measured here to spare the network's
    process); ``stage_seconds`` what the batch cost in each of :data:`FRONT_STAGES`. B may be 0."""

    received: int
    first_arrival: float
    rejected: list[Rejected]
    frames: list[FrameInfo]
    patterns: np.ndarray
    mask: np.ndarray | None
    oversampling: np.ndarray
    centre_offset: np.ndarray
    stage_seconds: dict[str, float]


@dataclass
class FrontResult:
    """How a front end ended: ``missed`` frames the source knows were sent but never delivered, whether the
    source ``ended_normally`` (its own end arrived), the ``error`` that ended it (one line; None) and the
    preprocessing ``applied`` (:meth:`cdinn.host.preprocess.Preprocessor.applied_config`, as a dict; None: as
    configured)."""

    missed: int = 0
    ended_normally: bool = False
    error: str | None = None
    applied: dict | None = None


class FrontEnd(Protocol):
    """See the module docstring for the contract. ``output_size``: the patterns' grid (32, or 64 for
    refinement); ``stop``: set it to end the source early (frames already delivered still come)."""

    output_size: int
    stop: threading.Event

    def start(self) -> None: ...

    def __iter__(self) -> Iterator[Batch]: ...

    def finish(self) -> FrontResult: ...


def _batch(items: list, preprocess: Preprocessor, output_size: int, decoded: float) -> Batch:
    """The queued ``items`` (frames and rejections) preprocessed into one :class:`Batch`; ``decoded``: the
    seconds the source took to decode them."""
    before = dict(preprocess.seconds)
    rejected = [item for item in items if isinstance(item, Rejected)]
    delivered = [item for item in items if not isinstance(item, Rejected)]
    prepared = preprocess.prepare_many(
        [f.data for f in delivered],
        [f.mask for f in delivered],
        [f.centre for f in delivered],
        [f.kind for f in delivered],
        [f.band for f in delivered],
    )
    started = time.perf_counter()  # stacking the batch and its centre offset: part of ``bin``
    frames, inputs, masks, sigmas = [], [], [], []
    for item, result in zip(delivered, prepared, strict=True):
        if isinstance(result, CdinnError):
            rejected.append(Rejected(item.number, str(result), item.source, item.arrival))
            continue
        frames.append(FrameInfo(int(item.number), str(item.source), float(item.arrival)))
        inputs.append(result.amplitude)
        masks.append(result.mask)
        sigmas.append(result.oversampling)
    shape = (len(frames), output_size, output_size)
    patterns = np.stack(inputs).astype(np.float32, copy=False) if inputs else np.zeros(shape, np.float32)
    mask = stack_masks(masks, shape[1:])
    centre = pattern_centre(patterns, mask).astype(np.float32) if frames else np.zeros((0, 2), np.float32)
    seconds = {"decode": decoded, **{k: v - before[k] for k, v in preprocess.seconds.items()}}
    seconds["bin"] += time.perf_counter() - started
    return Batch(
        len(items),
        min(item.arrival for item in items),
        rejected,
        frames,
        patterns,
        mask,
        np.asarray(sigmas, np.float32),
        centre,
        seconds,
    )


class ThreadFront:
    """The front end in this process's threads (module docstring): ``source`` (opened, with ``stop`` as its
    stop event), ``preprocessor``, batches of at most ``max_batch`` items; the reader holds at most 8 batches'
    items and ``queued_bytes`` of frame data queued (:data:`QUEUED_BYTES`), so memory stays flat whatever the
    detector's size."""

    def __init__(
        self,
        source: Source,
        preprocessor: Preprocessor,
        max_batch: int = 64,
        stop=None,
        queued_bytes: int = QUEUED_BYTES,
    ):
        if max_batch < 1:
            raise CdinnError(f"max batch must be >= 1, got {max_batch}")
        self.source, self.preprocess, self.max_batch = source, preprocessor, max_batch
        if hasattr(source, "wanted_rows"):  # a source that can decode part of a frame: the rows preprocessing uses
            source.wanted_rows = preprocessor.window_rows
        self.output_size = preprocessor.cfg.output_size
        self.stop = stop if stop is not None else getattr(source, "stop", None) or threading.Event()
        # bounded: a file source waits for the network instead of reading the whole file into memory; a live
        # source's own buffers (ZeroMQ's high-water mark, pvapy's monitor queue) hold what arrives meanwhile
        self._queue: queue.Queue = queue.Queue(maxsize=8 * max_batch)
        self._room = threading.Condition()  # the frame data queued, in bytes, within ``queued_bytes``
        self._queued_bytes, self._max_queued_bytes = 0, queued_bytes
        self._ready: queue.Queue = queue.Queue(maxsize=2)  # prepared batches: one in the network, one waiting
        self._abandoned = threading.Event()  # the consumer is gone: the threads stop waiting for room
        self._reader_error: BaseException | None = None
        self._prepare_error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._decoded = 0.0  # the source's decode_seconds the batches so far were charged

    def start(self) -> None:
        if self._threads:
            return
        self._threads = [
            threading.Thread(target=self._read, name="cdinn-reader", daemon=True),
            threading.Thread(target=self._prepare, name="cdinn-preprocess", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __iter__(self) -> Iterator[Batch]:
        self.start()
        while (batch := self._ready.get()) is not _END:
            yield batch

    def finish(self) -> FrontResult:
        self.stop.set()
        self._abandoned.set()
        for thread in reversed(self._threads):  # the source's generator ends (and counts what it held) first
            thread.join(timeout=30)
        self.source.close()
        reader_alive = bool(self._threads) and self._threads[0].is_alive()
        error = None
        if self._reader_error is not None:
            error = f"source failed: {self._reader_error}"
        elif self._prepare_error is not None:
            error = f"preprocessing failed: {self._prepare_error}"
        return FrontResult(
            missed=self.source.missed,
            ended_normally=self._reader_error is None and not reader_alive and self.source.ended_normally,
            error=error,
            applied=self.preprocess.applied_config().as_dict(),
        )

    def _put(self, into: queue.Queue, item) -> bool:
        """Queue one item, waiting while the queue is full; False once the consumer is gone."""
        while not self._abandoned.is_set():
            try:
                into.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self.source:
                if not self._wait_for_room(item) or not self._put(self._queue, item) or self.stop.is_set():
                    break
        except BaseException as exc:  # reported by finish() after the queue drains
            self._reader_error = exc
        finally:
            self._put(self._queue, _END)

    def _prepare(self) -> None:
        try:
            drained = False
            while not drained:
                items, drained = self._next_items()
                self._taken(items)
                if items:
                    decoded = getattr(self.source, "decode_seconds", 0.0)  # the reader's, up to these items
                    batch = _batch(items, self.preprocess, self.output_size, decoded - self._decoded)
                    self._decoded = decoded
                    if not self._put(self._ready, batch):
                        return
        except BaseException as exc:  # reported by finish()
            self._prepare_error = exc
        finally:
            self._put(self._ready, _END)

    def _wait_for_room(self, item) -> bool:
        """Count a frame's data as queued, first waiting while it would take the queue past its bytes (unless
        nothing is queued: one frame always fits); False once the consumer is gone."""
        nbytes = item.data.nbytes if isinstance(item, Frame) else 0
        with self._room:
            while self._queued_bytes and self._queued_bytes + nbytes > self._max_queued_bytes:
                if self._abandoned.is_set():
                    return False
                self._room.wait(_POLL_S)
            self._queued_bytes += nbytes
        return True

    def _taken(self, items: list) -> None:
        """The preprocessing took ``items`` off the queue: their bytes make room."""
        with self._room:
            self._queued_bytes -= sum(item.data.nbytes for item in items if isinstance(item, Frame))
            self._room.notify()

    def _next_items(self) -> tuple[list, bool]:
        """Up to max_batch items: block for the first, then take what is already queued; and whether the
        source's end came."""
        items: list = []
        while not items:
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return items, True
            items.append(item)
        while len(items) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                return items, True
            items.append(item)
        return items, False


# --- the process front end: the child's side, then the wire format, then the runner's side ---


def _stdin_line() -> bytes:
    """One line from stdin, read unbuffered (b"" when it closed): nothing read ahead, no lock held at exit."""
    line = b""
    while not line.endswith(b"\n") and (byte := os.read(0, 1)):
        line += byte
    return line


def _watch_runner(stop: threading.Event) -> None:
    """In the child: set ``stop`` when the runner says so (a line on stdin) or is gone (stdin closed)."""
    _stdin_line()
    stop.set()


def child_main() -> None:
    """The front-end process (``ProcessFront`` starts it): its settings, one JSON line, on stdin; messages to the
    runner on the pipe whose file descriptor is the first argument. Opens the source and the preprocessing,
    says so (or sends the one-line error), then sends every batch and the end."""
    settings = json.loads(_stdin_line())
    conn = Connection(int(sys.argv[1]), readable=False)
    stop = threading.Event()
    threading.Thread(target=_watch_runner, args=(stop,), daemon=True).start()
    try:
        source_cfg = SourceConfig(**settings["source"])
        pre: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["pre"].items()}
        pre_cfg = PreprocessConfig(**pre)
        front = ThreadFront(
            open_source(settings["spec"], source_cfg, stop), Preprocessor(pre_cfg), settings["max_batch"], stop
        )
    except Exception as exc:  # a bad spec, --dark or --mask: one line for the runner to raise
        _send(conn, {"kind": "error", "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
        return
    _send(conn, {"kind": "ready"})
    try:
        for batch in front:
            _send_batch(conn, batch, front.preprocess.applied_config().as_dict())
    except OSError:  # the runner is gone (a broken pipe): stop reading
        pass
    finally:
        result = front.finish()
    try:
        _send(conn, {"kind": "end", **result.__dict__})
    except OSError:
        pass


def _send(conn: Connection, header: dict, *arrays: np.ndarray) -> None:
    conn.send_bytes(json.dumps(header).encode())
    for array in arrays:
        conn.send_bytes(np.ascontiguousarray(array).tobytes())


def _send_batch(conn: Connection, batch: Batch, applied: dict) -> None:
    arrays = [batch.patterns, batch.oversampling, batch.centre_offset] + ([] if batch.mask is None else [batch.mask])
    header = {
        "kind": "batch",
        "received": batch.received,
        "first_arrival": batch.first_arrival,
        "rejected": [[int(r.number), str(r.reason), str(r.source), float(r.arrival)] for r in batch.rejected],
        "frames": [list(f) for f in batch.frames],
        "shape": list(batch.patterns.shape),
        "masked": batch.mask is not None,
        "stage_seconds": batch.stage_seconds,
        "applied": applied,
    }
    _send(conn, header, *arrays)


def _receive_batch(conn: Connection, header: dict) -> Batch:
    shape = tuple(header["shape"])
    patterns = np.frombuffer(conn.recv_bytes(), np.float32).reshape(shape)
    oversampling = np.frombuffer(conn.recv_bytes(), np.float32)
    centre = np.frombuffer(conn.recv_bytes(), np.float32).reshape(shape[0], 2)
    mask = np.frombuffer(conn.recv_bytes(), bool).reshape(shape) if header["masked"] else None
    return Batch(
        header["received"],
        header["first_arrival"],
        [Rejected(*r) for r in header["rejected"]],
        [FrameInfo(*f) for f in header["frames"]],
        patterns,
        mask,
        oversampling,
        centre,
        header["stage_seconds"],
    )


class ProcessFront:
    """The front end in a process of its own (module docstring): the source ``spec`` opened there with
    ``source_cfg``, preprocessed with ``pre_cfg``, batches of at most ``max_batch`` items; ``stop`` (this
    process's event, e.g. set by a signal handler) is passed on to the child. Sources only this process can open
    (``inproc://``, a scheme a plugin registered at run time) are refused: they need :class:`ThreadFront`."""

    def __init__(
        self,
        spec: str,
        source_cfg: SourceConfig,
        pre_cfg: PreprocessConfig,
        max_batch: int = 64,
        stop: threading.Event | None = None,
    ):
        if max_batch < 1:
            raise CdinnError(f"max batch must be >= 1, got {max_batch}")
        scheme = next((s for s in SCHEMES if spec.startswith(s)), None)
        if spec.startswith("inproc://") or (scheme and SCHEMES[scheme].__module__ != open_source.__module__):
            raise CdinnError(
                f"{spec} opens only in this process (inproc:// or a source a plugin registered at run time): "
                "use --front thread"
            )
        self.spec, self.source_cfg, self.pre_cfg, self.max_batch = spec, source_cfg, pre_cfg, max_batch
        self.output_size = pre_cfg.output_size
        self.stop = stop or threading.Event()
        self._conn: Connection | None = None
        self._process: subprocess.Popen | None = None
        self._result: FrontResult | None = None
        self._applied: dict | None = None  # the preprocessing as applied, as the last batch said

    def start(self) -> None:
        if self._process is not None:
            return
        receive, send = os.pipe()
        settings = {
            "spec": self.spec,
            "source": asdict(self.source_cfg),
            "pre": asdict(self.pre_cfg),
            "max_batch": self.max_batch,
        }
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from cdinn.host.front import child_main; child_main()", str(send)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(send,),
            start_new_session=True,  # a terminal's Ctrl-C is the runner's to handle
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        )
        os.close(send)
        self._conn = Connection(receive, writable=False)
        assert self._process.stdin is not None  # a pipe
        try:
            self._process.stdin.write(json.dumps(settings).encode() + b"\n")
            self._process.stdin.flush()
        except OSError:  # the child is gone already: said below, with its exit code
            pass
        header = self._next()
        if header is None:
            self.finish()
            raise CdinnError(f"the front-end process ended before opening {self.spec}{self._exit_text()}")
        if header["kind"] == "error":
            self.finish()
            raise CdinnError(header["message"])

    def _tell_stop(self) -> None:
        """Ask the child to stop reading (once)."""
        assert self._process is not None and self._process.stdin is not None  # start() made them
        if not self._process.stdin.closed:
            with contextlib.suppress(OSError):  # the child is gone
                self._process.stdin.write(b"stop\n")
            with contextlib.suppress(OSError):
                self._process.stdin.close()

    def __iter__(self) -> Iterator[Batch]:
        self.start()
        yield from self._batches()

    def _batches(self) -> Iterator[Batch]:
        """The child's batches until its end message (kept as the result) or its death."""
        assert self._conn is not None  # start() connected
        while (header := self._next()) is not None:
            if header["kind"] == "end":
                self._result = FrontResult(**{k: v for k, v in header.items() if k != "kind"})
                return
            self._applied = header["applied"]
            try:
                batch = _receive_batch(self._conn, header)
            except (EOFError, OSError):  # the child died in the middle of a batch: that batch is lost
                break
            yield batch
        self._result = self._died()

    def _next(self) -> dict | None:
        """The next message's header (None: the child is gone), passing ``stop`` on while waiting."""
        assert self._conn is not None and self._process is not None  # start() made them
        while True:
            if self.stop.is_set():
                self._tell_stop()
            if self._conn.poll(_POLL_S):
                break
            if self._process.poll() is not None and not self._conn.poll(0):
                return None
        try:
            return json.loads(self._conn.recv_bytes())
        except (EOFError, OSError):
            return None

    def _exit_text(self) -> str:
        assert self._process is not None  # start() made it
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return f" (exit code {code})"

    def finish(self) -> FrontResult:
        self.stop.set()
        if self._process is None:
            return FrontResult()
        self._tell_stop()
        if self._result is None and self._conn is not None:  # abandoned: drain to the end, frames discarded
            deadline = time.monotonic() + 30
            for _ in self._batches():
                if time.monotonic() > deadline:
                    break
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._conn is not None:
            self._conn.close()
        if self._result is None:
            self._result = self._died()
        return self._result

    def _died(self) -> FrontResult:
        return FrontResult(error=f"the front-end process ended unexpectedly{self._exit_text()}", applied=self._applied)


def open_front(
    kind: FrontKind,
    spec: str,
    source_cfg: SourceConfig,
    pre_cfg: PreprocessConfig,
    max_batch: int = 64,
    stop: threading.Event | None = None,
) -> FrontEnd:
    """The front end ``kind`` names for a source spec (not started)."""
    if kind == "process":
        return ProcessFront(spec, source_cfg, pre_cfg, max_batch, stop)
    if kind == "thread":
        stop = stop or threading.Event()
        return ThreadFront(open_source(spec, source_cfg, stop), Preprocessor(pre_cfg), max_batch, stop)
    raise CdinnError(f"front end must be one of {FRONTS}, got {kind!r}")
