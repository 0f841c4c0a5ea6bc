"""cdinn adapt on frames from an experiment the networks were not trained for: a partially coherent beam with
air scatter (Gaussian coherence 0.8 px, a smooth background of 3e-4 of the total per pixel, 1e5 photons).
Adapts NET on 600 unlabeled frames (120 held out), then scores NET and the adapted set on 300 new frames of the
same experiment against their true objects.

    python experiments/adapt_shift.py [NET] [EPOCHS] [LR]
"""

import sys
import tempfile

import numpy as np

from cdinn.model import forward
from cdinn.model.adapt import AdaptConfig, adapt
from cdinn.model.inference import load_network, network_folder, reconstruct_with
from cdinn.model.scoring import score
from cdinn.model.test_set import test_set

SHIFTED = forward.fixed(coherence_sigma=1.3, background=3e-3, background_kind="smooth", flux=1e5)


def medians(folder: str, data) -> str:
    f = str(network_folder(folder))
    a, p = reconstruct_with(load_network(f, "shape")[0], load_network(f, "phase")[0], data.diffraction, data.mask)
    m = score(a, p, data)
    return ", ".join(f"{k} {np.median(v):.3f}" for k, v in m.items())


def main(net: str = "default", epochs: int = 5, lr: float = 1e-4) -> None:
    frames = test_set(600, seed=5, experiment=SHIFTED)
    out = tempfile.mkdtemp(prefix="cdinn-adapted-")
    s = adapt(net, frames.diffraction, frames.mask, AdaptConfig(epochs=epochs, learning_rate=lr), out)
    print(f"fitted experiment {s['experiment']}; held-out fit {s['held_out_fit_median']}; {s['wall_time_s']} s")
    unseen = test_set(300, seed=77, experiment=SHIFTED)
    print(f"{net}: {medians(net, unseen)}")
    print(f"adapted: {medians(out, unseen)}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "default", *(f(v) for f, v in zip((int, float), args[1:], strict=False)))
