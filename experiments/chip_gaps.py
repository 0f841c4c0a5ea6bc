"""Detector chip gaps through the runner's preprocessing (``Preprocessor.prepare_many``: one detector mask shared
by every frame, as an NXmx pixel_mask is), then the networks: a 256x256 detector sampling the far field 8x finer
than the 32x32 grid (|FFT|^2 of the object zero-padded to 256, scaled to 1e6 counts at the brightest pixel),
binned 8x8; the broad test patterns. Gaps: a horizontal chip gap of 12 rows (rows 100-111: one row of 8x8
blocks without any measured pixel), a vertical gap of 4 columns (60-63) and 50 random dead pixels, flagged in
the pixel mask and holding 2^32-1 (per-frame masks: the sentinel is found in each frame) or 0 (the pixel mask
alone, one for every frame); beside them, the same frames without gaps and with the gaps read as zero counts
(no mask). Writes results/auto/chip_gaps.txt.

    python experiments/chip_gaps.py [N] [NET ...]     (default: 200 default edge)
"""

import sys
from pathlib import Path

import numpy as np

from cdinn.api import reconstruct
from cdinn.host.batch_input import stack_masks
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.model.conventions import complex_object, diffraction_amplitude, pad_centred
from cdinn.model.metrics import reconstruction_metrics
from cdinn.model.test_set import test_set

DETECTOR, SENTINEL = 256, np.iinfo(np.uint32).max


def detector_frames(n: int) -> tuple[np.ndarray, object]:
    """(n, 256, 256) uint32 counts of the test set's objects and the test set."""
    data = test_set(n)
    intensity = diffraction_amplitude(pad_centred(complex_object(data.amplitude, data.phase), DETECTOR)) ** 2
    counts = np.round(intensity * (1e6 / intensity.max(axis=(1, 2), keepdims=True)))
    return counts.astype(np.uint32), data


def gaps(seed: int = 0) -> np.ndarray:
    mask = np.zeros((DETECTOR, DETECTOR), bool)
    mask[100:112, :] = True
    mask[:, 60:64] = True
    rng = np.random.default_rng(seed)
    mask[rng.integers(0, DETECTOR, 50), rng.integers(0, DETECTOR, 50)] = True
    return mask


def line(label: str, frames: np.ndarray, mask: np.ndarray | None, data, net: str) -> str:
    prepared = Preprocessor(PreprocessConfig(binning=8)).prepare_many(list(frames), [mask] * len(frames))
    kept = [i for i, p in enumerate(prepared) if not isinstance(p, Exception)]
    amplitudes = np.stack([prepared[i].amplitude for i in kept])
    grid_mask = stack_masks([prepared[i].mask for i in kept], amplitudes.shape[1:])
    unmeasured = 0 if grid_mask is None else int(grid_mask[0].sum())
    r = reconstruct(amplitudes, mask=grid_mask, net=net)
    scores = reconstruction_metrics(complex_object(r.amplitude, r.phase), data.amplitude[kept], data.phase[kept])
    m = {name: float(np.median(values)) for name, values in scores.items()}
    return (
        f"{net}, {label}: median chi2 {m['chi2']:.4f}, IoU {m['support_iou']:.3f}, shape error "
        f"{m['shape_error']:.3f}, weighted phase {m['phase_rmse_weighted']:.3f} rad "
        f"({unmeasured} of {amplitudes[0].size} grid pixels unmeasured; {len(frames) - len(kept)} frames rejected)"
    )


def main(n: int, nets: list[str]) -> None:
    frames, data = detector_frames(n)
    mask = gaps()
    gapped = np.where(mask, SENTINEL, frames).astype(np.uint32)
    zeroed = np.where(mask, 0, frames).astype(np.uint32)
    lines = [__doc__.split("\n\n")[0].replace("\n", " "), f"{n} broad test patterns (seed of cdinn.model.test_set)."]
    for net in nets:
        lines += [
            line("no gaps", frames, None, data, net),
            line("gaps masked (pixel mask + 2^32-1)", gapped, mask, data, net),
            line("gaps in the pixel mask, holding 0", zeroed, mask, data, net),
            line("gaps read as zero counts", zeroed, None, data, net),
        ]
    text = "\n".join(lines) + "\nMade by: python experiments/chip_gaps.py " + " ".join([str(n), *nets]) + "\n"
    out = Path("results/auto/chip_gaps.txt")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, sys.argv[2:] or ["default", "edge"])
