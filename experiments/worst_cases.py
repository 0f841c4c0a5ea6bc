"""Where the worst reconstructions are: the frames of the evaluation test set (broad distribution, random
positions, seed 20181009) whose chi^2 exceeds a limit, by mean phase gradient inside the object and object size,
with and without automatic ER/HIO refinement (which needs the 64 x 64 oversampled patterns).

Usage: python experiments/worst_cases.py [N] [NET] [LIMIT]   (defaults: 1000, default, 0.5)
"""

import sys

import numpy as np

import cdinn
from cdinn.model.conventions import complex_object
from cdinn.model.metrics import reconstruction_metrics
from cdinn.model.regimes import mean_phase_gradient, object_size
from cdinn.model.test_set import test_set

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
net = sys.argv[2] if len(sys.argv) > 2 else "default"
limit = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
print(f"made by `python experiments/worst_cases.py {n} {net} {limit}` (broad test set seed 20181009)")
data = test_set(n)
gradient = mean_phase_gradient(data.amplitude, data.phase)
size = object_size(data.amplitude)
print(
    f"all frames: mean phase gradient median {np.median(gradient):.2f} rad/px, object size median "
    f"{np.median(size):.0f} px"
)
for label, result in (
    ("network alone", cdinn.reconstruct(data.diffraction, net=net)),
    ("network + refine='auto'", cdinn.reconstruct(data.diffraction_oversampled, net=net, refine="auto")),
):
    chi2 = reconstruction_metrics(complex_object(result.amplitude, result.phase), data.amplitude, data.phase)["chi2"]
    bad = chi2 > limit
    print(f"{label}: {bad.sum()} of {n} frames with chi^2 > {limit} (max {chi2.max():.3f})")
    if bad.any():
        print(
            f"  their phase gradient: median {np.median(gradient[bad]):.2f}, min {gradient[bad].min():.2f} "
            f"rad/px; {np.mean(gradient[bad] > 1):.0%} above 1 rad/px (all frames: {np.mean(gradient > 1):.0%})"
        )
        print(
            f"  their object size: median {np.median(size[bad]):.0f} px, range {size[bad].min():.0f}-"
            f"{size[bad].max():.0f} px"
        )
    for edges in ((0, 0.6), (0.6, 1.0), (1.0, 1.5), (1.5, np.inf)):
        in_bin = (gradient >= edges[0]) & (gradient < edges[1])
        if in_bin.any():
            print(
                f"  gradient {edges[0]}-{edges[1]} rad/px: {in_bin.sum()} frames, {bad[in_bin].sum()} above "
                f"the limit, chi^2 p90 {np.quantile(chi2[in_bin], 0.9):.3f}"
            )
