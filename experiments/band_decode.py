"""What decoding only the crop window's rows saves: `cdinn run` (the default process front end and backend) on
the same NXmx bitshuffle-LZ4 file, alternating whole-frame decoding with the default (the source decodes the
rows the preprocessing uses once the crop window is known), side by side in one run of this script.

Two detector geometries, uint32 frames, beam centre recorded in the master:

* ``256``: runner_rate.py's 256x256 frames (a simulated pattern over 8x8 pixel blocks, a chip gap and a dead
  pixel in the pixel mask);
* ``1m``: EIGER 1M-sized frames (1065 x 1030 pixels, two modules with the 37-row gap between them and 2-pixel
  chip gaps in the pixel mask), a few background counts everywhere and the pattern (over 4x4 blocks) around
  the beam centre, away from the module gap.

Whole-frame decoding is what a source does when no consumer asks for rows; to run the unchanged command that
way, this script puts a ``sitecustomize`` on the command's PYTHONPATH (the front end's process inherits it) that
clears ``wanted_rows`` when ``CDINN_WHOLE_FRAMES=1``. Prints per run frames/s (first frame to last), the decode
stage's microseconds a frame and the CPU seconds of the command and its front-end process, and checks that
both ways wrote the same reconstructions.

    python experiments/band_decode.py [ROUNDS [FRAMES_256 [FRAMES_1M]]]     # default 3 rounds, 8000, 2000
"""

import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from runner_rate import detector_frames, master_file  # noqa: E402

from cdinn.model.simulate import broad, simulate  # noqa: E402
from conftest import bslz4_frames  # noqa: E402  (benchmarks/conftest.py)

CDINN = str(Path(sys.executable).with_name("cdinn"))
SITE = """import os
if os.environ.get("CDINN_WHOLE_FRAMES") == "1":
    from cdinn.host import front
    _init = front.ThreadFront.__init__
    def __init__(self, source, *args, **kwargs):
        _init(self, source, *args, **kwargs)
        if hasattr(source, "wanted_rows"):
            source.wanted_rows = None
    front.ThreadFront.__init__ = __init__
"""
ROWS, COLS, CENTRE = 1065, 1030, (300, 400)  # EIGER 1M; the beam centre (row, col), off the module gap


def eiger_1m(folder: Path, n: int) -> Path:
    """An NXmx master and one bitshuffle-LZ4 data file of ``n`` EIGER 1M-sized uint32 frames."""
    k = 4
    patterns = simulate(64, seed=2024, config=broad(position="random"))
    intensity = patterns.diffraction.astype(np.float64) ** 2
    intensity *= 60_000 * k * k / intensity.max(axis=(1, 2), keepdims=True)
    spread = np.round(np.repeat(np.repeat(intensity / (k * k), k, axis=1), k, axis=2)).astype(np.uint32)
    frames = np.random.default_rng(0).poisson(0.05, (64, ROWS, COLS)).astype(np.uint32)
    r0, c0 = CENTRE[0] - 64, CENTRE[1] - 64
    frames[:, r0 : r0 + 128, c0 : c0 + 128] += spread
    mask = np.zeros((ROWS, COLS), np.uint32)
    mask[514:551, :] = 1  # the gap between the two modules
    for c in (256, 514, 772):  # chip gaps
        mask[:, c : c + 2] = 1
    frames[:, mask != 0] = 0
    with h5py.File(folder / "m_master.h5", "w") as fh:
        fh["entry/instrument/detector/pixel_mask"] = mask
        fh["entry/instrument/detector/beam_center_x"] = float(CENTRE[1])
        fh["entry/instrument/detector/beam_center_y"] = float(CENTRE[0])
        bslz4_frames(folder / "m_data_000001.h5", frames, n)
        fh["entry/data/data_000001"] = h5py.ExternalLink("m_data_000001.h5", "/entry/data/data")
    return folder / "m_master.h5"


def run(master: Path, out: Path, site: Path, whole: bool) -> tuple[float, float, float]:
    """frames/s, the decode stage (us a frame) and the CPU seconds of one `cdinn run`."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    env["CDINN_WHOLE_FRAMES"] = "1" if whole else "0"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [CDINN, "run", "--source", str(master), "--input-kind", "intensity", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rate = float(re.search(r"(\d+) frames/s", done.stdout).group(1))
    decode = float(re.search(r"decode (\d+)", done.stdout).group(1))
    return rate, decode, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same(a: Path, b: Path) -> bool:
    with h5py.File(a) as fa, h5py.File(b) as fb:
        return all(np.array_equal(fa[k][()], fb[k][()]) for k in ("amplitude", "phase", "frame_number", "fit"))


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n256 = int(sys.argv[2]) if len(sys.argv) > 2 else 8000
    n1m = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(SITE)
        files = {}
        (folder / "256").mkdir()
        files[f"256x256, {n256} frames"] = master_file(folder / "256", *detector_frames(n256))
        (folder / "1m").mkdir()
        files[f"EIGER 1M size ({ROWS}x{COLS}), {n1m} frames"] = eiger_1m(folder / "1m", n1m)
        print("| frames | round | whole frames: frames/s, decode us/frame, CPU s | window rows: the same | ratio |")
        print("|---|---|---|---|---|")
        for label, master in files.items():
            for r in range(rounds):
                whole = run(master, folder / "whole.h5", folder / "site", whole=True)
                rows = run(master, folder / "rows.h5", folder / "site", whole=False)
                ok = same(folder / "whole.h5", folder / "rows.h5")
                (folder / "whole.h5").unlink()
                (folder / "rows.h5").unlink()
                print(
                    f"| {label} | {r + 1} | {whole[0]:.0f}, {whole[1]:.0f}, {whole[2]:.1f} | {rows[0]:.0f}, "
                    f"{rows[1]:.0f}, {rows[2]:.1f} | {rows[0] / whole[0]:.2f}{'' if ok else ' (OUTPUTS DIFFER)'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
