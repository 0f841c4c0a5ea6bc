"""Archive reprocessing on Dask distributed: ``cdinn reconstruct IN OUT --cluster local:N|tcp://SCHEDULER:PORT``.

The client plans chunks of frames from the files' metadata only (NXmx masters and globs resolved as the
runner's file source does); each chunk is a task that a worker reads (block by block), preprocesses like
``cdinn reconstruct`` (frames on the 32x32 grid pass as they are, detector frames are masked, centred,
cropped and binned) and reconstructs with the network set loaded once per worker (onnxruntime, one
intra-op thread per worker slot). Results come back to the client, which writes them in frame order to one
file (atomically: the file appears whole or not at all), with a progress bar over the Dask futures.

Output equals the single-process command's for the same frames. Bad frames are rejected with their reasons
(``rejected/frame_number``, ``rejected/reason``). A worker lost mid-run is replaced by Dask, which recomputes
its tasks; chunks are written by their place in the plan, so no frame is lost or written twice.

``local:N`` starts a LocalCluster of N single-threaded worker processes (bound to loopback); any other
address is an existing scheduler (dask-jobqueue on Slurm/PBS, Kubernetes, ...).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdinn.errors import CdinnError
from cdinn.host.preprocess import PreprocessConfig
from cdinn.host.sources import npy_stack
from cdinn.inversion import RECORD_FIELDS
from cdinn.io import HDF5_SUFFIXES, split_spec
from cdinn.model.conventions import GRID, OVERSAMPLED_GRID

FIELDS = (*RECORD_FIELDS, "frame_number")


@dataclass(frozen=True)
class Chunk:
    """Frames ``start:stop`` of one dataset (``dataset`` None: a ``.npy`` file), the first numbered ``first``."""

    path: str
    dataset: str | None
    start: int
    stop: int
    first: int


def plan(spec: str, chunk: int) -> list[Chunk]:
    """The chunks of every dataset a file spec names, in frame order (metadata only, no frame data)."""
    import h5py
    import hdf5plugin  # noqa: F401

    from cdinn.host.hdf5_frames import dataset_paths, first_frame_number, open_dataset

    path, dataset = split_spec(spec)
    files = sorted(glob.glob(str(path))) if glob.has_magic(str(path)) else [str(path)]
    chunks, number = [], 0
    for name in files:
        if not Path(name).exists():
            raise CdinnError(f"input file not found: {name}")
        if name.endswith(".npy"):
            count = npy_stack(name).shape[0]
            chunks += [Chunk(name, None, s, min(s + chunk, count), number + s) for s in range(0, count, chunk)]
            number += count
            continue
        if Path(name).suffix.lower() not in HDF5_SUFFIXES and not dataset:
            raise CdinnError(f"{name}: unknown input format (use .npy or HDF5)")
        try:
            with h5py.File(name, "r") as fh:
                for inner in dataset_paths(fh, dataset, Path(name)):
                    dset = open_dataset(fh, inner, Path(name))
                    first = first_frame_number(dset, number)
                    count = len(dset)
                    chunks += [Chunk(name, inner, s, min(s + chunk, count), first + s) for s in range(0, count, chunk)]
                    number = first + count
        except OSError as exc:
            raise CdinnError(f"{name}: not a readable HDF5 file ({str(exc).splitlines()[0]})") from None
    if not chunks:
        raise CdinnError(f"{spec}: no frames")
    return chunks


def _read(chunk: Chunk) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float] | None]:
    """The chunk's frames, with the detector mask and beam centre its file records."""
    if chunk.dataset is None:
        return np.array(npy_stack(chunk.path)[chunk.start : chunk.stop]), None, None
    import h5py
    import hdf5plugin  # noqa: F401

    from cdinn.host.hdf5_frames import detector_info

    with h5py.File(chunk.path, "r") as fh:
        info = detector_info(fh)
        return fh[chunk.dataset][chunk.start : chunk.stop], info.pixel_mask, info.beam_centre


def process_chunk(chunk: Chunk, net: str, intensity: bool, preprocess: PreprocessConfig, refine: int | str = 0,
                  threads: int = 1, backend: str = "onnx") -> dict:
    """Read, preprocess and reconstruct one chunk (runs on a worker; ``preprocess.output_size`` is 64 when
    ``refine`` asks for refinement); returns the :data:`FIELDS` arrays of the good frames and ``rejected`` =
    [(frame number, reason)]."""
    from cdinn.host.batch_input import detector_preprocessor, stack_masks
    from cdinn.host.preprocess import Prepared
    from cdinn.inversion import cached_backend, invert, parse_refine
    from cdinn.model.validation import frame_mask, frame_reasons, validate_frames

    frames, mask, centre = _read(chunk)
    numbers = np.arange(chunk.first, chunk.first + len(frames))
    size = preprocess.output_size
    on_grid = frames.shape[1:] == (size, size)
    prepare = None if on_grid else detector_preprocessor(preprocess, size, intensity)
    good, patterns, masks, sigmas, rejected = [], [], [], [], []
    if prepare is None:  # frames on the grid: the rule every batch path keeps (frame_reasons)
        missing = frame_mask(frames, mask)
        values = np.asarray(frames, np.float32)
        reasons = frame_reasons(values if missing is None else np.where(missing, np.float32(0), values), intensity,
                                missing)
        results: list = [CdinnError(f"frame {reason}") if reason else
                         Prepared(frames[i], None if missing is None else missing[i], np.nan)
                         for i, reason in enumerate(reasons)]
    else:
        results = prepare.prepare_many(list(frames), [mask] * len(frames), [centre] * len(frames))
    for number, result in zip(numbers, results, strict=True):
        if isinstance(result, CdinnError):
            rejected.append((int(number), str(result)))
            continue
        patterns.append(result.amplitude)
        masks.append(result.mask)
        sigmas.append(result.oversampling)
        good.append(number)
    out: dict[str, Any] = {"rejected": rejected}
    if good:
        amplitudes, missing = validate_frames(np.stack(patterns), size, intensity and on_grid,
                                              stack_masks(masks, (size, size)))
        engine = cached_backend(backend, net, (("threads", threads),) if backend == "onnx" else ())
        result = invert(engine, amplitudes, missing, parse_refine(refine), None if on_grid else np.array(sigmas))
        out.update(result.fields(), frame_number=np.array(good, np.int64))
    return out


def _stop_http_servers(client, local) -> None:
    """Close the HTTP servers a LocalCluster's scheduler and workers open although the dashboard is off
    (dask/distributed#7207, #8136): only Dask's own comm ports stay open, all on 127.0.0.1."""
    local.scheduler.http_server.stop()
    client.run(lambda dask_worker: dask_worker.http_server.stop())


def _client(cluster: str):
    from dask.distributed import Client, LocalCluster

    if cluster.startswith("local:"):
        try:
            workers = int(cluster.removeprefix("local:"))
        except ValueError:
            raise CdinnError(f"--cluster local:N needs a number of workers, got {cluster!r}") from None
        if workers < 1:
            raise CdinnError("--cluster local:N needs N >= 1")
        local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                             dashboard_address=None)
        client = Client(local)
        _stop_http_servers(client, local)
        return client, local
    try:
        return Client(cluster, timeout=30), None
    except OSError as exc:
        raise CdinnError(f"cannot reach the Dask scheduler {cluster}: {exc}") from None


def reprocess(spec: str, out: str | Path, cluster: str, net: str = "default", intensity: bool = False,
              preprocess: PreprocessConfig | None = None, refine: int | str = 0, chunk: int = 256,
              progress: bool = True, attrs: dict | None = None, client=None, on_result=None,
              backend: str = "onnx") -> dict:
    """Reconstruct every frame of ``spec`` on a Dask cluster with ``backend``; write ``out`` in frame order
    (with the backend's provenance, as the single-process command records it); return counts.
    ``client``: an existing ``dask.distributed.Client`` to use (``cluster`` is then only recorded);
    ``on_result(i)`` is called as chunk ``i``'s result arrives."""
    import json

    import h5py
    from dask.distributed import as_completed
    from tqdm import tqdm

    from cdinn.inversion import cached_backend
    from cdinn.io import atomic_hdf5

    size = OVERSAMPLED_GRID if refine else GRID
    pre = PreprocessConfig(**dict((preprocess or PreprocessConfig()).as_dict(), output_size=size))
    chunks = plan(spec, chunk)
    provenance = cached_backend(backend, net).provenance()  # what the workers load, checked here first
    owned_client = client is None
    if owned_client:
        client, owned = _client(cluster)
    try:
        futures = {client.submit(process_chunk, c, net, intensity, pre, refine, 1, backend, pure=False, retries=2): i
                   for i, c in enumerate(chunks)}
        results: dict[int, dict] = {}
        with tqdm(total=sum(c.stop - c.start for c in chunks), unit="frame", desc="cdinn reconstruct",
                  disable=not progress) as bar:
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                bar.update(chunks[i].stop - chunks[i].start)
                if on_result is not None:
                    on_result(i)
    finally:
        if owned_client:
            client.close()
            if owned is not None:
                owned.close()
    ordered = [results[i] for i in range(len(chunks))]
    rejected = [r for part in ordered for r in part["rejected"]]
    written = [part for part in ordered if "amplitude" in part]
    with atomic_hdf5(out) as fh:
        for name in FIELDS:
            values = np.concatenate([p[name] for p in written]) if written else np.zeros((0,))
            fh.create_dataset(name, data=values, compression="gzip" if values.ndim >= 2 else None)
        group = fh.create_group("rejected")
        group.create_dataset("frame_number", data=np.array([n for n, _ in rejected], np.int64))
        group.create_dataset("reason", data=[r for _, r in rejected], dtype=h5py.string_dtype())
        fh.attrs.update(attrs or {})
        fh.attrs.update(source=spec, net=net, cluster=cluster, phase_units="radians", backend=backend,
                        provenance=json.dumps(provenance), **{k: v for k, v in provenance.items()
                                                              if k.endswith("sha256")})
    counts = {"frames": sum(c.stop - c.start for c in chunks), "written": sum(len(p["frame_number"]) for p in written),
              "rejected": len(rejected), "chunks": len(chunks)}
    return counts
