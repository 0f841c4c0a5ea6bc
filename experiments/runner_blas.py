"""The runner with numpy's BLAS on the runtime's default threads (OpenBLAS: one per core) and on one thread
(``cdinn.host.runner.RUNNER_BLAS_THREADS``, what ``Runner.run`` sets), alternating on the same NXmx bslz4 file
of 256x256 uint32 frames (``runner_rate.py``'s), with the process front end: frames/s and the stages'
microseconds per frame of each run.

    python experiments/runner_blas.py [FRAMES [BACKEND [ROUNDS]]]      (default 6000 openvino-bf16 3)
"""

import sys
import tempfile
from pathlib import Path

from runner_rate import detector_frames, master_file, run

import cdinn.host.runner as runner


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    backend = sys.argv[2] if len(sys.argv) > 2 else "openvino-bf16"
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    frames, mask = detector_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        master = master_file(Path(tmp), frames, mask)
        for r in range(rounds):
            for threads in (None, runner.RUNNER_BLAS_THREADS):
                limit, runner.RUNNER_BLAS_THREADS = runner.RUNNER_BLAS_THREADS, threads  # None: no limit
                try:
                    s = run(str(master), Path(tmp) / f"o{r}{threads}.h5", backend, "process")
                finally:
                    runner.RUNNER_BLAS_THREADS = limit
                stages = ", ".join(f"{k} {v:.0f}" for k, v in s["stage_us_per_frame"].items())
                label = "runtime default" if threads is None else f"{threads} thread"
                print(f"round {r + 1}, BLAS {label}: {s['frames_per_s']:.0f} frames/s ({stages} us/frame)", flush=True)


if __name__ == "__main__":
    main()
