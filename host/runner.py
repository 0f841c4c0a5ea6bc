"""The readout-node runner: frames from a source -> validation and preprocessing -> a backend, in adaptive
batches -> incremental HDF5 output, with live progress and clean shutdown.

Three stages overlap, each in its own thread, joined by bounded queues (memory stays flat): a reader pulls
frames from the source (decoding them) as fast as they come; a preprocessing thread takes whatever is queued
(at least one frame, at most ``max_batch``: batch 1 when idle, larger batches under load, so latency stays low
at low rates and throughput scales at high rates) and prepares the batch as array operations over it; the main
loop runs the network on one batch while the next is being prepared (numpy, the decompressors, onnxruntime and
HDF5 release the GIL), and writes. Bad frames are rejected
with a reason (written to the output and to stderr) and the run goes on. Every written frame carries its fit
error against the pattern it came from (:mod:`cdinn.model.fit`).

With a ``refiner`` (K iterations, or automatic refinement) the preprocessor delivers 2x oversampled patterns,
the network sees every other pixel, and the frames to refine (all with K; with ``auto`` those whose fit exceeds
the threshold, while those that fit well are written at once) go to the refinement worker threads (NN-seeded
ER/HIO), so the network's stream never waits for them.

Setting ``stop`` (SIGINT/SIGTERM in ``cdinn run``) ends the source; frames already received are still
processed (refinements in flight finish), frames the source still held are counted as missed, then the file
is closed. Invariant at the end: received == written + rejected + missed, where ``received`` counts every frame
the source delivered or reported as sent. The run is complete only when the source's own end arrived and
every frame delivered was written or rejected.

Stage timings (seconds, summed over the run; ``stage_seconds`` in the summary and the output's ``timing``):
``preprocess`` (validation, masks, centring, crop, binning), ``network`` (the backend, the fit),
``write`` (HDF5 and the publisher); the throughput is measured from the first frame's arrival to the last
frame's completion, so time spent waiting for the first frame does not count.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.backends.base import Backend
from cdinn.host.batch_input import stack_masks
from cdinn.host.frames import Rejected, Source
from cdinn.host.preprocess import Preprocessor
from cdinn.host.writer import RunWriter
from cdinn.inversion import Reconstruction, Refine, network_pass, refine_frames
from cdinn.model.refine import AutoRefineConfig
from cdinn.options import option

_END = object()


STAGES = ("preprocess", "network", "write")
RUNNER_INFERENCE_THREADS = 1
"""The runner's thread layout on a 2-core readout node: the network on one inference thread, while the reader
(decoding) and the preprocessing thread share the other core; measured faster than two inference threads
fighting the other stages for both cores (docs/runner.md)."""
RUNNER_BACKEND = "openvino"
"""The backend ``cdinn run`` uses unless told: on one thread and the runner's batches, OpenVINO's CPU plugin runs
the same graph 1.5x faster than onnxruntime, to the same numbers within 3e-6 (``experiments/runtimes.py``;
the API keeps onnxruntime, as fast on two threads and faster at batch 1: docs/runner.md)."""


class _Batch(NamedTuple):
    """A batch on its way from the preprocessing thread to the main loop: the queued ``items`` (frames and
    sources' rejections, in order), the ``delivered`` frames among them and what preprocessing made of each
    (a Prepared or the CdinnError rejecting it), and the preprocessing time (seconds)."""

    items: list
    delivered: list
    prepared: list
    seconds: float


@dataclass
class RunStats:
    """Counts, stage times (seconds) and latencies of a run; ``first``/``last``: ``time.time()`` of the
    first frame's arrival and the last written frame's completion (None before)."""

    received: int = 0
    written: int = 0
    rejected: int = 0
    refined: int = 0
    missed: int = 0
    batches: int = 0
    first: float | None = None
    last: float | None = None
    stage_seconds: dict = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    latencies: deque = field(default_factory=lambda: deque(maxlen=10_000))

    def counts(self) -> dict:
        """The output's ``counts`` (:data:`cdinn.host.output.COUNTS`)."""
        return {
            "received": self.received,
            "written": self.written,
            "rejected": self.rejected,
            "missed": self.missed,
            "refined": self.refined,
        }

    def timing(self) -> dict:
        """The output's ``timing``: batches and each stage's seconds."""
        return {"batches": self.batches, "stage_seconds": {k: round(v, 6) for k, v in self.stage_seconds.items()}}

    def summary(self) -> dict:
        """The counts, frames/s from the first arrival to the last completion, latency percentiles (ms) and
        each stage's time per written frame (``stage_us_per_frame``, microseconds)."""
        elapsed = max(self.last - self.first, 1e-9) if self.first is not None and self.last is not None else 0.0
        lat = np.asarray(self.latencies) * 1e3 if self.latencies else np.zeros(1)
        per_frame = {k: 1e6 * v / max(self.written, 1) for k, v in self.stage_seconds.items()}
        return dict(
            self.counts(),
            **self.timing(),
            frames_per_s=self.written / elapsed if elapsed else 0.0,
            latency_ms_p50=float(np.percentile(lat, 50)),
            latency_ms_p99=float(np.percentile(lat, 99)),
            seconds=elapsed,
            stage_us_per_frame=per_frame,
        )


@dataclass(frozen=True)
class RunnerConfig:
    """The runner's own settings (``cdinn run``'s options)."""

    max_batch: int = option(64, "largest adaptive batch (frames)")
    refine_workers: int = option(1, "refinement threads (with --refine K or auto)")


class Runner:
    """``refiner``: K > 0 iterations for every frame or the automatic refinement's settings (None: network
    only; :func:`cdinn.inversion.parse_refine`); ``refine_workers`` threads run it.
    ``publisher``: also serve every written frame (e.g. :class:`cdinn.host.pva.PvaPublisher`). ``missed``
    counts frames the source reports as sent but never delivered (part of received). ``views``: how many views of
    each pattern the networks see (:func:`cdinn.inversion.network_pass`)."""

    def __init__(
        self,
        source: Source,
        backend: Backend,
        writer: RunWriter,
        preprocessor: Preprocessor,
        max_batch: int = RunnerConfig.max_batch,
        stop: threading.Event | None = None,
        progress: bool = True,
        refiner: Refine | None = None,
        refine_workers: int = RunnerConfig.refine_workers,
        publisher=None,
        views: int = 1,
    ):
        if max_batch < 1:
            raise CdinnError(f"max batch must be >= 1, got {max_batch}")
        if refiner is not None and preprocessor.cfg.output_size != 64:
            raise CdinnError("automatic refinement needs 2x oversampled (64x64) patterns: preprocess to 64")
        self.refiner = refiner
        self.views = views
        self.publisher = publisher
        self._refine_pool = ThreadPoolExecutor(refine_workers, "cdinn-refine") if refiner else None
        self._pending: list[Future] = []
        self._write_lock = threading.Lock()
        self.source, self.backend, self.writer, self.preprocess = source, backend, writer, preprocessor
        self.max_batch = max_batch
        self.stop = stop or threading.Event()
        self.progress = progress
        self.stats = RunStats()
        # bounded: a file source waits for the network instead of reading the whole file into memory; a live
        # source's own buffers (ZeroMQ's high-water mark, pvapy's monitor queue) hold what arrives meanwhile
        self._queue: queue.Queue = queue.Queue(maxsize=8 * max_batch)
        self._ready: queue.Queue = queue.Queue(maxsize=2)  # prepared batches: one in the network, one waiting
        self._abandoned = threading.Event()  # the main loop failed: the reader stops waiting for room
        self._reader_error: BaseException | None = None
        self._prepare_error: BaseException | None = None
        self.source_ok = True  # after run(): False when the source failed or did not end normally
        self.complete = False  # after run(): the source ended normally and every frame was accounted for

    def _put(self, into: queue.Queue, item) -> bool:
        """Queue one item, waiting while the queue is full; False once the run was abandoned."""
        while not self._abandoned.is_set():
            try:
                into.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for item in self.source:
                if not self._put(self._queue, item) or self.stop.is_set():
                    break
        except BaseException as exc:  # surfaced in the main thread after the queue drains
            self._reader_error = exc
        finally:
            self._put(self._queue, _END)

    def _prepare(self) -> None:
        """Preprocessing thread: batches of queued items -> :class:`_Batch` objects for the main loop."""
        try:
            drained = False
            while not drained:
                items, drained = self._next_batch()
                started = time.perf_counter()
                delivered = [item for item in items if not isinstance(item, Rejected)]
                prepared = self.preprocess.prepare_many(
                    [f.data for f in delivered],
                    [f.mask for f in delivered],
                    [f.centre for f in delivered],
                    [f.kind for f in delivered],
                )
                if not self._put(self._ready, _Batch(items, delivered, prepared, time.perf_counter() - started)):
                    return
        except BaseException as exc:  # surfaced in the main thread
            self._prepare_error = exc
        finally:
            self._put(self._ready, _END)

    def _next_batch(self) -> tuple[list, bool]:
        """Up to max_batch items: block for the first, then take what is already queued."""
        items: list = []
        ended = False
        while not items:
            try:
                item = self._queue.get(timeout=0.1)
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
                ended = True
                break
            items.append(item)
        return items, ended

    def _reject(self, number: int, reason: str, arrival: float, source: str, bar) -> None:
        with self._write_lock:
            self.stats.rejected += 1
            self.writer.reject(number, reason, arrival)
        bar.write(f"cdinn: frame {number} from {source} rejected: {reason}", file=sys.stderr)

    def _process(self, batch: _Batch, bar) -> None:
        frames, inputs, masks, sigmas = [], [], [], []
        started = time.perf_counter()
        if self.stats.first is None and batch.items:
            self.stats.first = min(item.arrival for item in batch.items)
        self.stats.received += len(batch.items)
        self.stats.stage_seconds["preprocess"] += batch.seconds
        for item in batch.items:
            if isinstance(item, Rejected):
                self._reject(item.number, item.reason, item.arrival, item.source, bar)
        for item, prepared in zip(batch.delivered, batch.prepared, strict=True):
            if isinstance(prepared, CdinnError):
                self._reject(item.number, str(prepared), item.arrival, item.source, bar)
                continue
            inputs.append(prepared.amplitude)
            masks.append(prepared.mask)
            sigmas.append(prepared.oversampling)
            frames.append(item)
        if frames:
            patterns = np.stack(inputs)
            mask = stack_masks(masks, patterns.shape[1:])
            record = network_pass(self.backend, patterns, mask, self.refiner is not None, np.array(sigmas), self.views)
            self.stats.stage_seconds["network"] += time.perf_counter() - started
            self.stats.batches += 1
            bad = self._to_refine(record.fit)
            good = np.flatnonzero(~bad)
            if good.size:
                self._write(record.take(good), [frames[i] for i in good])
            if bad.any():
                pick = np.flatnonzero(bad)
                assert self._refine_pool is not None  # created with the refiner
                self._pending.append(
                    self._refine_pool.submit(
                        self._refine,
                        record.take(pick),
                        patterns[pick],
                        None if mask is None else mask[pick],
                        [frames[i] for i in pick],
                    )
                )

    def _write(self, record: Reconstruction, frames: list) -> None:
        with self._write_lock:
            started = time.perf_counter()
            done = time.time()
            self.writer.write(record, frames, done)
            if self.publisher is not None:
                self.publisher.publish([f.number for f in frames], record.amplitude, record.phase, record.fit)
            self.stats.stage_seconds["write"] += time.perf_counter() - started
            self.stats.last = done
            self.stats.written += len(frames)
            self.stats.refined += int(np.sum(record.refined))
            self.stats.latencies.extend(done - f.arrival for f in frames)

    def _to_refine(self, fit: np.ndarray) -> np.ndarray:
        """(B,) bool: the frames of a batch that go to refinement (all with K iterations; with ``auto`` those whose
        fit error exceeds the threshold; none without a refiner)."""
        if isinstance(self.refiner, AutoRefineConfig):
            return fit > self.refiner.threshold
        return np.full(len(fit), self.refiner is not None)

    def _refine(self, record: Reconstruction, patterns, mask, frames: list) -> None:
        """Refinement worker: refine one batch of badly fitting frames, then write them."""
        assert self.refiner is not None  # only submitted with a refiner
        self._write(refine_frames(record, patterns, mask, self.refiner), frames)

    def _finish_refinement(self) -> list[BaseException]:
        """Wait for every refinement in flight; return the errors they raised."""
        if self._refine_pool is None:
            return []
        errors = [error for f in self._pending if (error := f.exception()) is not None]
        self._refine_pool.shutdown(wait=True)
        return errors

    def run(self) -> dict:
        """Process until the source ends (or ``stop``); close the output; return the run summary."""
        from tqdm import tqdm

        reader = threading.Thread(target=self._read, name="cdinn-reader", daemon=True)
        preparer = threading.Thread(target=self._prepare, name="cdinn-preprocess", daemon=True)
        reader.start()
        preparer.start()
        bar = tqdm(unit="frame", desc="cdinn run", disable=not self.progress, file=sys.stderr, mininterval=0.5)
        drained = False
        try:
            while True:
                batch = self._ready.get()
                if batch is _END:
                    drained = self._prepare_error is None
                    break
                before = self.stats.received
                self._process(batch, bar)
                bar.update(self.stats.received - before)
                if self.progress and self.stats.latencies:
                    s = self.stats.summary()
                    bar.set_postfix(
                        fps=f"{s['frames_per_s']:.0f}",
                        p50_ms=f"{s['latency_ms_p50']:.2f}",
                        p99_ms=f"{s['latency_ms_p99']:.2f}",
                        rejected=self.stats.rejected,
                        refresh=False,
                    )
        finally:
            errors = self._finish_refinement()
            bar.close()
            self.stop.set()
            self._abandoned.set()
            preparer.join(timeout=30)
            reader.join(timeout=30)  # the source's generator ends (and counts what it still held) before closing
            self.source.close()
            self.source_ok = self._reader_error is None and not reader.is_alive() and self.source.ended_normally
            self.stats.missed = self.source.missed
            self.stats.received += self.stats.missed
            accounted = self.stats.received == self.stats.written + self.stats.rejected + self.stats.missed
            self.complete = drained and self.source_ok and not errors and accounted
            self.writer.close(
                self.stats.counts(),
                complete=self.complete,
                timing=self.stats.timing(),
                preprocess=self.preprocess.applied_config().as_dict(),
            )
        if errors:
            raise CdinnError(f"refinement failed: {errors[0]}")
        if self._reader_error is not None:
            raise CdinnError(f"source failed: {self._reader_error}")
        if self._prepare_error is not None:
            raise CdinnError(f"preprocessing failed: {self._prepare_error}")
        return self.stats.summary()
