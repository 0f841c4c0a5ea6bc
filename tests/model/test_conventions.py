import numpy as np

from cdinn.model.conventions import (
    complex_object,
    crop_centred,
    diffraction_amplitude,
    normalise_amplitude,
    pad_centred,
    phase_to_unit,
    subsample_oversampled,
    twin,
    unit_to_phase,
    wrap_phase,
)


def test_zero_frequency_is_at_the_centre_pixel(rng):
    obj = rng.random((2, 32, 32)).astype(np.float32)
    amp = diffraction_amplitude(obj)
    assert np.allclose(amp[:, 16, 16], obj.sum(axis=(1, 2)), rtol=1e-5)
    assert amp.dtype == np.float32


def test_oversampled_pattern_contains_the_network_pattern(rng):
    obj = complex_object(rng.random((3, 32, 32)), rng.uniform(-np.pi, np.pi, (3, 32, 32)))
    big = diffraction_amplitude(pad_centred(obj, 64))
    assert np.allclose(subsample_oversampled(big), diffraction_amplitude(obj), rtol=1e-4, atol=1e-3)
    assert np.array_equal(crop_centred(pad_centred(obj, 64), 32), obj)


def test_twin_has_the_same_diffraction_and_is_an_involution(rng):
    obj = complex_object(rng.random((2, 32, 32)), rng.uniform(-np.pi, np.pi, (2, 32, 32)))
    assert np.allclose(diffraction_amplitude(twin(obj)), diffraction_amplitude(obj), rtol=1e-4, atol=1e-3)
    assert np.array_equal(twin(twin(obj)), obj)
    assert not np.allclose(twin(obj), obj)


def test_phase_unit_mapping_round_trips_and_puts_zero_at_one_half():
    phase = np.linspace(-np.pi, np.pi, 11)
    assert np.allclose(unit_to_phase(phase_to_unit(phase)), phase, atol=1e-6)
    assert phase_to_unit(np.zeros(1))[0] == 0.5
    assert np.allclose(wrap_phase(np.array([3 * np.pi / 2, -3 * np.pi / 2])), [-np.pi / 2, np.pi / 2])


def test_normalisation_is_scale_free(rng):
    amp = rng.random((4, 32, 32))
    assert np.allclose(normalise_amplitude(amp), normalise_amplitude(amp * 1e6), rtol=1e-6)
    assert np.allclose(normalise_amplitude(amp).max(axis=(1, 2)), 1.0)
