import numpy as np
import pytest

import cdinn
from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object
from cdinn.model.metrics import reconstruction_metrics
from cdinn.model.refine import refine


def test_refinement_from_the_true_object_stays_at_the_true_object(patterns):
    amplitude, phase = refine(patterns.amplitude, patterns.phase, patterns.diffraction_oversampled, 30)
    m = reconstruction_metrics(complex_object(amplitude, phase), patterns.amplitude, patterns.phase)
    # the shrink-wrap threshold (15 % of the maximum) trims the faintest part of the blurred edge, so the
    # true object moves a little; a network seed starts ~0.27 away in shape error
    assert np.median(m["shape_error"]) < 0.05 and np.median(m["phase_rmse_weighted"]) < 0.03
    assert np.median(m["support_iou"]) > 0.97


def test_refinement_improves_the_network_result(patterns):
    before = cdinn.reconstruct(patterns.diffraction, net="edge")
    after = cdinn.reconstruct(patterns.diffraction_oversampled, net="edge", refine=40)
    m0 = reconstruction_metrics(complex_object(*before), patterns.amplitude, patterns.phase)
    m1 = reconstruction_metrics(complex_object(*after), patterns.amplitude, patterns.phase)
    for metric in ("chi2", "shape_error", "phase_rmse_weighted"):
        assert np.median(m1[metric]) < np.median(m0[metric]), metric
    assert after[0].shape == (24, 32, 32)


def test_zero_iterations_and_shape_checks(patterns):
    a, p = refine(patterns.amplitude[:2], patterns.phase[:2], patterns.diffraction_oversampled[:2], 0)
    assert np.array_equal(a, patterns.amplitude[:2])
    with pytest.raises(CdinnError, match="oversampled"):
        refine(patterns.amplitude[:2], patterns.phase[:2], patterns.diffraction[:2], 10)
    with pytest.raises(CdinnError, match="must have shape"):
        cdinn.reconstruct(patterns.diffraction, net="edge", refine=10)
