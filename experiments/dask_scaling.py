"""Probe: the Dask path against the plain command on archives of growing length, to separate the fixed cost
(cluster start-up) from the per-frame rate. Each row is a full command, one round, on the same NXmx file of
256x256 uint16 bitshuffle-LZ4 frames as benchmarks/test_bench_distributed.py.

Usage: python experiments/dask_scaling.py FRAMES [FRAMES ...]     (e.g. 6000 30000)
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from test_bench_sources import _frames, _master  # noqa: E402  (the benchmarks' detector files)

from cdinn.model.simulate import broad, simulate  # noqa: E402

CDINN = str(Path(sys.executable).with_name("cdinn"))


def timed(archive: Path, out: Path, cluster: str) -> float:
    extra = [] if cluster == "none" else ["--cluster", cluster, "--chunk", "500"]
    start = time.perf_counter()
    subprocess.run([CDINN, "reconstruct", str(archive), str(out), "--input-kind", "intensity", *extra], check=True)
    return time.perf_counter() - start


def main(lengths: list[int]) -> None:
    patterns = simulate(64, seed=2024, config=broad(position="random"))
    print("| frames | plain (s) | local:1 (s) | local:2 (s) | local:1 / plain | local:2 / local:1 |")
    print("|---|---|---|---|---|---|")
    for n in lengths:
        with tempfile.TemporaryDirectory() as tmp:
            archive = _master(Path(tmp), _frames(patterns, n))
            t = {c: timed(archive, Path(tmp) / f"{c}.h5", c) for c in ("none", "local:1", "local:2")}
        print(
            f"| {n} | {t['none']:.2f} | {t['local:1']:.2f} | {t['local:2']:.2f} | {t['local:1'] / t['none']:.2f} "
            f"| {t['local:2'] / t['local:1']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]])
