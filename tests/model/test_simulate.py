import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object, diffraction_amplitude, subsample_oversampled
from cdinn.model.phase_fields import centre_of_mass
from cdinn.model.simulate import SimulationConfig, convex_hull_masks, simulate, simulate_many


def test_shapes_dtypes_and_ranges(centred_patterns):
    b = centred_patterns
    for arr in (b.diffraction, b.amplitude, b.phase):
        assert arr.shape == (64, 32, 32) and arr.dtype == np.float32
    assert b.amplitude.min() >= 0 and b.amplitude.max() <= 1
    assert np.abs(b.phase).max() <= np.pi + 1e-6
    assert (b.amplitude.max(axis=(1, 2)) > 0.5).all()
    # phase is zero outside the object
    assert np.all(b.phase[b.amplitude < 1e-3] == 0)
    # the phase is not trivially flat: peak-to-peak spans a range of values
    ptp = np.ptp(np.where(b.amplitude > 0.5, b.phase, 0), axis=(1, 2))
    assert ptp.max() > 3.0 and ptp.min() >= 0


def test_stored_diffraction_is_the_fourier_amplitude_of_the_stored_object(centred_patterns):
    b = centred_patterns
    expected = diffraction_amplitude(complex_object(b.amplitude, b.phase))
    assert np.allclose(b.diffraction, expected, rtol=1e-4, atol=1e-3)


def test_reproducible_from_the_seed():
    a, b, c = simulate(8, 3), simulate(8, 3), simulate(8, 4)
    assert np.array_equal(a.diffraction, b.diffraction)
    assert not np.array_equal(a.diffraction, c.diffraction)
    assert np.array_equal(simulate_many(30, 9, chunk=10).phase, simulate_many(30, 9, chunk=10).phase)


def test_centred_objects_have_their_centre_of_mass_at_the_grid_centre(centred_patterns):
    com = centre_of_mass(centred_patterns.amplitude > 1e-2)
    offset = np.abs(com - 16).max(axis=1)
    assert np.median(offset) < 0.5 and offset.max() < 2.5


def test_random_positions_spread_the_objects(patterns):
    com = centre_of_mass(patterns.amplitude > 1e-2)
    assert np.abs(com - 16).max() > 3


def test_convex_hull_of_a_square_is_the_square():
    pts = np.array([[[4.0, 4.0], [4.0, 10.0], [10.0, 10.0], [10.0, 4.0], [7.0, 7.0]]])
    mask = convex_hull_masks(pts, 16)[0]
    expected = np.zeros((16, 16), bool)
    expected[4:11, 4:11] = True
    assert np.array_equal(mask, expected)


def test_grid_size_64_is_supported():
    b = simulate(4, 0, SimulationConfig(size=64), oversampled=True)
    assert b.diffraction.shape == (4, 64, 64) and b.diffraction_oversampled.shape == (4, 128, 128)


def test_poisson_noise_has_the_requested_photon_count_and_integer_intensities():
    b = simulate(6, 2, SimulationConfig(photons=1e5), oversampled=True)
    intensity = b.diffraction.astype(np.float64) ** 2
    assert np.allclose(intensity.sum(axis=(1, 2)), 1e5, rtol=0.02)
    assert np.allclose(intensity, np.round(intensity), atol=1e-2)
    assert np.array_equal(subsample_oversampled(b.diffraction_oversampled), b.diffraction)


@pytest.mark.parametrize("kwargs", [dict(size=31), dict(max_phase_ptp=7.0), dict(photons=0.0), dict(position="left")])
def test_bad_configurations_are_rejected(kwargs):
    with pytest.raises(CdinnError):
        SimulationConfig(**kwargs)


def test_hulls_clipped_into_slivers_by_placement_are_redrawn_and_nothing_else_changes():
    from cdinn.model.simulate import _place, _placed_supports, _random_supports, _too_thin, convex_hull_masks

    cfg = SimulationConfig(position="random")
    rng = np.random.default_rng(4)
    naive = _place(rng, *_random_supports(rng, 5000, cfg), cfg)
    fixed, masks = _placed_supports(np.random.default_rng(4), 5000, cfg)
    assert np.array_equal(masks, convex_hull_masks(fixed, cfg.size))
    thin = _too_thin(convex_hull_masks(naive, cfg.size), cfg)
    assert thin.sum() > 10  # placement does clip some hulls into slivers ...
    assert not _too_thin(convex_hull_masks(fixed, cfg.size), cfg).any()  # ... and those are replaced
    assert np.array_equal(naive[~thin], fixed[~thin])
    assert (simulate(2000, 4, cfg).diffraction.max(axis=(1, 2)) > 0).all()


def test_broad_distribution_covers_strong_phase_and_small_objects():
    from cdinn.model.regimes import mean_phase_gradient, object_size
    from cdinn.model.simulate import broad

    batch = simulate(2000, 21, broad(position="random"))
    gradient = mean_phase_gradient(batch.amplitude, batch.phase)
    size = object_size(batch.amplitude)
    assert gradient.max() > 1.8 and np.mean(gradient > 1.0) > 0.08  # up to ~2 rad/px, strong phase well covered
    assert np.median(gradient) > 0.3
    assert size.min() < 25 and np.mean(size < 50) > 0.2 and size.max() > 400  # ~20 px to about half the grid
    ptp = np.ptp(np.where(batch.amplitude > 0.1, batch.phase, 0), axis=(1, 2))
    assert ptp.max() > 6.0
    assert np.isfinite(batch.diffraction).all() and (batch.diffraction.max(axis=(1, 2)) > 0).all()


@pytest.mark.parametrize("family", ["zernike", "defect", "noise"])
def test_held_out_phase_families(family):
    from cdinn.model.simulate import broad

    base = simulate(64, 4, broad(position="random"))
    held = simulate(64, 4, broad(position="random", phase_family=family))
    assert np.array_equal(held.amplitude, base.amplitude)  # same objects, another phase field
    assert not np.allclose(held.phase, base.phase)
    assert np.abs(held.phase).max() <= np.pi + 1e-6 and (held.phase[held.amplitude < 1e-3] == 0).all()
    expected = diffraction_amplitude(complex_object(held.amplitude, held.phase))
    assert np.allclose(held.diffraction, expected, rtol=1e-4, atol=1e-3)


def test_training_refuses_held_out_families():
    from cdinn.model.simulate import HELD_OUT_FAMILIES, broad
    from cdinn.model.train import TrainConfig

    assert "gratings" not in HELD_OUT_FAMILIES
    for family in HELD_OUT_FAMILIES:
        with pytest.raises(CdinnError, match="held out"):
            TrainConfig(simulation=broad(phase_family=family))
