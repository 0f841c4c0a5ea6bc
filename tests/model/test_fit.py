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


def test_the_fit_finds_where_the_beam_centre_is_off_the_grid(rng):
    """Patterns of objects without a phase gradient sampled a known offset off the pixel centre (the forward
    model's beam-centre offset; sub-pixel and whole pixels): the fit's centre offset finds it (network-grid
    pixels, on the oversampled grid too); with a beamstop and a gap masked, close to it; a centred pattern
    reads 0."""
    from cdinn.model import forward
    from cdinn.model.fit import fit_experiment
    from cdinn.model.simulate import broad, simulate

    batch = simulate(200, seed=4, config=broad(position="random"))
    obj = batch.amplitude.astype(np.complex64)  # real: q and -q carry the same intensity
    offset = rng.uniform(-0.5, 0.5, (len(obj), 2)) + rng.integers(-2, 3, (len(obj), 2))
    for size in (32, 64):
        measured = np.sqrt(forward.coherent_intensity(obj, size, offset))  # offsets in network-grid pixels
        mask = np.zeros(measured.shape, bool)
        mask[:, size // 2 - 1 : size // 2 + 2, size // 2 - 1 : size // 2 + 2] = True  # a 3x3 beamstop
        mask[:, :, size // 4] = True  # a gap on one side only
        found = fit_experiment(obj, measured).centre_offset
        assert found.shape == (len(obj), 2) and found.dtype == np.float32
        assert np.abs(found - offset).max() < 1e-3  # a real object's pattern is symmetric about its centre
        # masked pixels leave pairs out: measured here, median 0.09 / 95th percentile 0.38 pixels on the 32 grid
        # (a 3x3 beamstop is most of the centre), 0.011 / 0.06 on the 64 grid
        error = np.abs(fit_experiment(obj, measured, mask).centre_offset - offset)
        assert np.median(error) < 0.03 * 128 / size and np.percentile(error, 95) < 0.12 * 128 / size, (
            size,
            np.percentile(error, [50, 95]),
        )
    assert (
        np.abs(fit_experiment(obj, np.sqrt(forward.coherent_intensity(obj, 32, 0 * offset))).centre_offset).max() < 1e-4
    )
