"""The experiment forward model: each stage changes a pattern as its docstring states."""

import dataclasses

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.model import forward
from cdinn.model.conventions import complex_object, diffraction_amplitude, subsample_oversampled
from cdinn.model.simulate import broad, simulate
from cdinn.model.train import TrainConfig


@pytest.fixture(scope="module")
def objects():
    batch = simulate(64, seed=3, config=broad())
    return complex_object(batch.amplitude, batch.phase)


def _measure(obj, size=None, seed=0, **effects):
    return forward.measure(obj, forward.fixed(**effects), np.random.default_rng(seed), size)


def test_ideal_model_is_the_coherent_intensity(objects):
    m = _measure(objects)
    assert np.allclose(m.intensity, diffraction_amplitude(objects) ** 2, rtol=1e-4, atol=1e-3)
    assert not m.mask.any()


def test_partial_coherence_and_psf_conserve_total_intensity_and_blur(objects):
    ideal = _measure(objects).intensity
    for effect in ("coherence_sigma", "psf_sigma"):
        blurred = _measure(objects, **{effect: 1.0}).intensity
        assert np.allclose(blurred.sum(axis=(1, 2)), ideal.sum(axis=(1, 2)), rtol=1e-4)
        assert blurred.max(axis=(1, 2)).mean() < 0.9 * ideal.max(axis=(1, 2)).mean()  # fringes washed out
    lorentz = _measure(objects, coherence_sigma=1.0, coherence_kernel="lorentzian").intensity
    assert np.allclose(lorentz.sum(axis=(1, 2)), ideal.sum(axis=(1, 2)), rtol=1e-4)
    assert not np.allclose(lorentz, _measure(objects, coherence_sigma=1.0).intensity, rtol=0.05)


def test_flux_sets_the_total_counts(objects):
    m = _measure(objects, flux=1e5)
    assert np.array_equal(m.intensity, np.round(m.intensity))  # counts
    assert np.allclose(m.intensity.sum(axis=(1, 2)), 1e5, rtol=0.02)
    over = _measure(objects, 64, flux=1e5)  # the flux refers to the network-grid pattern inside it
    assert np.allclose(subsample_oversampled(over.intensity).sum(axis=(1, 2)), 1e5, rtol=0.02)


def test_background_adds_its_fraction_of_the_total_per_pixel(objects):
    ideal = _measure(objects).intensity
    for kind in ("flat", "smooth", "streak"):
        added = _measure(objects, background=1e-3, background_kind=kind).intensity - ideal
        assert np.allclose(added.mean(axis=(1, 2)), 1e-3 * ideal.sum(axis=(1, 2)), rtol=1e-3)
        assert (added >= -1e-3).all()
    flat = _measure(objects, background=1e-3, background_kind="flat").intensity - ideal
    assert np.allclose(flat.std(axis=(1, 2)) / flat.mean(axis=(1, 2)), 0, atol=1e-3)


def test_beamstop_pixels_carry_no_measurement(objects):
    m = _measure(objects, beamstop=1.0, beamstop_shape="square", beamstop_arm=False)
    expected = np.zeros((32, 32), bool)
    expected[15:18, 15:18] = True  # 3x3 around the zero frequency at [16, 16]
    assert (m.mask == expected).all()
    assert (m.intensity[:, expected] == 0).all()
    armed = _measure(objects, beamstop=1.0, beamstop_shape="round", beamstop_arm=True, seed=1)
    assert armed.mask[:, 16, 16].all() and (armed.mask.sum(axis=(1, 2)) >= 5).all()
    longer = armed.mask.sum(axis=(1, 2)) > 5 + 8  # some hang on an arm to the edge
    assert 0 < longer.mean() < 1


def test_gaps_dead_and_hot_pixels_are_masked_and_scale_to_the_oversampled_grid(objects):
    m = _measure(objects, gap_width=2.0, dead_fraction=0.01, hot_fraction=0.002)
    full_rows = m.mask.all(axis=2).sum(axis=1)
    full_cols = m.mask.all(axis=1).sum(axis=1)
    assert (full_rows >= 2).all() and (full_cols >= 2).all()
    dead = m.mask.mean() - (2 * 32 * 2 - 4) / 1024
    assert 0.005 < dead < 0.02
    over = _measure(objects, 64, gap_width=2.0, dead_fraction=0.01)
    assert (over.mask.all(axis=2).sum(axis=1) >= 4).all()  # 2 network pixels = 4 oversampled rows
    assert np.array_equal(over.mask[:, ::2, ::2], over.mask[:, 1::2, 1::2])  # 2x2 blocks


def test_saturation_clips_the_brightest_pixels(objects):
    ideal = _measure(objects).intensity
    clipped = _measure(objects, saturation=0.005).intensity
    level = clipped.max(axis=(1, 2))
    at_level = (clipped == level[:, None, None]).sum(axis=(1, 2))
    assert (at_level >= 5).all() and (at_level <= 7).all()  # 0.5 % of 1024 pixels
    assert np.array_equal(np.minimum(ideal, level[:, None, None]), clipped)


def test_centre_offset_moves_the_pattern(objects):
    def centroid(intensity):
        rows = np.arange(32)[None, :, None]
        return (intensity * rows).sum(axis=(1, 2)) / intensity.sum(axis=(1, 2))

    ideal = _measure(objects).intensity
    shifted = forward.coherent_intensity(objects, 32, np.tile([0.5, 0.0], (len(objects), 1)))
    assert np.median(centroid(shifted) - centroid(ideal)) == pytest.approx(0.5, abs=0.1)
    assert np.allclose(shifted.sum(axis=(1, 2)), ideal.sum(axis=(1, 2)), rtol=1e-3)


def test_readout_noise_only_on_counted_frames(objects):
    quiet = _measure(objects, flux=1e4)
    noisy = _measure(objects, flux=1e4, readout_noise=2.0)
    assert not np.array_equal(quiet.intensity, noisy.intensity) and (noisy.intensity >= 0).all()
    assert np.array_equal(_measure(objects, readout_noise=2.0).intensity, _measure(objects).intensity)


def test_training_model_randomises_effects_per_frame_and_holds_out_kinds(objects):
    rng = np.random.default_rng(5)
    m = forward.measure(np.tile(objects, (8, 1, 1)), forward.ExperimentConfig(), rng)
    for name in ("coherence_sigma", "psf_sigma", "background", "beamstop", "dead_fraction", "saturation"):
        on = (m.parameters[name] > 0).mean()
        assert 0.35 < on < 0.65, name
    assert 0.65 < (m.parameters["flux"] > 0).mean() < 0.85
    flux = m.parameters["flux"][m.parameters["flux"] > 0]
    assert flux.min() >= 1e3 and flux.max() <= 1e7
    assert forward.ExperimentConfig().held_out == []
    for key, value in forward.HELD_OUT_EFFECTS.items():
        held = dataclasses.replace(forward.ExperimentConfig(), **{key: value})
        assert held.held_out == [f"{key}={value}"]
        with pytest.raises(CdinnError, match="held out"):
            TrainConfig(config="edge", simulation=dataclasses.replace(broad(), experiment=held))


def test_simulator_runs_patterns_through_the_model():
    batch = simulate(
        32, seed=2, config=dataclasses.replace(broad(), experiment=forward.ExperimentConfig()), oversampled=True
    )
    assert batch.mask is not None and batch.mask_oversampled is not None
    assert np.array_equal(batch.mask, subsample_oversampled(batch.mask_oversampled))
    assert np.array_equal(batch.diffraction, subsample_oversampled(batch.oversampled))
    assert (batch.diffraction[batch.mask] == 0).all()
    same = simulate(32, seed=2, config=dataclasses.replace(broad(), photons=1e4))
    counted = simulate(32, seed=2, config=dataclasses.replace(broad(), experiment=forward.counting(1e4)))
    assert np.array_equal(same.diffraction, counted.diffraction)


def test_bad_configurations_are_refused():
    for bad in (
        {"flux": (0.0, 1e4)},
        {"probability": 1.5},
        {"coherence_sigma": (1.0, 0.5)},
        {"saturation": (0.0, 0.6)},
        {"beamstop_shape": "hexagon"},
    ):
        with pytest.raises(CdinnError):
            dataclasses.replace(forward.ExperimentConfig(), **bad)
    with pytest.raises(CdinnError, match="unknown experiment"):
        forward.experiment("synchrotron")


def test_blur_kernels_hold_no_subnormal_weights_and_keep_a_lorentzian_tail():
    """Gaussian weights below 1e-12 of the peak are exactly 0 (subnormal floats slowed every product ~30x); a
    Lorentzian's slow tail is kept whole."""
    sigma = np.array([0.25, 0.5, 1.0])
    gaussian = forward._kernel_matrices(sigma, 64, 2, "gaussian")
    tiny = np.finfo(np.float32).tiny
    assert not ((gaussian != 0) & (np.abs(gaussian) < tiny)).any()
    lorentzian = forward._kernel_matrices(sigma, 64, 2, "lorentzian")
    assert (lorentzian > 0).all()  # 32 px from the centre at sigma 0.25 px: 1 / (1 + 128^2) of the peak, kept
    np.testing.assert_allclose(gaussian.sum(axis=1), 1, rtol=1e-6)
