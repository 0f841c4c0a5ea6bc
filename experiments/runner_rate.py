"""The readout node's end-to-end rate beside the networks' own, side by side in one process on this machine.

256x256 uint32 detector frames (a simulated pattern spread over 8x8 pixel blocks, 4 chip-gap rows and a dead
pixel in the pixel mask), the default networks:

* network alone: ``cdinn.reconstruct`` on the same frames binned to 32x32, batch 64 (the inference the runner
  cannot beat), with the inference threads the runner uses and with the runtime's default;
* the runner from an NXmx master with bitshuffle-LZ4 data files, and from DECTRIS stream v2 and v1 over ZeroMQ
  on loopback (the messages encoded per the DECTRIS specifications by ``tests/host/dectris_messages.py``, sent
  from a process of its own).

Prints frames/s (first frame to last), each stage's microseconds per frame as the runner measured it (decode,
validate, bin in the front end; inference, fit, write in the runner's process) and the ratio to the network alone;
then each stage alone on one core (decode, preprocess, network, fit, write) and the end-to-end rate their sum
allows with the two cores scaling as they scale the network alone (the front: what limits the runner here).
With more than one backend named, each source goes through every backend with the process front end, one after
the other (side by side: network alone and runner); the thread front end runs the first backend.

    python experiments/runner_rate.py [FRAMES [BACKEND ...]]     # default 3000 frames per source, openvino
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "host"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import cdinn  # noqa: E402
from cdinn.host.backends import get_backend  # noqa: E402
from cdinn.host.front import open_front  # noqa: E402
from cdinn.host.preprocess import PreprocessConfig, Preprocessor  # noqa: E402
from cdinn.host.runner import RUNNER_BACKEND, RUNNER_INFERENCE_THREADS, STAGES, Runner, RunnerConfig  # noqa: E402
from cdinn.host.sources import SourceConfig  # noqa: E402
from cdinn.host.writer import RunWriter  # noqa: E402
from cdinn.model.simulate import broad, simulate  # noqa: E402
from conftest import network_alone_fps  # noqa: E402  (benchmarks/conftest.py: the benchmarks' measurement)

SIDE, K = 256, 8


def detector_frames(n: int) -> tuple[np.ndarray, np.ndarray]:
    patterns = simulate(64, seed=2024, config=broad(position="random"))
    intensity = patterns.diffraction.astype(np.float64) ** 2
    intensity *= 60_000 * K * K / intensity.max(axis=(1, 2), keepdims=True)
    big = np.round(np.repeat(np.repeat(intensity / (K * K), K, axis=1), K, axis=2)).astype(np.uint32)
    mask = np.zeros((SIDE, SIDE), np.uint32)
    mask[126:130, :] = 1
    mask[10, 20] = 1
    return np.resize(big, (n, SIDE, SIDE)), mask


def stages_alone(frames: np.ndarray, mask: np.ndarray, master: Path, backend: str) -> dict[str, float]:
    """Each stage of the runner alone on one core, microseconds a frame (best of 3): decoding the NXmx file's
    bitshuffle-LZ4 chunks (the rows of the crop window, as the runner does), preprocessing 64-frame batches, the
    network and the fit at batch 64, writing them."""
    from cdinn.host.hdf5_frames import Hdf5Frames
    from cdinn.inversion import complex_object
    from cdinn.model.fit import fit_experiment

    n = min(len(frames), 1000)
    engine = get_backend(backend, threads=RUNNER_INFERENCE_THREADS)
    prepare = Preprocessor(PreprocessConfig(input_kind="intensity"))
    batches = [list(frames[i : i + 64]) for i in range(0, n, 64)]
    prepared = [prepare.prepare_many(b, [mask != 0] * len(b)) for b in batches]
    amplitudes = np.stack([p.amplitude for p in prepared[0]])
    masks = np.stack([np.zeros((32, 32), bool) if p.mask is None else p.mask for p in prepared[0]])
    record = cdinn.inversion.network_pass(engine, amplitudes, masks, sigma=np.ones(len(amplitudes), np.float32))
    obj = complex_object(record.amplitude, record.phase)
    items = [type("F", (), {"number": i, "source": "f", "arrival": 0.0})() for i in range(len(amplitudes))]

    def best(work, frames_done: int) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return 1e6 * min(times) / frames_done

    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(Path(tmp) / "w.h5", engine.provenance(), {})
        costs = {
            "decode": best(
                lambda: sum(1 for _ in Hdf5Frames(master, wanted_rows=prepare.window_rows).iter(0)), len(frames)
            ),
            "preprocess": best(lambda: [prepare.prepare_many(b, [mask != 0] * len(b)) for b in batches], n),
            "network": best(lambda: [engine.infer(amplitudes, masks) for _ in range(4)], 4 * len(amplitudes)),
            "fit": best(
                lambda: [fit_experiment(obj, amplitudes, masks) for _ in range(4)],
                4 * len(amplitudes),
            ),
            "write": best(lambda: [writer.write(record, items, 0.0) for _ in range(4)], 4 * len(amplitudes)),
        }
        writer.close({"received": 0, "written": 0, "rejected": 0, "missed": 0, "refined": 0})
    return costs


def master_file(folder: Path, frames: np.ndarray, mask: np.ndarray) -> Path:
    import h5py
    import hdf5plugin

    with h5py.File(folder / "m_master.h5", "w") as fh:
        fh["entry/instrument/detector/pixel_mask"] = mask
        fh["entry/instrument/detector/beam_center_x"] = SIDE / 2
        fh["entry/instrument/detector/beam_center_y"] = SIDE / 2
        for i, start in enumerate(range(0, len(frames), 1000)):
            name = f"m_data_{i + 1:06d}.h5"
            with h5py.File(folder / name, "w") as dfh:
                d = dfh.create_dataset(
                    "entry/data/data",
                    data=frames[start : start + 1000],
                    chunks=(1, SIDE, SIDE),
                    **hdf5plugin.Bitshuffle(cname="lz4"),
                )
                d.attrs["image_nr_low"] = start + 1
            fh[f"entry/data/data_{i + 1:06d}"] = h5py.ExternalLink(name, "/entry/data/data")
    return folder / "m_master.h5"


def run(
    spec: str,
    out: Path,
    name: str = "onnx",
    front: str = RunnerConfig.front,
    threads: int = RUNNER_INFERENCE_THREADS,
    **source: object,
) -> dict:
    """``cdinn run`` on ``spec`` with the backend ``name`` on ``threads`` inference threads and the ``front``
    end."""
    backend = get_backend(name, threads=threads)
    writer = RunWriter(out, backend.provenance(), {})
    frames = open_front(front, spec, SourceConfig(**source), PreprocessConfig(input_kind="intensity"))  # type: ignore[arg-type]
    frames.start()
    return Runner(frames, backend, writer, progress=False).run()


def stream(fmt: str, frames: np.ndarray, mask: np.ndarray, out: Path, backend: str, front: str) -> dict:
    """The runner on a ``fmt`` stream of ``frames`` sent by the detector stand-in in a process of its own."""
    import socket

    from dectris_messages import push_process

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    sender = push_process(endpoint, fmt, frames[:64], mask, len(frames), (SIDE / 2, SIDE / 2), out.parent)
    summary = run(endpoint, out, backend, front, idle_timeout=30)
    sender.wait(timeout=60)
    if summary["received"] != len(frames):
        print(f"warning: {fmt} sent {len(frames)} frames, the runner received {summary['received']}")
    return summary


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    backends = sys.argv[2:] or [RUNNER_BACKEND]
    frames, mask = detector_frames(n)
    first = backends[0]
    alone = {
        threads: network_alone_fps(frames, first, threads, rounds=5) for threads in (RUNNER_INFERENCE_THREADS, None)
    }
    print(
        f"network alone, batch 64, {first}: {alone[RUNNER_INFERENCE_THREADS]:.0f} frames/s with "
        f"{RUNNER_INFERENCE_THREADS} thread, {alone[None]:.0f} with the runtime's default"
    )
    for other in backends[1:]:
        alone[other] = network_alone_fps(frames, other, RUNNER_INFERENCE_THREADS, rounds=5)
        print(f"network alone, batch 64, {other}: {alone[other]:.0f} frames/s, {RUNNER_INFERENCE_THREADS} thread")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        master = master_file(folder, frames, mask)
        results = {}
        runs = [(name, "process") for name in backends] + [(first, "thread")]  # per source, backends side by side
        for name, front in runs:
            results[f"NXmx bslz4 file, {name}, {front} front"] = run(str(master), folder / "f.h5", name, front)
            (folder / "f.h5").unlink()
        for fmt in ("dectris-v2", "dectris-v1"):
            for name, front in runs:
                label = f"DECTRIS stream {fmt[-2:]}, {name}, {front} front"
                results[label] = stream(fmt, frames, mask, folder / "s.h5", name, front)
                (folder / "s.h5").unlink()
    with tempfile.TemporaryDirectory() as tmp:
        costs = stages_alone(frames, mask, master_file(Path(tmp), frames, mask), first)
    total = sum(costs.values())
    scaling = alone[None] / alone[RUNNER_INFERENCE_THREADS]
    print(
        "each stage alone on one core (us/frame): "
        + ", ".join(f"{k} {v:.0f}" for k, v in costs.items())
        + f"; sum {total:.0f} -> {1e6 / total:.0f} frames/s on one core; both cores ran the network alone "
        f"{scaling:.2f}x one core's rate -> at most {scaling * 1e6 / total:.0f} frames/s end to end with that scaling"
    )
    best = max(alone.values())
    print(
        f"| source ({n} frames) | frames/s | runner / network alone | {', '.join(STAGES)} (us/frame) "
        "| received = written + rejected + missed |"
    )
    print("|---|---|---|---|---|")
    for name, s in results.items():
        stages = ", ".join(f"{v:.0f}" for v in s["stage_us_per_frame"].values())
        print(
            f"| {name} | {s['frames_per_s']:.0f} | {s['frames_per_s'] / best:.2f} | {stages} | {s['received']} = "
            f"{s['written']} + {s['rejected']} + {s['missed']} |"
        )


if __name__ == "__main__":
    main()
