"""Network sets side by side under each detector effect of cdinn.model.effects (network alone, the mask given):
median chi^2, its maximum and the median support IoU, beside the ideal patterns. ``SET@V``: the set with V views
of each pattern (``cdinn.reconstruct(..., views=V)``); ``SET:BACKEND``: run by that backend (default: keras, the
float networks), e.g. ``default:openvino-bf16``.

    python experiments/effects_front.py N SET [SET ...]     (e.g. 300 default build/robust-stage7 default@8)
"""

import sys

import numpy as np

from cdinn.api import reconstruct
from cdinn.model.effects import EFFECTS
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set


def main(n: int, nets: list[str]) -> None:
    print("| effect | regime | " + " | ".join(f"{net}: chi^2 median / max, IoU" for net in nets) + " |")
    print("|---|---|" + "---|" * len(nets))
    for label, (regime, model) in {"ideal": ("ideal", None), **EFFECTS}.items():
        data = test_set(n, experiment=model)
        cells = []
        for column in nets:
            net, _, views = column.partition("@")
            net, _, backend = net.partition(":")
            r = reconstruct(
                data.diffraction, net=net, backend=backend or "keras", mask=data.mask, views=int(views or 1)
            )
            m = score(r.amplitude, r.phase, data)
            cells.append(f"{np.median(m['chi2']):.3g} / {m['chi2'].max():.3g}, {np.median(m['support_iou']):.3f}")
        print(f"| {label} | {regime} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
