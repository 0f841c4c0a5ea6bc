"""What a detector gap that empties whole grid pixels costs the readout node: `cdinn run` (the default process
front end and backend) on two NXmx bitshuffle-LZ4 files of the same 256x256 uint32 frames, alternating:

* the pixel mask of ``experiments/runner_rate.py`` (a 4-row chip gap and a dead pixel: no grid pixel empty);
* a 12-row module gap and a 4-column chip gap (binning 4 is chosen: three grid rows hold no measured pixel, 96
  unmeasured grid pixels a frame, past the unconstrained-mode figure's matrix path, ``MAX_MATRIX``).

Prints each run's summary line (frames/s, each stage's microseconds a frame) and the median unconstrained figure.

    python experiments/gap_cost.py [FRAMES [ROUNDS]]     # default 6000 frames, 2 rounds
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
from runner_rate import detector_frames, master_file  # beside this file

CDINN = str(Path(sys.executable).with_name("cdinn"))


def module_gap(mask: np.ndarray) -> np.ndarray:
    """The pixel mask with a 12-row module gap (rows 100-111) and a 4-column chip gap (columns 60-63)."""
    gappy = mask.copy()
    gappy[100:112, :] = 1
    gappy[:, 60:64] = 1
    return gappy


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    frames, mask = detector_frames(n)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for label, pixel_mask in (("chip gap", mask), ("module gap", module_gap(mask))):
            folder = Path(tmp) / label.replace(" ", "_")
            folder.mkdir()
            files[label] = master_file(folder, frames, pixel_mask)
        for _ in range(rounds):
            for label, master in files.items():
                out = master.with_name("out.h5")
                out.unlink(missing_ok=True)
                cmd = [CDINN, "run", "--source", str(master), "--input-kind", "intensity", "--out", str(out), "--quiet"]
                line = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                with h5py.File(out) as fh:
                    figure = float(np.median(fh["unconstrained"][()]))
                print(f"{label}: {line.split('; ', 1)[1].split(' -> ')[0]}; unconstrained median {figure:.2f}")


if __name__ == "__main__":
    main()
