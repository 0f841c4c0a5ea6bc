"""cdinn.reconstruct: backends by name, cached sessions, the per-frame fit and automatic refinement."""

import numpy as np
import pytest

import cdinn
from cdinn.api import Reconstruction, cached_backend
from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object
from cdinn.model.fit import fit_error, fit_experiment
from cdinn.model.refine import AutoRefineConfig


def test_result_unpacks_like_the_old_tuple_and_carries_the_fit(patterns):
    result = cdinn.reconstruct(patterns.diffraction, net="edge")
    amplitude, phase = result
    assert isinstance(result, Reconstruction) and len(result) == 2
    assert amplitude is result.amplitude and amplitude.shape == (24, 32, 32)
    expected = fit_experiment(complex_object(amplitude, phase), patterns.diffraction)
    assert np.allclose(result.fit, expected.error) and np.array_equal(result.fit, result.fit_before)
    assert np.array_equal(result.coherence_sigma, expected.coherence_sigma)
    # through the forward model the fit is never worse than the coherent fit (which it contains)
    assert (result.fit <= fit_error(complex_object(amplitude, phase), patterns.diffraction) + 1e-6).all()
    assert not result.refined.any() and (result.iterations == 0).all()
    one = cdinn.reconstruct(patterns.diffraction[0], net="edge")
    assert one.amplitude.shape == (32, 32) and np.ndim(one.fit) == 0 and np.isclose(one.fit, result.fit[0], rtol=1e-4)
    assert np.ndim(one.oversampling) == 0 and np.isclose(one.oversampling, result.oversampling[0])
    assert result.oversampling.shape == (24,) and (result.oversampling > 1.9).all()  # 32x32: resolved from 2 up


def test_backends_agree_on_the_same_frames(patterns):
    onnx = cdinn.reconstruct(patterns.diffraction, net="edge", backend="onnx")
    keras = cdinn.reconstruct(patterns.diffraction, net="edge", backend="keras")
    assert np.abs(onnx.amplitude - keras.amplitude).max() < 1e-4
    inside = onnx.amplitude > 0.2
    assert np.abs(np.angle(np.exp(1j * (onnx.phase - keras.phase))))[inside].max() < 1e-3
    assert np.allclose(onnx.fit, keras.fit, rtol=1e-3, atol=1e-6)


def test_sessions_are_created_once_and_reused(patterns):
    cdinn.reconstruct(patterns.diffraction[:1], net="edge")
    engine = cached_backend("onnx", "edge")
    sessions = engine.sessions
    before = cached_backend.cache_info()
    for _ in range(3):
        cdinn.reconstruct(patterns.diffraction[:2], net="edge")
    after = cached_backend.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3
    assert cached_backend("onnx", "edge").sessions is sessions


def test_unknown_backend_and_bad_refine_give_one_line(patterns):
    with pytest.raises(CdinnError, match="unknown backend 'gpu'"):
        cdinn.reconstruct(patterns.diffraction, net="edge", backend="gpu")
    with pytest.raises(CdinnError, match="refine must be"):
        cdinn.reconstruct(patterns.diffraction_oversampled, net="edge", refine="always")


def test_auto_refinement_leaves_good_frames_and_refines_bad_ones(patterns):
    network = cdinn.reconstruct(patterns.diffraction_oversampled[:, ::2, ::2], net="edge")
    probe = cdinn.reconstruct(patterns.diffraction_oversampled, net="edge", refine="auto")
    assert probe.refined.any() and probe.amplitude.max() <= 1
    # a threshold at the median of the network's own fits: half the frames fit well, half badly
    cfg = AutoRefineConfig(threshold=float(np.median(probe.fit_before)))
    result = cdinn.reconstruct(patterns.diffraction_oversampled, net="edge", refine=cfg)
    bad = result.fit_before > cfg.threshold
    assert bad.sum() == len(bad) // 2
    assert np.array_equal(result.refined, bad)
    # well-fitting frames pass straight through: the network's output, untouched, no iterations
    assert np.array_equal(result.amplitude[~bad], network.amplitude[~bad])
    assert np.array_equal(result.phase[~bad], network.phase[~bad]) and (result.iterations[~bad] == 0).all()
    # badly fitting ones are refined: iterations spent, fit much better, amplitudes still in [0, 1]
    assert (result.iterations[bad] > 0).all() and (result.fit[bad] <= result.fit_before[bad]).all()
    assert np.median(result.fit[bad]) < 0.1 * np.median(result.fit_before[bad])
    assert result.amplitude.min() >= 0 and result.amplitude.max() <= 1
    assert result.iterations.max() <= cfg.max_iterations


def test_fixed_refinement_reports_fit_before_and_after(patterns):
    result = cdinn.reconstruct(patterns.diffraction_oversampled[:6], net="edge", refine=20)
    assert (result.iterations == 20).all() and result.refined.all()
    assert np.median(result.fit) < np.median(result.fit_before)
    assert result.amplitude.min() >= 0 and result.amplitude.max() <= 1


def test_the_default_networks_take_the_mask_and_survive_a_beamstop():
    from cdinn.model import forward
    from cdinn.model.constraint import unconstrained
    from cdinn.model.scoring import score
    from cdinn.model.test_set import test_set

    assert cached_backend("onnx", "default").channels == 2
    data = test_set(100, seed=3, experiment=forward.fixed(beamstop=1.0, beamstop_shape="square", beamstop_arm=False))
    assert data.mask is not None and data.mask[:, 15:18, 15:18].all()
    spoiled = np.where(data.mask, np.float32(np.nan), data.diffraction)  # unmeasured pixels may hold anything
    result = cdinn.reconstruct(spoiled, mask=data.mask)
    same = cdinn.reconstruct(data.diffraction, mask=data.mask)
    assert np.array_equal(result.amplitude, same.amplitude) and np.allclose(result.fit, same.fit)
    assert np.allclose(result.masked, 9 / 1024)
    # the 3x3 hole hides part of some mode of every object, and with every pixel measured nothing is hidden
    assert np.array_equal(result.unconstrained, unconstrained(result.amplitude, data.mask))
    assert (result.unconstrained > 0.1).all() and np.median(result.unconstrained) > 0.3
    assert not cdinn.reconstruct(data.diffraction).unconstrained.any()
    # the networks trained with a beamstop: the stage-6 ones (no mask input) had median chi^2 4.5 here
    chi2 = score(result.amplitude, result.phase, data)["chi2"]
    assert np.median(chi2) < 0.3
    # where the beamstop hides most of a mode the true error is larger (here 0.129 against 0.062, 43/57 frames)
    hidden = result.unconstrained >= 0.5
    assert 20 <= hidden.sum() <= 80 and np.median(chi2[hidden]) > 1.5 * np.median(chi2[~hidden])
    with pytest.raises(CdinnError, match="mask must be"):
        cdinn.reconstruct(data.diffraction, mask=np.zeros((16, 16), bool))


def test_more_views_keep_the_best_fitting_estimate_and_improve_the_result():
    """Each frame keeps the view whose estimate fits it best, the pattern itself among them: no frame fits
    worse than with one view, and against the truth (which the choice never sees) the median chi^2 drops."""
    from cdinn.model.scoring import score
    from cdinn.model.test_set import test_set

    data = test_set(120, seed=4)
    chi2 = {}
    for views in (1, 8):
        result = cdinn.reconstruct(data.diffraction, views=views)
        chi2[views] = np.median(score(result.amplitude, result.phase, data)["chi2"])
        if views == 1:
            one = result
    assert np.all(result.fit <= one.fit + 1e-6) and np.median(result.fit) < 0.9 * np.median(one.fit)
    assert chi2[8] < 0.9 * chi2[1]
    refined = cdinn.reconstruct(data.oversampled[:8], refine=3, views=2)  # the refinement starts from the best
    assert np.all(refined.fit_before <= cdinn.reconstruct(data.oversampled[:8], refine=3).fit_before + 1e-6)
    with pytest.raises(CdinnError, match="views must be one of 1, 2, 4, 8"):
        cdinn.reconstruct(data.diffraction, views=3)


def test_views_fit_each_estimate_as_if_alone(patterns):
    """Eight views' estimates of masked patterns: the network pass fits every view's estimate (mapped back)
    exactly as fitting it alone against the patterns does, the centre offset measured once for all of them."""
    from cdinn.host.backends import get_backend
    from cdinn.inversion import network_pass
    from cdinn.model.fit import ExperimentFit, fit_experiment
    from cdinn.model.views import stack_views, unstack_views

    engine = get_backend("onnx", net="edge")
    measured = patterns.diffraction[:6].astype(np.float32)
    mask = np.zeros(measured.shape, bool)
    mask[:, 15:18, 15:18] = True
    mask[:, :, 5] = True
    amplitude, phase = (unstack_views(x, 8) for x in engine.infer(stack_views(measured, 8), stack_views(mask, 8)))
    alone = ExperimentFit.concatenate(
        [
            fit_experiment(complex_object(a, p), measured, mask)
            for a, p in zip(np.split(amplitude, 8), np.split(phase, 8), strict=True)
        ]
    )
    best = alone.error.reshape(8, 6).argmin(axis=0) * 6 + np.arange(6)
    record = network_pass(engine, measured, mask, views=8)
    for name in ExperimentFit.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(record.experiment, name), getattr(alone.take(best), name), name)
    np.testing.assert_array_equal(record.amplitude, amplitude[best])


def test_the_unconstrained_figure_is_that_of_the_objects_returned(patterns):
    """After refinement the figure describes the refined objects; a record's selected frames get the figure of
    exactly those frames, computed once, whether the record had computed it or not."""
    from cdinn.host.backends import get_backend
    from cdinn.inversion import network_pass
    from cdinn.model.constraint import unconstrained

    measured = patterns.diffraction_oversampled[:6].astype(np.float32)
    mask = np.zeros(measured.shape, bool)
    mask[:, 30:34, 30:34] = True  # a beamstop on the 2x grid
    refined = cdinn.reconstruct(measured, mask=mask, net="edge", refine=30)
    assert refined.refined.all() and np.array_equal(refined.unconstrained, unconstrained(refined.amplitude, mask))
    record = network_pass(get_backend("onnx", net="edge"), measured, mask, oversampled=True)
    part = record.take(np.array([1, 3]))
    assert np.array_equal(part.unconstrained, unconstrained(record.amplitude[[1, 3]], mask[[1, 3]]))
    # computed for the whole record instead: the same figures (to float32 rounding, as for any batch)
    assert np.allclose(record.unconstrained[[1, 3]], part.unconstrained, atol=1e-6) and record.unconstrained.min() > 0
    assert np.array_equal(record.take(np.array([0, 5])).unconstrained, record.unconstrained[[0, 5]])
