"""The per-frame fit error (cdinn.model.fit) on real simulated patterns."""

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object, twin
from cdinn.model.fit import fit_error


def test_exact_object_fits_both_grids_and_any_scale(patterns):
    obj = complex_object(patterns.amplitude, patterns.phase)
    assert fit_error(obj, patterns.diffraction).max() < 1e-6
    assert fit_error(obj, patterns.diffraction_oversampled).max() < 1e-6
    # detector counts (any scale), the twin image, a shift and a global phase all fit exactly too
    assert fit_error(0.37 * obj, 1e3 * patterns.diffraction).max() < 1e-6
    assert fit_error(np.roll(twin(obj), 3, axis=-1) * np.exp(1j * 0.8), patterns.diffraction).max() < 1e-5


def test_fit_grows_with_the_perturbation(patterns, rng):
    obj = complex_object(patterns.amplitude, patterns.phase)
    noise = rng.normal(size=obj.shape) * (patterns.amplitude > 0.1)
    fits = [
        np.median(fit_error(complex_object(patterns.amplitude, patterns.phase + s * noise), patterns.diffraction))
        for s in (0.05, 0.2, 0.5, 1.0)
    ]
    assert 0 < fits[0] < fits[1] < fits[2] < fits[3]
    # an object that explains nothing of the pattern (zero) fits with error 1
    assert np.allclose(fit_error(np.zeros_like(obj), patterns.diffraction), 1.0)


def test_mismatched_grids_are_refused(patterns):
    obj = complex_object(patterns.amplitude, patterns.phase)
    with pytest.raises(CdinnError, match="fit error needs"):
        fit_error(obj, patterns.diffraction_oversampled[:, :48, :48])
    with pytest.raises(CdinnError, match="fit error needs"):
        fit_error(obj[:3], patterns.diffraction)
