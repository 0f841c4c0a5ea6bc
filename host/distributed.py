"""Archive reprocessing on Dask distributed: ``cdinn reconstruct IN OUT --cluster local:N|tcp://SCHEDULER:PORT``.

The client plans chunks of frames from the files' metadata only (NXmx masters and globs resolved as the
runner's file source does); each chunk is a task that a worker reads, preprocesses and reconstructs as
``cdinn reconstruct`` does a block (:func:`cdinn.host.batch_input.invert_block`), with the network set loaded
once per worker (its inference threads sharing the machine's cores between the local workers: :func:`worker_threads`).
Results come back to the client, which writes them in frame order through the output schema
(:mod:`cdinn.host.output`) to one file (atomically: the file appears whole or not at all), with a progress bar
over the Dask futures.

Output equals the single-process command's for the same frames. Bad frames are rejected with their reasons
(``rejected/frame_number``, ``rejected/reason``). A worker lost mid-run is replaced by Dask, which recomputes
its tasks; chunks are written by their place in the plan, so no frame is lost or written twice.

``local:N`` starts a LocalCluster of N single-threaded worker processes (bound to loopback); ``local:1`` runs
its one worker in this process (threads, Dask's in-process transport): nothing to spawn or import again, so
one worker costs what the plain command does. Any other address is an existing scheduler (dask-jobqueue on
Slurm/PBS, Kubernetes, ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.preprocess import PreprocessConfig
from cdinn.host.sources import expand_files, npy_stack
from cdinn.io import HDF5_SUFFIXES, split_spec
from cdinn.model.conventions import GRID, OVERSAMPLED_GRID
from cdinn.options import option


@dataclass(frozen=True)
class ClusterConfig:
    """Where and in what pieces ``cdinn reconstruct --cluster`` reprocesses."""

    cluster: str | None = option(
        None,
        "reprocess on Dask distributed: a LocalCluster of N worker processes (local:1: one in-process worker), or an "
        "existing scheduler; frames are read, preprocessed and reconstructed on the workers "
        "in chunks, bad frames are rejected with reasons (default: one process, no Dask)",
        metavar="local:N|tcp://HOST:PORT",
    )
    chunk: int = option(256, "frames per Dask task (with --cluster)")


@dataclass(frozen=True)
class Chunk:
    """Frames ``start:stop`` of one dataset (``dataset`` None: a ``.npy`` file), the first numbered ``first``
    and at ``position`` (from 0) among all the frames of the input; ``channel`` (index, name) of multi-channel
    data (:func:`cdinn.host.hdf5_frames.frame_channel`), None for frames of one channel."""

    path: str
    dataset: str | None
    start: int
    stop: int
    first: int
    position: int
    channel: tuple[int, str] | None = None


def plan(spec: str, chunk: int, channel: str | None = None) -> list[Chunk]:
    """The chunks of every dataset a file spec names (``channel``: of multi-channel data), in frame order
    (metadata only, no frame data)."""
    import h5py
    import hdf5plugin  # noqa: F401

    from cdinn.host.hdf5_frames import dataset_paths, first_frame_number, frame_channel, open_dataset

    path, dataset = split_spec(spec)
    files = expand_files(path)
    chunks: list[Chunk] = []
    number = position = 0
    for name in files:
        if not Path(name).exists():
            raise CdinnError(f"input file not found: {name}")
        if name.endswith(".npy"):
            count = npy_stack(name).shape[0]
            chunks += [
                Chunk(name, None, s, min(s + chunk, count), number + s, position + s) for s in range(0, count, chunk)
            ]
            number += count
            position += count
            continue
        if Path(name).suffix.lower() not in HDF5_SUFFIXES and not dataset:
            raise CdinnError(f"{name}: unknown input format (use .npy or HDF5)")
        try:
            with h5py.File(name, "r") as fh:
                for inner in dataset_paths(fh, dataset, Path(name)):
                    dset = open_dataset(fh, inner, Path(name))
                    picked = frame_channel(dset, channel)
                    first = first_frame_number(dset, number)
                    count = len(dset)
                    chunks += [
                        Chunk(name, inner, s, min(s + chunk, count), first + s, position + s, picked)
                        for s in range(0, count, chunk)
                    ]
                    number = first + count
                    position += count
        except OSError as exc:
            raise CdinnError(f"{name}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    if not chunks:
        raise CdinnError(f"{spec}: no frames")
    return chunks


def _read(chunk: Chunk) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float] | None, str | None]:
    """The chunk's frames, with the detector mask and beam centre its file records and the kind its dataset
    declares (:func:`cdinn.host.hdf5_frames.declared_kind`)."""
    if chunk.dataset is None:
        return np.array(npy_stack(chunk.path)[chunk.start : chunk.stop]), None, None, None
    import h5py
    import hdf5plugin  # noqa: F401

    from cdinn.host.hdf5_frames import declared_kind, detector_info

    with h5py.File(chunk.path, "r") as fh:
        info = detector_info(fh, None if chunk.channel is None else chunk.channel[1])
        dset = fh[chunk.dataset]
        rows = slice(chunk.start, chunk.stop)
        frames = dset[rows] if chunk.channel is None else dset[rows, chunk.channel[0]]
        return frames, info.pixel_mask, info.beam_centre, declared_kind(dset)


def _frames(chunk: Chunk) -> list:
    """The chunk's frames as the file source gives them (:class:`cdinn.host.frames.Frame`)."""
    import time

    from cdinn.host.frames import Frame
    from cdinn.host.hdf5_frames import frame_source

    frames, mask, centre, kind = _read(chunk)
    label = chunk.path if chunk.dataset is None else frame_source(chunk.path, chunk.dataset, chunk.channel)
    now = time.time()
    return [Frame(chunk.first + i, frame, label, now, mask, centre, kind) for i, frame in enumerate(frames)]


def planned_preprocessing(chunks: list[Chunk], preprocess: PreprocessConfig) -> PreprocessConfig:
    """What every chunk applies: ``preprocess`` with ``binning='auto'`` resolved once, on the input's first frame
    (the first chunk's frames where that one is rejected), as one process resolves it (chunks choosing their own
    binning could bin one scan two ways). Unchanged when the binning is given, or the frames are already on the
    grid."""
    from cdinn.host.batch_input import block_patterns
    from cdinn.host.preprocess import Preprocessor

    if preprocess.binning != "auto" or preprocess.crop:
        return preprocess
    prepare = Preprocessor(preprocess)
    first = chunks[0]
    for part in (replace(first, stop=min(first.start + 1, first.stop)), first):
        block_patterns(_frames(part), preprocess.output_size, prepare, part.position)
        if prepare.binning is not None:
            break
    return prepare.applied_config()


def process_chunk(
    chunk: Chunk,
    net: str,
    preprocess: PreprocessConfig,
    refine: int | str = 0,
    backend: str = "onnx",
    options: tuple[tuple[str, Any], ...] = (),
    views: int = 1,
) -> dict:
    """Read, preprocess and reconstruct one chunk (runs on a worker; ``preprocess.output_size`` is 64 when
    ``refine`` asks for refinement; ``views``: :func:`cdinn.inversion.invert`'s) as ``cdinn reconstruct`` does a
    block; returns the :data:`cdinn.host.output.PER_FRAME` fields of the good frames (``"fields"``, None if there
    is none) and ``"rejected"`` = [(frame number, reason, arrival)]."""
    from cdinn.host.backends import cached_backend
    from cdinn.host.batch_input import block_patterns, detector_preprocessor, invert_block
    from cdinn.inversion import parse_refine

    size = preprocess.output_size
    loaded = block_patterns(_frames(chunk), size, detector_preprocessor(preprocess, size), chunk.position)
    out: dict[str, Any] = {"rejected": loaded.rejected, "fields": None}
    if len(loaded.numbers):
        engine = cached_backend(backend, net, options)
        out["fields"] = invert_block(engine, loaded, parse_refine(refine), views)
    return out


def _stop_http_servers(client, local) -> None:
    """Close the HTTP servers a LocalCluster's scheduler and workers open although the dashboard is off
    (dask/distributed#7207, #8136): only Dask's own comm ports stay open, all on 127.0.0.1."""
    local.scheduler.http_server.stop()
    client.run(lambda dask_worker: dask_worker.http_server.stop())


def local_workers(cluster: str) -> int | None:
    """N of ``local:N`` (CdinnError unless N >= 1), None for a scheduler's address."""
    if not cluster.startswith("local:"):
        return None
    try:
        workers = int(cluster.removeprefix("local:"))
    except ValueError:
        raise CdinnError(f"--cluster local:N needs a number of workers, got {cluster!r}") from None
    if workers < 1:
        raise CdinnError("--cluster local:N needs N >= 1")
    return workers


def worker_threads(cluster: str) -> int:
    """Inference threads per worker: the N workers of ``local:N`` share this machine's cores (one worker
    uses them all, as the plain command does); a worker slot of a remote scheduler gets one."""
    workers = local_workers(cluster)
    return 1 if workers is None else max(1, len(os.sched_getaffinity(0)) // workers)


def _client(cluster: str):
    from dask.distributed import Client, LocalCluster

    workers = local_workers(cluster)
    if workers is not None:
        where = {"host": "127.0.0.1"} if workers > 1 else {}  # one in-process worker: inproc://, no socket at all
        local = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=workers > 1, dashboard_address=None, **where
        )
        client = Client(local)
        _stop_http_servers(client, local)
        return client, local
    try:
        return Client(cluster, timeout=30), None
    except OSError as exc:
        raise CdinnError(f"cannot reach the Dask scheduler {cluster}: {exc}") from None


def reprocess(
    spec: str,
    out: str | Path,
    cluster: str,
    net: str = "default",
    preprocess: PreprocessConfig | None = None,
    refine: int | str = 0,
    chunk: int = ClusterConfig.chunk,
    progress: bool = True,
    run: dict | None = None,
    client=None,
    on_result=None,
    backend: str = "onnx",
    backend_options: dict | None = None,
    channel: str | None = None,
    views: int = 1,
) -> dict:
    """Reconstruct every frame of ``spec`` (``channel``: of multi-channel data; ``views``: how many views of each
    pattern the networks see, :func:`cdinn.inversion.invert`) on a Dask cluster with
    ``backend``; write ``out`` through the output schema (:mod:`cdinn.host.output`) in frame order, each chunk as
    soon as those before it are written; return counts. ``run``: more of the run to record in the provenance
    (e.g. the ``command``); ``backend_options``: the backend's (the CPU runtimes: :func:`worker_threads` by
    default); ``client``: an existing ``dask.distributed.Client`` to use (``cluster`` is then only recorded);
    ``on_result(i)`` is called as chunk ``i``'s result arrives."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    from cdinn.host import output
    from cdinn.host.backends import cached_backend, takes_threads
    from cdinn.host.batch_input import batch_config, batch_provenance
    from cdinn.io import atomic_hdf5

    size = OVERSAMPLED_GRID if refine else GRID
    chunks = plan(spec, chunk, channel)
    pre = planned_preprocessing(chunks, batch_config(preprocess, size))
    options = dict(backend_options or {})
    if takes_threads(backend):
        options.setdefault("threads", worker_threads(cluster))
    workers = tuple(sorted(options.items()))
    provenance = batch_provenance(  # the backend the workers load, checked here first
        cached_backend(backend, net, workers).provenance(), spec, net, refine, views, cluster=cluster, **(run or {})
    )
    owned_client = client is None
    if owned_client:
        client, owned = _client(cluster)
    counts = dict.fromkeys(output.COUNTS, 0)
    try:
        with atomic_hdf5(out) as fh:
            output.create(fh, compression="gzip")
            output.describe(fh, provenance, pre.as_dict())
            futures = {
                client.submit(process_chunk, c, net, pre, refine, backend, workers, views, pure=False, retries=2): i
                for i, c in enumerate(chunks)
            }
            pending: dict[int, dict] = {}
            done = 0
            with tqdm(
                total=sum(c.stop - c.start for c in chunks),
                unit="frame",
                desc="cdinn reconstruct",
                disable=not progress,
            ) as bar:
                for future in as_completed(futures):
                    i = futures[future]
                    pending[i] = future.result()
                    bar.update(chunks[i].stop - chunks[i].start)
                    if on_result is not None:
                        on_result(i)
                    while done in pending:  # in plan order: frame order, each chunk written once
                        _write_chunk(fh, pending.pop(done), counts)
                        done += 1
            output.check_written(fh)
            output.finish(fh, counts, complete=True)
    finally:
        if owned_client:
            client.close()
            if owned is not None:
                owned.close()
    return {
        "frames": counts["received"],
        "written": counts["written"],
        "rejected": counts["rejected"],
        "chunks": len(chunks),
    }


def _write_chunk(fh, result: dict, counts: dict) -> None:
    """Append one chunk's result to the output and add it to ``counts``."""
    from cdinn.host import output

    rejected = result["rejected"]
    output.reject(fh, rejected)
    fields = result["fields"]
    written = 0 if fields is None else len(fields["frame_number"])
    if fields is not None:
        output.append(fh, fields)
        counts["refined"] += int(fields["refined"].sum())
    counts["received"] += written + len(rejected)
    counts["written"] += written
    counts["rejected"] += len(rejected)
