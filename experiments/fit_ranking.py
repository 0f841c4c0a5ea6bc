"""How well the per-frame fit error (no ground truth) ranks the true errors of a network set, noiseless and
with Poisson noise: Spearman correlations of ``result.fit`` with the true chi^2, the true chi^2 at the best
global scale (what the fit measures against the noiseless pattern), the shape error and the amplitude-weighted
phase RMSE, on the evaluation test set (broad distribution, random positions, seed 20181009).

Usage: python experiments/fit_ranking.py [N] [NET]   (defaults: 1000, default)
"""

import sys

import numpy as np

import cdinn
from cdinn.model.conventions import complex_object
from cdinn.model.fit import fit_error
from cdinn.model.metrics import reconstruction_metrics
from cdinn.model.scoring import spearman
from cdinn.model.test_set import test_set

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
net = sys.argv[2] if len(sys.argv) > 2 else "default"
print(f"made by `python experiments/fit_ranking.py {n} {net}` (cdinn.reconstruct, broad test set seed 20181009)")
clean = test_set(n)
for photons in (None, 1e6, 1e5):
    data = clean if photons is None else test_set(n, photons=photons)
    result = cdinn.reconstruct(data.diffraction, net=net)
    obj = complex_object(result.amplitude, result.phase)
    true = reconstruction_metrics(obj, data.amplitude, data.phase)
    best_scale = fit_error(obj, clean.diffraction)  # against the noiseless pattern
    fit = np.asarray(result.fit)
    print(
        f"photons {photons}: Spearman(fit, true chi2) {spearman(fit, true['chi2']):.3f}; "
        f"(fit, true chi2 at the best scale) {spearman(fit, best_scale):.3f}; "
        f"(fit, shape error) {spearman(fit, true['shape_error']):.3f}; "
        f"(fit, weighted phase RMSE) {spearman(fit, true['phase_rmse_weighted']):.3f}"
    )
