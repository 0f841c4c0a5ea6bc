"""What slows the runner's stages down beside each other on this machine, side by side in one process each:

* a large float32 matrix product on one core and on two (do the two cores add up for arithmetic?);
* the networks alone on one core, then beside a busy loop on the other core;
* the runner from the NXmx file as it is, with its threads pinned (the main thread on one core, the reader
  and the preprocessing on the other: ``os.sched_setaffinity``), and with a 10x shorter GIL switch interval.

    python experiments/runner_contention.py [FRAMES]      # default 3000 frames
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner_rate import detector_frames, master_file, network_alone, run  # noqa: E402

from cdinn.host import runner as runner_module  # noqa: E402
from cdinn.host.runner import RUNNER_BACKEND  # noqa: E402
from cdinn.host.sources import FileSource  # noqa: E402

BUSY = "import numpy as np\na = np.ones(1 << 15)\nwhile True:\n    a.sum()"


def matrix_product_rate() -> dict[int, float]:
    """GMAC/s of a 2048^3 float32 matrix product on 1 and 2 threads (best of 5)."""
    from threadpoolctl import threadpool_limits

    a, b = np.random.rand(2048, 2048).astype(np.float32), np.random.rand(2048, 2048).astype(np.float32)
    rates = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            a @ b
            best = min(_timed(lambda: a @ b) for _ in range(5))
        rates[threads] = 2048**3 / best / 1e9
    return rates


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def pinned(method: str, cpu: int):
    """``Runner.<method>`` run on CPU ``cpu`` only (the thread pins itself first)."""
    original = getattr(runner_module.Runner, method)

    def wrapper(self, *args, **kwargs):
        os.sched_setaffinity(0, {cpu})
        return original(self, *args, **kwargs)

    return original, wrapper


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    frames, mask = detector_frames(n)
    products = matrix_product_rate()
    print(f"2048^3 float32 matrix product: {products[1]:.1f} GMAC/s on one core, {products[2]:.1f} on two")
    alone = network_alone(frames, 1, RUNNER_BACKEND)
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1)
        beside = network_alone(frames, 1, RUNNER_BACKEND)
    finally:
        busy.kill()
    print(f"networks alone, one thread, batch 64: {alone:.0f} frames/s; beside a busy loop: {beside:.0f}")
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        master = master_file(Path(tmp), frames, mask)
        free = run(FileSource(str(master)), Path(tmp) / "free.h5", RUNNER_BACKEND)
        saved = {}
        for method in ("_read", "_prepare"):
            saved[method], wrapper = pinned(method, cpus[-1])
            setattr(runner_module.Runner, method, wrapper)
        os.sched_setaffinity(0, {cpus[0]})
        pin = run(FileSource(str(master)), Path(tmp) / "pinned.h5", RUNNER_BACKEND)
        os.sched_setaffinity(0, set(cpus))
        for method, original in saved.items():
            setattr(runner_module.Runner, method, original)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(interval / 10)
        short = run(FileSource(str(master)), Path(tmp) / "switch.h5", RUNNER_BACKEND)
        sys.setswitchinterval(interval)
    for name, summary in (("as it is", free), ("threads pinned", pin), ("GIL switch interval / 10", short)):
        stages = ", ".join(f"{k} {v:.0f}" for k, v in summary["stage_us_per_frame"].items())
        batch = summary["written"] / max(summary["batches"], 1)
        rate = summary["frames_per_s"]
        print(f"runner, NXmx file, {name}: {rate:.0f} frames/s ({stages} us/frame; mean batch {batch:.0f})")


if __name__ == "__main__":
    main()
