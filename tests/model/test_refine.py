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


def test_each_frame_is_refined_alike_whatever_frames_share_its_batch(patterns):
    """A frame without a fitted blur or background takes the plain modulus constraint, whether or not a
    batch-mate's is modelled (it used to take the partially coherent one whenever any frame's was: the same
    frame refined in the runner's arrival-sized batches and in a batch command differed by up to 0.008)."""
    from cdinn.model.fit import ExperimentFit

    seed = cdinn.reconstruct(patterns.diffraction[:3], net="edge")
    over = patterns.diffraction_oversampled[:3]
    zeros = np.zeros(3, np.float32)
    sigma, offset = np.array([0.0, 0.5, 0.0], np.float32), np.array([0, 0, 1e-3], np.float32)
    mixed = ExperimentFit(zeros, sigma, zeros, offset, np.zeros((3, 2), np.float32))
    together = refine(seed.amplitude, seed.phase, over, 10, experiment=mixed)
    for i in range(3):
        alone = refine(
            seed.amplitude[i : i + 1], seed.phase[i : i + 1], over[i : i + 1], 10, experiment=mixed.take([i])
        )
        assert np.array_equal(alone[0][0], together[0][i]) and np.array_equal(alone[1][0], together[1][i])
