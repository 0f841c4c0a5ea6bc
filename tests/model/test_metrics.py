import numpy as np
import pytest

from cdinn.model.conventions import complex_object, twin
from cdinn.model.metrics import METRICS, chi2, reconstruction_metrics, register, summarise


@pytest.fixture
def truth(patterns):
    return patterns.amplitude, patterns.phase, complex_object(patterns.amplitude, patterns.phase)


def _assert_perfect(m):
    assert np.allclose(m["chi2"], 0, atol=1e-9)
    assert np.allclose(m["shape_error"], 0, atol=1e-5)
    assert np.allclose(m["support_iou"], 1)
    assert np.allclose(m["phase_rmse"], 0, atol=1e-4)
    assert np.allclose(m["phase_rmse_weighted"], 0, atol=1e-4)


@pytest.mark.parametrize(
    "transform",
    [
        lambda o: o,
        lambda o: np.roll(o, (3, -5), axis=(1, 2)),
        lambda o: o * np.exp(1j * 1.3),
        twin,
        lambda o: np.roll(twin(o), (-2, 4), axis=(1, 2)) * np.exp(-2.0j),
    ],
    ids=["identity", "shift", "global-phase", "twin", "twin+shift+phase"],
)
def test_metrics_are_invariant_to_what_the_pattern_cannot_see(truth, transform):
    amp, phase, obj = truth
    _assert_perfect(reconstruction_metrics(transform(obj), amp, phase))


def test_subpixel_shifts_are_registered(truth):
    amp, phase, obj = truth
    from cdinn.model.metrics import fourier_shift

    shifted = fourier_shift(obj, np.tile([[0.5, -1.5]], (len(obj), 1)))
    m = reconstruction_metrics(shifted, amp, phase)
    assert np.median(m["shape_error"]) < 0.02 and np.median(m["phase_rmse_weighted"]) < 0.02


def test_metrics_detect_wrong_reconstructions(truth):
    amp, phase, obj = truth
    wrong_phase = reconstruction_metrics(complex_object(amp, -phase * 0.0 + 0.8 * np.sign(phase)), amp, phase)
    assert np.median(wrong_phase["phase_rmse"]) > 0.2 and np.median(wrong_phase["chi2"]) > 1e-3
    blob = np.zeros_like(obj)
    blob[:, 12:20, 12:20] = 1
    m = reconstruction_metrics(blob, amp, phase)
    assert np.median(m["support_iou"]) < 0.8 and np.median(m["shape_error"]) > 0.3


def test_chi2_of_scaled_object_matches_the_formula(truth):
    _, _, obj = truth
    i = np.abs(np.fft.fft2(obj)) ** 2
    expected = ((i - 4 * i) ** 2).sum(axis=(1, 2)) / (i**2).sum(axis=(1, 2))
    assert np.allclose(chi2(2 * obj, obj), expected)
    assert np.allclose(expected, 9)


def test_register_chooses_the_twin_when_it_fits_better(truth):
    _, _, obj = truth
    aligned = register(twin(obj), obj)
    assert np.allclose(aligned, obj, atol=1e-5)


def test_summary_has_medians_and_tails(truth):
    amp, phase, obj = truth
    s = summarise(reconstruction_metrics(obj, amp, phase))
    assert set(s) == set(METRICS)
    assert set(s["chi2"]) == {"median", "p90", "max"} and set(s["support_iou"]) == {"median", "p10", "min"}
