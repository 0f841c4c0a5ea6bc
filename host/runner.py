"""The readout-node runner: batches from a front end (a source's frames, validated and preprocessed:
:mod:`cdinn.host.front`) -> a backend -> incremental HDF5 output, with live progress and clean shutdown.

The front end reads and prepares batches (at least one frame, at most ``max_batch``: batch 1 when idle, larger
batches under load, so latency stays low at low rates and throughput scales at high rates) while the main loop
runs the network and the fit on the batch before, and writes. Bad frames are rejected with a reason (written to
the output and to stderr) and the run goes on. Every written frame carries its fit error against the pattern it
came from (:mod:`cdinn.model.fit`).

With a ``refiner`` (K iterations, or automatic refinement) the front end delivers 2x oversampled patterns,
the network sees every other pixel, and the frames to refine (all with K; with ``auto`` those whose fit exceeds
the threshold, while those that fit well are written at once) go to the refinement worker threads (NN-seeded
ER/HIO), so the network's stream never waits for them.

Setting the front end's ``stop`` (SIGINT/SIGTERM in ``cdinn run``) ends the source; frames already received are
still processed (refinements in flight finish), frames the source still held are counted as missed, then the
file is closed. Invariant at the end: received == written + rejected + missed, where ``received`` counts every
frame the source delivered or reported as sent. The run is complete only when the source's own end arrived and
every frame delivered was written or rejected.

Stage timings (seconds, summed over the run; ``stage_seconds`` in the summary and the output's ``timing``):
``decode`` (the source reading, receiving and decompressing frames), ``validate`` (checks, masks, sentinels,
dark and background), ``bin`` (centring, crop, beamstop, binning, the sampling check, the centre offset),
``inference`` (the backend), ``fit`` (the fit through the forward model, the unconstrained-mode figure),
``write`` (HDF5 and the publisher). The first three run in the front end, beside the others. The throughput is
measured from the first frame's arrival to the last frame's completion, so time spent waiting for the first
frame does not count.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.backends.base import Backend
from cdinn.host.front import FRONT_STAGES, Batch, FrameInfo, FrontEnd, FrontKind
from cdinn.host.writer import RunWriter
from cdinn.inversion import Reconstruction, Refine, network_pass, refine_frames
from cdinn.model.refine import AutoRefineConfig
from cdinn.options import option

STAGES = (*FRONT_STAGES, "inference", "fit", "write")
RUNNER_INFERENCE_THREADS = 1
"""The runner's thread layout on a 2-core readout node: the network on one inference thread, while the front
end (decoding and preprocessing) has the other core (docs/runner.md)."""
RUNNER_BACKEND = "openvino"
"""The backend ``cdinn run`` uses unless told: on one thread and the runner's batches, OpenVINO's CPU plugin runs
the same graph 1.5x faster than onnxruntime, to the same numbers within 3e-6 (``experiments/runtimes.py``;
the API keeps onnxruntime, as fast on two threads and faster at batch 1: docs/runner.md)."""


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
    front: FrontKind = option(
        "process",
        "where the source is read and preprocessed: a process of its own (the default: it does not wait on the "
        "network's process for Python's interpreter lock) or threads of the runner's process (for sources "
        "only this process can open: inproc://, a plugin registered at run time)",
    )


class Runner:
    """``front``: where the batches come from (:class:`cdinn.host.front.FrontEnd`; its ``stop`` ends the run
    early). ``refiner``: K > 0 iterations for every frame or the automatic refinement's settings (None: network
    only; :func:`cdinn.inversion.parse_refine`); ``refine_workers`` threads run it. ``publisher``: also serve
    every written frame (e.g. :class:`cdinn.host.pva.PvaPublisher`). ``views``: how many views of each pattern
    the networks see (:func:`cdinn.inversion.network_pass`)."""

    def __init__(
        self,
        front: FrontEnd,
        backend: Backend,
        writer: RunWriter,
        progress: bool = True,
        refiner: Refine | None = None,
        refine_workers: int = RunnerConfig.refine_workers,
        publisher=None,
        views: int = 1,
    ):
        if refiner is not None and front.output_size != 64:
            raise CdinnError("automatic refinement needs 2x oversampled (64x64) patterns: preprocess to 64")
        self.refiner = refiner
        self.views = views
        self.publisher = publisher
        self._refine_pool = ThreadPoolExecutor(refine_workers, "cdinn-refine") if refiner else None
        self._pending: list[Future] = []
        self._write_lock = threading.Lock()
        self.front, self.backend, self.writer = front, backend, writer
        self.progress = progress
        self.stats = RunStats()
        self.source_ok = True  # after run(): False when the source failed or did not end normally
        self.complete = False  # after run(): the source ended normally and every frame was accounted for

    @property
    def stop(self) -> threading.Event:
        """Set it to end the run early (the front end's stop)."""
        return self.front.stop

    def _reject(self, number: int, reason: str, arrival: float, source: str, bar) -> None:
        with self._write_lock:
            self.stats.rejected += 1
            self.writer.reject(number, reason, arrival)
        bar.write(f"cdinn: frame {number} from {source} rejected: {reason}", file=sys.stderr)

    def _process(self, batch: Batch, bar) -> None:
        if self.stats.first is None and batch.received:
            self.stats.first = batch.first_arrival
        self.stats.received += batch.received
        for stage, seconds in batch.stage_seconds.items():
            self.stats.stage_seconds[stage] += seconds
        for item in batch.rejected:
            self._reject(item.number, item.reason, item.arrival, item.source, bar)
        if not batch.frames:
            return
        patterns, mask, frames = batch.patterns, batch.mask, batch.frames
        oversampled = self.refiner is not None
        record = network_pass(
            self.backend,
            patterns,
            mask,
            oversampled,
            batch.oversampling,
            self.views,
            batch.centre_offset,
            self.stats.stage_seconds,
        )
        self.stats.batches += 1
        bad = self._to_refine(record.fit)
        good = np.flatnonzero(~bad)
        if good.size:
            started = time.perf_counter()
            ready = record.take(good).evaluated()  # the figure of the frames written now: part of the fit
            self.stats.stage_seconds["fit"] += time.perf_counter() - started
            self._write(ready, [frames[i] for i in good])
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

    def _write(self, record: Reconstruction, frames: list[FrameInfo]) -> None:
        with self._write_lock:
            started = time.perf_counter()
            done = time.time()
            self.writer.write(record, frames, done)
            if self.publisher is not None:
                numbers = [f.number for f in frames]
                self.publisher.publish(numbers, record.amplitude, record.phase, record.fit, record.unconstrained)
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

    def _refine(self, record: Reconstruction, patterns, mask, frames: list[FrameInfo]) -> None:
        """Refinement worker: refine one batch of badly fitting frames, then write them."""
        assert self.refiner is not None  # only submitted with a refiner
        self._write(refine_frames(record, patterns, mask, self.refiner).evaluated(), frames)

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

        bar = tqdm(unit="frame", desc="cdinn run", disable=not self.progress, file=sys.stderr, mininterval=0.5)
        drained = False
        try:
            for batch in self.front:
                self._process(batch, bar)
                bar.update(batch.received)
                if self.progress and self.stats.latencies:
                    s = self.stats.summary()
                    bar.set_postfix(
                        fps=f"{s['frames_per_s']:.0f}",
                        p50_ms=f"{s['latency_ms_p50']:.2f}",
                        p99_ms=f"{s['latency_ms_p99']:.2f}",
                        rejected=self.stats.rejected,
                        refresh=False,
                    )
            drained = True
        finally:
            errors = self._finish_refinement()
            bar.close()
            result = self.front.finish()
            self.source_ok = result.error is None and result.ended_normally
            self.stats.missed = result.missed
            self.stats.received += self.stats.missed
            accounted = self.stats.received == self.stats.written + self.stats.rejected + self.stats.missed
            self.complete = drained and self.source_ok and not errors and accounted
            self.writer.close(
                self.stats.counts(), complete=self.complete, timing=self.stats.timing(), preprocess=result.applied
            )
        if errors:
            raise CdinnError(f"refinement failed: {errors[0]}")
        if result.error is not None:
            raise CdinnError(result.error)
        return self.stats.summary()
