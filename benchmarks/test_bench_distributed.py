"""Archive reprocessing throughput: the plain single-process `cdinn reconstruct` against the Dask path with
1 and 2 local workers, on the same NXmx file of 256x256 uint16 detector frames (each measured as a command,
cluster start-up included); and one local worker against the plain command alternating in one test, the ratio
of their best rounds recorded (``ratios``): single runs of each drift with the machine as much as they differ."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_bench_sources import _frames, _master  # the same detector files as the source benchmarks (same folder)

FRAMES = 6000


@pytest.fixture(scope="module")
def archive(tmp_path_factory, bench_patterns, request):
    folder = tmp_path_factory.mktemp("archive")
    quick = request.config.getoption("benchmark_disable")  # CI runs the suite once, untimed: a small file
    return _master(folder, _frames(bench_patterns, 200 if quick else FRAMES))


def _reconstruct(archive: Path, out: Path, cluster: str) -> str:
    """`cdinn reconstruct` on the archive (``cluster`` "none": the plain command); its stdout."""
    extra = [] if cluster == "none" else ["--cluster", cluster, "--chunk", "500"]
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("cdinn")),
            "reconstruct",
            str(archive),
            str(out),
            "--input-kind",
            "intensity",
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("cluster", ["none", "local:1", "local:2"])
def test_reprocessing_throughput(benchmark, archive, tmp_path, cluster):
    counter = iter(range(100))

    def one_run():
        return _reconstruct(archive, tmp_path / f"out{next(counter)}.h5", cluster)

    import h5py

    with h5py.File(archive) as fh:
        n = sum(len(fh[f"entry/data/{k}"]) for k in fh["entry/data"])
    benchmark.extra_info.update(patterns_per_call=n, backend=f"reconstruct ({cluster})", batch="file")
    stdout = benchmark.pedantic(one_run, rounds=1)
    assert "reconstructed" in stdout


def test_one_local_worker_against_the_plain_command_alternating(benchmark, archive, tmp_path):
    seconds: dict[str, list[float]] = {"none": [], "local:1": []}

    def alternate() -> None:
        for round_ in range(1 if benchmark.disabled else 3):
            for cluster, times in seconds.items():
                started = time.perf_counter()
                assert "reconstructed" in _reconstruct(archive, tmp_path / f"{cluster}{round_}.h5", cluster)
                times.append(time.perf_counter() - started)

    benchmark.extra_info.update(backend="reconstruct, plain vs --cluster local:1", batch="file")
    benchmark.pedantic(alternate, rounds=1)
    benchmark.extra_info["seconds"] = seconds
    benchmark.extra_info["ratios"] = {
        "cdinn reconstruct --cluster local:1 / plain, seconds, best of alternating rounds": min(seconds["local:1"])
        / min(seconds["none"])
    }
