"""How to choose among the eight views' estimates (cdinn.model.views): rules side by side on the same estimates,
per detector effect (network alone, default set, onnxruntime, the mask given), median chi^2 / max, IoU:

* identity: the pattern itself (one view);
* min fit: the estimate that fits the measured pixels best (what ``network_pass`` does);
* margin M: min fit, unless its fit is not below M times the identity's;
* medoid: the estimate whose predicted pattern (all pixels, unit total) is nearest the views' per-pixel median;
* medoid of best 4: the medoid among the four best-fitting;
* fit+agree: the sum of the fit and the distance to the median, each over its median across views.

    python experiments/view_choice.py N       # e.g. 300
"""

import sys

import numpy as np

from cdinn.host.backends import get_backend
from cdinn.model.conventions import complex_object
from cdinn.model.effects import EFFECTS
from cdinn.model.fit import fit_experiment
from cdinn.model.forward import predicted_intensity
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set
from cdinn.model.views import stack_views, unstack_views


def main(n: int) -> None:
    engine = get_backend("onnx")
    V = 8
    rules = ["identity", "min fit", "margin 0.9", "margin 0.8", "medoid", "medoid of best 4", "fit+agree"]
    print("| effect | " + " | ".join(rules) + " |")
    for label, (_, model) in {"ideal": ("ideal", None), **EFFECTS}.items():
        data = test_set(n, experiment=model)
        x = data.diffraction.astype(np.float32)
        mask = data.mask
        amp, ph = (
            unstack_views(a, V) for a in engine.infer(stack_views(x, V), None if mask is None else stack_views(mask, V))
        )
        obj = complex_object(amp, ph)
        fits = np.stack([fit_experiment(obj[v * n : (v + 1) * n], x, mask).error for v in range(V)])  # (V, n)
        pred = predicted_intensity(obj, x.shape[-1]).reshape(V, n, *x.shape[1:])
        pred = pred / pred.sum(axis=(-2, -1), keepdims=True)
        med = np.median(pred, axis=0)
        dist = np.abs(pred - med).sum(axis=(-2, -1))  # (V, n) L1 distance to the views' per-pixel median
        choices = {}
        choices["identity"] = np.zeros(n, int)
        choices["min fit"] = fits.argmin(0)
        for m in (0.9, 0.8):
            c = fits.argmin(0)
            keep = fits.min(0) > m * fits[0]
            c[keep] = 0
            choices[f"margin {m}"] = c
        choices["medoid"] = dist.argmin(0)
        best4 = np.argsort(fits, axis=0)[:4]
        choices["medoid of best 4"] = best4[np.take_along_axis(dist, best4, 0).argmin(0), np.arange(n)]
        choices["fit+agree"] = (fits / np.median(fits, 0) + dist / np.median(dist, 0)).argmin(0)
        cells = []
        for r in rules:
            c = choices[r]
            idx = c * n + np.arange(n)
            s = score(amp[idx], ph[idx], data)
            cells.append(f"{np.median(s['chi2']):.3g} / {s['chi2'].max():.3g}, {np.median(s['support_iou']):.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
