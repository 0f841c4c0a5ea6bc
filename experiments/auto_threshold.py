"""Choose the automatic-refinement threshold from the fit-vs-error curve, on a tuning set apart from the
evaluation set (broad distribution, random positions, seed 7070).

Every frame is reconstructed by the network and refined by the automatic stop rule once (threshold 0, timed);
for each candidate threshold the frames whose network fit exceeds it take their refined result. Printed: the
network's true chi^2 by fit decile (the curve), then per threshold the refined fraction, the mean iterations
and the time per pattern (network + that fraction of the measured refinement time), and the medians beside
620-iteration ER/HIO from random starts on the same patterns (timed in the same run).

Usage: python experiments/auto_threshold.py [N] [NET]
"""

import sys
import time

import numpy as np

import cdinn  # noqa: F401
from cdinn.api import reconstruct
from cdinn.model.conventions import complex_object, crop_centred, pad_centred
from cdinn.model.metrics import register
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.refine import AutoRefineConfig
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set

n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
net = sys.argv[2] if len(sys.argv) > 2 else "default"
data = test_set(n, seed=7070)  # a tuning set: the test set's distribution, another seed
over = data.diffraction_oversampled
reconstruct(over[:2, ::2, ::2], net=net)
t = time.perf_counter()
nn = reconstruct(over[:, ::2, ::2], net=net)
nn_s = time.perf_counter() - t
t = time.perf_counter()
auto = reconstruct(over, net=net, refine=AutoRefineConfig(threshold=0.0))
auto_s = time.perf_counter() - t  # includes a second network pass (small)
t = time.perf_counter()
erhio = phase_retrieve(over, PhaseRetrievalConfig())
erhio_s = time.perf_counter() - t
truth = complex_object(data.amplitude, data.phase)
erhio = crop_centred(register(erhio, pad_centred(truth, 64)), 32)
m_nn = score(nn.amplitude, nn.phase, data)
m_auto = score(auto.amplitude, auto.phase, data)
m_er = score(np.abs(erhio), np.angle(erhio), data)
fit = auto.fit_before  # the network's fit against the oversampled pattern

print("network fit decile | fit range | true chi^2 median | shape error median | refined chi^2 median")
edges = np.quantile(fit, np.linspace(0, 1, 11))
for i in range(10):
    sel = (fit >= edges[i]) & (fit <= edges[i + 1])
    print(
        f"{i + 1} | {edges[i]:.2g}-{edges[i + 1]:.2g} | {np.median(m_nn['chi2'][sel]):.3g} | "
        f"{np.median(m_nn['shape_error'][sel]):.3f} | {np.median(m_auto['chi2'][sel]):.3g}"
    )

cols = ("chi2", "shape_error", "support_iou", "phase_rmse_weighted")
print("\nthreshold | refined | mean iterations | ms/pattern | speed-up vs ER/HIO | " + " | ".join(cols) + " | chi2 p90")
print(
    f"ER/HIO 620 | - | 620 | {erhio_s / n * 1e3:.2f} | 1x | "
    + " | ".join(f"{np.median(m_er[c]):.4g}" for c in cols)
    + f" | {np.percentile(m_er['chi2'], 90):.3g}"
)
for threshold in (0.0, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2):
    pick = fit > threshold
    combined = {c: np.where(pick, m_auto[c], m_nn[c]) for c in m_nn}
    ms = (nn_s + (auto_s - nn_s) * pick.mean()) / n * 1e3
    print(
        f"{threshold:g} | {pick.mean():.2f} | {auto.iterations[pick].mean() if pick.any() else 0:.0f} | {ms:.2f} | "
        f"{erhio_s / n * 1e3 / ms:.1f}x | "
        + " | ".join(f"{np.median(combined[c]):.4g}" for c in cols)
        + f" | {np.percentile(combined['chi2'], 90):.3g}"
    )
