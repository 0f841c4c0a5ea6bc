"""What limits the support IoU: how its value depends on the support threshold and on edge sharpness.

On the evaluation test set (broad distribution, random positions, seed 20181009), for each network set named:
the median support IoU of its registered predictions when their support is thresholded at other fractions of
the maximum than the metric's 0.1 (is the network's output calibrated to the metric?), and the Gaussian blur
(px) that, applied to the true amplitude, best matches the registered prediction (least squares, per pattern;
the median is printed). Then the truth alone: the share of the true support that lies in the edge blur below
0.3 of the maximum, and the IoU of the truth against itself after an extra Gaussian blur or additive noise,
which says how sharp and how clean an amplitude map must be for IoU >= 0.9.

Usage: python experiments/support_iou_limits.py [N] [NETS]   (defaults: 1000, default,paper)
"""

import sys

import numpy as np
from scipy.ndimage import gaussian_filter

import cdinn
from cdinn.model.conventions import complex_object
from cdinn.model.metrics import register, support, support_iou
from cdinn.model.test_set import test_set

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
nets = sys.argv[2].split(",") if len(sys.argv) > 2 else ["default", "paper"]
data = test_set(n)
truth = complex_object(data.amplitude, data.phase)
true_support = support(data.amplitude)
thresholds = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)
sigmas = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
fit_sigmas = np.round(np.arange(0.0, 1.51, 0.05), 2)  # the blur matched to each prediction


def blurred(amplitude: np.ndarray, sigma: float) -> np.ndarray:
    return amplitude if sigma == 0 else gaussian_filter(amplitude, (0, sigma, sigma), mode="wrap")


def median_iou(amplitude: np.ndarray, threshold: float = 0.1) -> float:
    return float(np.median(support_iou(true_support, support(amplitude, threshold))))


print(f"{n} broad test patterns (seed 20181009)\n")
print("net | " + " | ".join(f"IoU at {t}" for t in thresholds) + " | best-matching blur of the truth (px), median")
for net in nets:
    amplitude, phase = cdinn.reconstruct(data.diffraction, net=net)
    aligned = np.abs(register(complex_object(amplitude, phase), truth))
    errors = np.stack([np.linalg.norm(blurred(data.amplitude, s) - aligned, axis=(-2, -1)) for s in fit_sigmas])
    best_sigma = fit_sigmas[errors.argmin(axis=0)]
    print(
        f"{net} | "
        + " | ".join(f"{median_iou(aligned, t):.3f}" for t in thresholds)
        + f" | {np.median(best_sigma):.2f}"
    )

band = true_support & ~support(data.amplitude, 0.3)
print(
    f"\nshare of the true support below 0.3 of the maximum (edge blur), median: "
    f"{np.median(band.sum(axis=(-2, -1)) / true_support.sum(axis=(-2, -1))):.3f}"
)
print(
    "\ntruth against itself, extra Gaussian blur (px): "
    + ", ".join(f"{s}: {median_iou(blurred(data.amplitude, s)):.3f}" for s in sigmas[1:])
)
rng = np.random.default_rng(0)
print(
    "truth against itself, additive Gaussian noise (fraction of the maximum): "
    + ", ".join(
        f"{s}: {median_iou(np.clip(data.amplitude + s * rng.standard_normal(data.amplitude.shape), 0, None)):.3f}"
        for s in (0.01, 0.02, 0.03, 0.05)
    )
)
