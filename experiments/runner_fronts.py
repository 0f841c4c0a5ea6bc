"""The runner's two front ends side by side, alternating, on the same NXmx bitshuffle-LZ4 file (256x256 uint32
frames with a chip gap and a dead pixel in the pixel mask, as ``runner_rate.py``), OpenVINO on one and on two
inference threads: frames/s (first frame to last), each stage's microseconds per frame and the mean batch.

    python experiments/runner_fronts.py [FRAMES [ROUNDS]]     # default 3000 frames, 2 rounds
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner_rate import detector_frames, master_file, run  # noqa: E402

from cdinn.host.front import FRONTS  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    frames, mask = detector_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        master = str(master_file(Path(tmp), frames, mask))
        for r in range(rounds):
            for front in FRONTS:
                for threads in (1, 2):
                    s = run(master, Path(tmp) / f"out{r}{front}{threads}.h5", "openvino", front, threads)
                    stages = ", ".join(f"{k} {v:.0f}" for k, v in s["stage_us_per_frame"].items())
                    batch = s["written"] / max(s["batches"], 1)
                    print(
                        f"round {r + 1}, {front} front, {threads} inference thread(s): {s['frames_per_s']:.0f} "
                        f"frames/s ({stages} us/frame; mean batch {batch:.0f})",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
