"""The runner end to end: frames from a ZeroMQ PUSH socket on loopback to reconstructions in HDF5."""

import threading

import numpy as np

from cdinn.host.backends import get_backend
from cdinn.host.front import open_front
from cdinn.host.preprocess import PreprocessConfig
from cdinn.host.runner import Runner, RunnerConfig
from cdinn.host.sources import SourceConfig
from cdinn.host.stream_sim import stream
from cdinn.host.writer import RunWriter

FRAMES = 2000


def test_runner_zeromq_to_hdf5(benchmark, bench_patterns, tmp_path, free_tcp_endpoint):
    frames = np.resize((bench_patterns.diffraction.astype(np.float64) ** 2).astype(np.float32), (FRAMES, 32, 32))
    backend = get_backend("onnx", net="edge")
    counter = iter(range(1_000_000))

    def one_run():
        pre = PreprocessConfig(input_kind="intensity")
        front = open_front(RunnerConfig.front, free_tcp_endpoint, SourceConfig(idle_timeout=30), pre)
        front.start()
        sender = threading.Thread(target=stream, args=(frames, free_tcp_endpoint), kwargs={"connect_wait": 0.2})
        sender.start()
        writer = RunWriter(tmp_path / f"run{next(counter)}.h5", backend.provenance(), {})
        summary = Runner(front, backend, writer, progress=False).run()
        sender.join()
        return summary

    benchmark.extra_info.update(patterns_per_call=FRAMES, backend="runner (onnx, edge)", batch="adaptive")
    summary = benchmark.pedantic(one_run, rounds=3)
    assert summary["written"] == FRAMES
    benchmark.extra_info["frames_per_s_last_round"] = summary["frames_per_s"]
    benchmark.extra_info["stage_us_per_frame"] = summary["stage_us_per_frame"]
