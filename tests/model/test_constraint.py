"""The unconstrained-mode figure: what it measures, checked against a dense eigendecomposition."""

import numpy as np
import pytest

from cdinn.model import constraint
from cdinn.model.conventions import pad_centred
from cdinn.model.metrics import support

N = 32


def _objects(count: int, seed: int = 0) -> np.ndarray:
    """(count, N, N) amplitudes on irregular supports of about 16x16 pixels."""
    rng = np.random.default_rng(seed)
    amplitude = np.zeros((count, N, N), np.float32)
    amplitude[:, 8:24, 8:24] = rng.random((count, 16, 16)) * (rng.random((count, 16, 16)) > 0.2)
    return amplitude


def _dense(amplitude: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The largest eigenvalue of P_M F P_S F^H P_M built from the unitary DFT matrix, frame by frame."""
    side = mask.shape[-1]
    dft = np.fft.fft(np.eye(side), norm="ortho")
    full = np.kron(dft, dft)  # the 2-D unitary DFT on flattened images
    values = []
    for obj, m in zip(pad_centred(amplitude, side), np.broadcast_to(mask, (len(amplitude), side, side)), strict=True):
        rows = full[m.ravel()][:, support(obj).ravel()]  # unmeasured frequencies x support pixels
        values.append(np.linalg.eigvalsh(rows @ rows.conj().T)[-1])
    return np.array(values)


def _square(half: int, side: int = N) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    mask[side // 2 - half : side // 2 + half + 1, side // 2 - half : side // 2 + half + 1] = True
    return mask


def test_every_pixel_measured_leaves_nothing_unconstrained():
    amplitude = _objects(3)
    assert np.array_equal(constraint.unconstrained(amplitude, None), np.zeros(3))
    assert np.array_equal(constraint.unconstrained(amplitude, np.zeros((N, N), bool)), np.zeros(3))


def test_one_unmeasured_pixel_hides_the_support_share_of_the_grid():
    """A single frequency's mode restricted to the support keeps |S| / N^2 of its intensity."""
    amplitude = _objects(4)
    mask = np.zeros((N, N), bool)
    mask[16, 16] = True
    expected = support(amplitude).mean(axis=(-2, -1))
    assert np.allclose(constraint.unconstrained(amplitude, mask), expected, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    ["3x3 beamstop", "5x5 beamstop", "9x9 beamstop (FFT operator)", "gaps (FFT operator)", "scattered per frame"],
)
def test_it_is_the_largest_eigenvalue_of_the_dense_operator(name):
    amplitude = _objects(6, seed=1)
    rng = np.random.default_rng(2)
    gaps = np.zeros((N, N), bool)
    gaps[15:17] = gaps[:, 15:17] = True
    mask = {
        "3x3 beamstop": _square(1),
        "5x5 beamstop": _square(2),
        "9x9 beamstop (FFT operator)": _square(4),
        "gaps (FFT operator)": gaps,
        "scattered per frame": rng.random((6, N, N)) < 0.03,  # different pixels in every frame
    }[name]
    exact = _dense(amplitude, mask)
    within = 1e-4 if mask.sum(axis=(-2, -1)).max() <= constraint.LANCZOS_STEPS else 0.03  # Lanczos: exact below
    assert np.allclose(constraint.unconstrained(amplitude, mask), exact, atol=within)


def test_a_wider_beamstop_hides_more_until_a_mode_is_invisible():
    amplitude = _objects(8, seed=3)
    values = [np.median(constraint.unconstrained(amplitude, _square(half))) for half in (0, 1, 2, 4, 6)]
    assert np.all(np.diff(values) > 0)
    assert values[0] < 0.35 and values[-1] > 0.95


def test_the_oversampled_grid_sees_the_same_object_in_a_larger_field_of_view():
    """A mask on twice the grid (the refinement's patterns) pads the object into it; the dense operator agrees."""
    amplitude = _objects(3, seed=4)
    mask = _square(3, 2 * N)
    assert np.allclose(constraint.unconstrained(amplitude, mask), _dense(amplitude, mask), atol=0.03)
    with pytest.raises(ValueError, match="matches neither"):
        constraint.unconstrained(amplitude, np.zeros((48, 48), bool))


def test_frames_are_independent_of_their_batch():
    amplitude = _objects(5, seed=5)
    masks = np.random.default_rng(6).random((5, N, N)) < 0.02
    together = constraint.unconstrained(amplitude, masks)
    alone = [constraint.unconstrained(amplitude[i : i + 1], masks[i : i + 1])[0] for i in range(5)]
    assert np.allclose(together, alone, atol=1e-6)
