"""The measured Au(111) Bragg peak (APS 34-ID-C scan 54, frame 99: the detector slice through the peak, raw
counts; ../shared/realdata) reconstructed by a network set alone, with refine='auto' and by mask-aware ER/HIO,
side by side, with their fits against the measured pattern through the same fitted forward model
(cdinn.model.fit.fit_experiment; no ground truth exists). Bad pixels (dark > 1 or
white field <= 0) are masked. Writes results/measured/table.md and results/measured/au111_frame99.png.

    python experiments/measured_au.py [NET] [OUT]
"""

import sys
from pathlib import Path

import numpy as np

from cdinn.api import reconstruct
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.model.conventions import complex_object
from cdinn.model.fit import fit_experiment
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.sampling import oversampling

DATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "aps34idc-au111-scan54" / "raw_stack_S0054.npz"
PEAK = (126, 127)  # (row, column) of the Bragg peak in frame 99
FRAME = 99


def window(frame: np.ndarray, bad: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    rows = slice(PEAK[0] - size // 2, PEAK[0] + size // 2)
    cols = slice(PEAK[1] - size // 2, PEAK[1] + size // 2)
    return frame[rows, cols].astype(np.float64), bad[rows, cols]


def _figure(pattern: np.ndarray, images: dict[str, np.ndarray], path: Path) -> None:
    """The measured pattern, then each method's amplitude (top) and phase inside its support (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(images) + 1, figsize=(2.4 * (len(images) + 1), 5))
    axes[0, 0].imshow(pattern, cmap="viridis")
    axes[0, 0].set_title("measured |FT| (log), 64 crop", fontsize=8)
    axes[1, 0].axis("off")
    for col, (name, obj) in enumerate(images.items(), start=1):
        amplitude = np.abs(obj) / np.abs(obj).max()
        axes[0, col].imshow(amplitude, cmap="gray")
        axes[0, col].set_title(f"{name}\namplitude", fontsize=8)
        axes[1, col].imshow(np.where(amplitude > 0.1, np.angle(obj), np.nan), cmap="twilight", vmin=-np.pi, vmax=np.pi)
        axes[1, col].set_title("phase (rad)", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(net: str = "default", out: str = "results/measured") -> None:
    data = np.load(DATA)
    frame = data["data"][FRAME]
    bad = (data["dark_full"][:256, :256] > 1) | (data["whitefield_full"][:256, :256] <= 0)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rows, images = [], {}
    # 32x32 crop at full resolution (oversampling ~3.3-3.9): network alone and ER/HIO on the same pattern
    counts, mask = window(frame, bad, 32)
    amp = np.sqrt(counts).astype(np.float32)
    nn = reconstruct(amp, net=net, mask=mask)
    er = phase_retrieve(np.where(mask, 0, amp)[None], PhaseRetrievalConfig(), mask=mask[None])
    er_fit = float(fit_experiment(er, amp[None], mask[None]).error[0])
    sigma = float(oversampling(counts[None], mask[None]).min())
    rows.append(("32x32 crop", f"{sigma:.2f}", "network", f"{nn.fit:.4f}"))
    rows.append(("32x32 crop", "", "network, 8 views", f"{reconstruct(amp, net=net, mask=mask, views=8).fit:.4f}"))
    rows.append(("32x32 crop", "", "ER/HIO 620 (mask-aware)", f"{er_fit:.4f}"))
    images["network, 32 crop"] = complex_object(nn.amplitude, nn.phase)
    images["ER/HIO, 32 crop"] = er[0]
    # 64x64 crop: the refinement's oversampled pattern (the network sees every other pixel), and ER/HIO on it
    counts64, mask64 = window(frame, bad, 64)
    amp64 = np.sqrt(counts64).astype(np.float32)
    nn64 = reconstruct(amp64, net=net, refine="auto", mask=mask64)
    er64 = phase_retrieve(np.where(mask64, 0, amp64)[None], PhaseRetrievalConfig(), mask=mask64[None])
    er64_fit = float(fit_experiment(er64, amp64[None], mask64[None]).error[0])
    rows.append(
        (
            "64x64 crop",
            f"{float(oversampling(counts64[None], mask64[None]).min()):.2f}",
            "network (every other pixel)",
            f"{nn64.fit_before:.4f}",
        )
    )
    rows.append(("64x64 crop", "", f"network + refine='auto' ({nn64.iterations} iterations)", f"{nn64.fit:.4f}"))
    rows.append(("64x64 crop", "", "ER/HIO 620 (mask-aware)", f"{er64_fit:.4f}"))
    images["network + auto, 64 crop"] = complex_object(nn64.amplitude, nn64.phase)
    # the detector frame as `cdinn reconstruct` prepares it: --bin auto (2x2 of a 64x64 window)
    prepared = Preprocessor(PreprocessConfig(centre_pixel=PEAK)).prepare(frame, bad)
    binned = reconstruct(prepared.amplitude, net=net, mask=prepared.mask)
    rows.append(("detector frame, --bin auto", f"{prepared.oversampling:.2f}", "network", f"{binned.fit:.4f}"))
    table = ["| pattern | oversampling | method | fit (measured pixels) |", "|---|---|---|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    text = (
        f"Made by `python experiments/measured_au.py {net} {out}` (APS 34-ID-C Au(111), scan 54, frame "
        f"{FRAME}; no ground truth: the fit against the measured counts is the figure of merit)\n\n"
        + "\n".join(table)
        + "\n"
    )
    (folder / "table.md").write_text(text)
    images["ER/HIO, 64 crop"] = er64[0]
    _figure(np.log10(amp64 + 1), images, folder / "au111_frame99.png")
    print(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
