"""How wide an unmeasured centre the networks bridge: a square beamstop of growing half-width (network-grid
pixels; the training model draws 0.5-2) on the broad test patterns, network alone (the mask given) and with
``refine="auto"`` beside a mask-aware 620-iteration ER/HIO, the same objects in every row: median chi^2 against
the true pattern, median fit on the measured pixels, median support IoU; and the networks' unconstrained-mode
figure (``result.unconstrained``, :mod:`cdinn.model.constraint`): its median, and the network's median chi^2 on
the frames where it is below 0.5 and at or above (their counts in brackets).

    python experiments/beamstop_size.py N NET [HALF_WIDTH ...]     (e.g. 200 default 1 2 3 4 6)
"""

import sys

import numpy as np

from cdinn.api import reconstruct
from cdinn.evaluation.evaluate import erhio_objects
from cdinn.model.forward import fixed
from cdinn.model.metrics import reconstruction_metrics
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set


def row(n: int, net: str, half_width: float) -> str:
    data = test_set(n, experiment=fixed(beamstop=half_width, beamstop_shape="square", beamstop_arm=False))
    masked = 100 * data.mask.mean() if data.mask is not None else 0.0
    cells = []
    alone = reconstruct(data.diffraction, mask=data.mask, net=net)
    refined = reconstruct(data.oversampled, mask=data.mask_oversampled, refine="auto", net=net)
    for r in (alone, refined):
        m = score(r.amplitude, r.phase, data)
        cells.append(f"{np.median(m['chi2']):.3g} / {np.median(r.fit):.3g}, {np.median(m['support_iou']):.3f}")
    chi2, hidden = score(alone.amplitude, alone.phase, data)["chi2"], alone.unconstrained
    split = [
        f"{np.median(chi2[part]):.3g} ({part.sum()})" if part.any() else "-" for part in (hidden < 0.5, hidden >= 0.5)
    ]
    cells.append(f"{np.median(hidden):.2f}; {' / '.join(split)}")
    m = reconstruction_metrics(erhio_objects(data), data.amplitude, data.phase)
    cells.append(f"{np.median(m['chi2']):.3g}, {np.median(m['support_iou']):.3f}")
    return f"| {2 * half_width + 1:g}x{2 * half_width + 1:g} | {masked:.1f} % | " + " | ".join(cells) + " |"


def main(n: int, net: str, widths: list[float]) -> None:
    print(
        "| beamstop | unmeasured | network: chi^2 / fit, IoU | + refine='auto': chi^2 / fit, IoU | "
        "unconstrained: median; chi^2 below / above 0.5 | ER/HIO 620: chi^2, IoU |"
    )
    print("|---|---|---|---|---|---|")
    for w in widths:
        print(row(n, net, w), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], [float(w) for w in sys.argv[3:]] or [1, 2, 3, 4, 6])
