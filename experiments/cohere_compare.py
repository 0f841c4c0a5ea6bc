"""cdinn's tuned ER/HIO beside cohere-core's (Argonne's CDI package, numpy backend) on the same patterns, in the
same process: quality (registered metrics, :mod:`cdinn.model.scoring`) and time per pattern (cohere's includes
writing and loading its one-pattern data file, as its API requires).

cohere-core runs one pattern at a time from an .npy file: each pattern's 2x oversampled 64x64 amplitudes are
written, a ``Rec`` is created on the CPU and iterated. Two cohere recipes: its own example recipe
(``3*(20*ER+180*HIO)+20*ER``, shrink-wrap every iteration, sigma 1, threshold 0.1) and one matched to cdinn's
(``6*(80*HIO+20*ER)+20*ER`` = 620 iterations, shrink-wrap every 20, sigma 1.5, threshold 0.1). cdinn's ER/HIO
runs its own recipe (620 iterations, sigma 2 -> 1, last 20 averaged) at batch 1 and batched.

Not a dependency of cdinn: ``pip install cohere-core==4.5.4 scikit-learn tifffile sphinx sphinx-pyproject``.
Usage: python experiments/cohere_compare.py [N]
"""

# isort: off
import cdinn  # noqa: F401  (before TensorFlow)

# isort: on
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cohere_core.controller import phasing

from cdinn.model.conventions import complex_object, crop_centred, pad_centred
from cdinn.model.metrics import register
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.scoring import score_summary, table
from cdinn.model.test_set import test_set

RECIPES = {
    "cohere, own recipe": {
        "algorithm_sequence": "3*(20*ER+180*HIO)+20*ER",
        "shrink_wrap_trigger": [1, 1],
        "shrink_wrap_type": "GAUSS",
        "shrink_wrap_threshold": 0.1,
        "shrink_wrap_gauss_sigma": 1.0,
        "initial_support_area": [0.5, 0.5],
        "hio_beta": 0.9,
    },
    "cohere, cdinn's recipe": {
        "algorithm_sequence": "6*(80*HIO+20*ER)+20*ER",
        "shrink_wrap_trigger": [20, 20],
        "shrink_wrap_type": "GAUSS",
        "shrink_wrap_threshold": 0.1,
        "shrink_wrap_gauss_sigma": 1.5,
        "initial_support_area": [0.5, 0.5],
        "hio_beta": 0.9,
    },
}


def cohere_run(amplitude: np.ndarray, params: dict, folder: Path) -> np.ndarray:
    """One (M, M) fftshifted amplitude pattern through cohere-core; its final object (M, M) complex."""
    path = folder / "data.npy"
    np.save(path, amplitude.astype(np.float32))
    with contextlib.redirect_stdout(io.StringIO()):  # cohere prints per run
        rec = phasing.create_rec(dict(params), str(path), "np", -1, debug=True)
        rec.iterate()
    # cohere goes to reciprocal space with an inverse FFT, so its object is the complex conjugate of one in
    # cdinn's convention (|FFT(object)| = amplitude), and it comes back normalised to a maximum of 1: restore
    # the scale that best fits the pattern (least squares), as ER/HIO's result keeps it
    obj = np.conj(np.asarray(rec.get_image()))
    model = np.abs(np.fft.fftshift(np.fft.fft2(obj)))
    return obj * (np.sum(model * amplitude) / np.sum(model**2))


n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
data = test_set(n)
size = data.amplitude.shape[-1]
truth = pad_centred(complex_object(data.amplitude, data.phase), 2 * size)


def scored(objects: np.ndarray) -> dict:
    aligned = crop_centred(register(objects, truth), size)
    return score_summary(np.abs(aligned), np.angle(aligned), data)


rows, cells = {}, {}
with tempfile.TemporaryDirectory() as tmp:
    for name, params in RECIPES.items():
        start = time.perf_counter()
        objects = np.stack([cohere_run(pattern, params, Path(tmp)) for pattern in data.oversampled])
        cells[name] = (time.perf_counter() - start) / n
        rows[name] = scored(objects)
start = time.perf_counter()
singles = np.concatenate([phase_retrieve(data.oversampled[i : i + 1], PhaseRetrievalConfig(seed=i)) for i in range(n)])
cells["cdinn ER/HIO, batch 1"] = (time.perf_counter() - start) / n
rows["cdinn ER/HIO, batch 1"] = scored(singles)
start = time.perf_counter()
batched = phase_retrieve(data.oversampled)
cells["cdinn ER/HIO, batched"] = (time.perf_counter() - start) / n
rows["cdinn ER/HIO, batched"] = scored(batched)
print(f"{n} broad test patterns (64x64 oversampled), one process, CPU")
print(table(["method"], ["ms per pattern"], [([k], rows[k], [f"{cells[k] * 1e3:.1f}"]) for k in rows]))
