"""What slows the runner's stages down beside each other on this machine, each measurement in a fresh process:

* the runner from the NXmx file as it is, with its threads pinned (the main thread on one core, the reader
  and the preprocessing on the other: ``os.sched_setaffinity``, set before anything else runs), and with a 10x
  shorter GIL switch interval; twice each, alternating (this VM's rates drift between runs);
* the networks alone on one core, then beside a busy loop on the other core;
* a large float32 matrix product on one core and on two (do the two cores add up for arithmetic?).

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

from runner_rate import detector_frames, master_file, network_alone_fps, run  # noqa: E402

from cdinn.host import runner as runner_module  # noqa: E402
from cdinn.host.runner import RUNNER_BACKEND  # noqa: E402
from cdinn.host.sources import FileSource  # noqa: E402

BUSY = "import numpy as np\na = np.ones(1 << 15)\nwhile True:\n    a.sum()"
VARIANTS = ("as it is", "threads pinned", "GIL switch interval / 10")


def pin_threads() -> None:
    """The main thread on the first core, the runner's reader and preprocessing threads on the last."""
    cpus = sorted(os.sched_getaffinity(0))
    for method in ("_read", "_prepare"):
        original = getattr(runner_module.Runner, method)

        def wrapper(self, *args, _original=original, **kwargs):
            os.sched_setaffinity(0, {cpus[-1]})
            return _original(self, *args, **kwargs)

        setattr(runner_module.Runner, method, wrapper)
    os.sched_setaffinity(0, {cpus[0]})


def one_runner(n: int, variant: str) -> None:
    if variant == "threads pinned":
        pin_threads()
    if variant == "GIL switch interval / 10":
        sys.setswitchinterval(sys.getswitchinterval() / 10)
    frames, mask = detector_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(FileSource(str(master_file(Path(tmp), frames, mask))), Path(tmp) / "out.h5", RUNNER_BACKEND)
    stages = ", ".join(f"{k} {v:.0f}" for k, v in summary["stage_us_per_frame"].items())
    batch = summary["written"] / max(summary["batches"], 1)
    rate = summary["frames_per_s"]
    print(f"runner, NXmx file, {variant}: {rate:.0f} frames/s ({stages} us/frame; mean batch {batch:.0f})")


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def cores() -> None:
    from threadpoolctl import threadpool_limits

    frames, _ = detector_frames(64)
    alone = network_alone_fps(frames, RUNNER_BACKEND, 1, rounds=5)
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(1)
        beside = network_alone_fps(frames, RUNNER_BACKEND, 1, rounds=5)
    finally:
        busy.kill()
    print(f"networks alone, one thread, batch 64: {alone:.0f} frames/s; beside a busy loop: {beside:.0f}")
    a, b = np.random.rand(2048, 2048).astype(np.float32), np.random.rand(2048, 2048).astype(np.float32)
    rates = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            a @ b
            rates[threads] = 2048**3 / min(_timed(lambda: a @ b) for _ in range(5)) / 1e9
    print(f"2048^3 float32 matrix product: {rates[1]:.1f} GMAC/s on one core, {rates[2]:.1f} on two")


def main() -> None:
    if len(sys.argv) > 2:  # one measurement, in this fresh process
        one_runner(int(sys.argv[1]), sys.argv[2]) if sys.argv[2] in VARIANTS else cores()
        return
    n = sys.argv[1] if len(sys.argv) > 1 else "3000"
    for variant in (*VARIANTS, *VARIANTS, "cores"):
        subprocess.run([sys.executable, __file__, n, variant], check=True)


if __name__ == "__main__":
    main()
