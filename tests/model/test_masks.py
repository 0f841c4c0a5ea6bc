"""Unmeasured pixels (masks, True = no measurement) have no say: not in the fit, not in the refinement's
modulus constraint, not in ER/HIO, not in what the networks see beside the mask itself."""

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object, network_input
from cdinn.model.fit import fit_error
from cdinn.model.phase_retrieval import PhaseRetrievalConfig, phase_retrieve
from cdinn.model.refine import AutoRefineConfig, refine, refine_auto
from cdinn.model.validation import validate_frames


def _mask(shape, seed=0):
    """A 3x3 beamstop at the zero frequency, a 2-pixel gap and 1 % dead pixels."""
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.01
    c = shape[-1] // 2
    mask[..., c - 1 : c + 2, c - 1 : c + 2] = True
    mask[..., 5:7, :] = True
    return mask


def _spoiled(patterns, mask, value=1e6):
    return np.where(mask, np.float32(value), patterns)


def test_the_fit_ignores_unmeasured_pixels(patterns):
    obj = complex_object(patterns.amplitude, patterns.phase)
    for data in (patterns.diffraction, patterns.oversampled):
        mask = _mask(data.shape)
        spoiled = _spoiled(data, mask)
        assert fit_error(obj, spoiled).min() > 0.5  # taken as measured, the spoiled pixels ruin the fit
        assert fit_error(obj, spoiled, mask).max() < 1e-5  # the exact object still fits exactly
        assert np.allclose(fit_error(0.9 * obj, spoiled, mask), fit_error(0.9 * obj, data, mask))
    with pytest.raises(CdinnError, match="one mask per pattern"):
        fit_error(obj, patterns.diffraction, np.zeros((3, 32, 32), bool))


def test_refinement_and_er_hio_apply_the_modulus_constraint_on_measured_pixels_only(patterns):
    over = patterns.oversampled
    mask = _mask(over.shape)
    seed_amp, seed_phase = np.clip(patterns.amplitude * 0.9, 0, 1), patterns.phase
    a1, p1 = refine(seed_amp, seed_phase, over, 20, mask=mask)
    a2, p2 = refine(seed_amp, seed_phase, _spoiled(over, mask), 20, mask=mask)
    assert np.allclose(a1, a2) and np.allclose(p1, p2)
    auto1 = refine_auto(seed_amp, seed_phase, over, AutoRefineConfig(threshold=0.0, max_iterations=20), mask)
    auto2 = refine_auto(
        seed_amp, seed_phase, _spoiled(over, mask), AutoRefineConfig(threshold=0.0, max_iterations=20), mask
    )
    assert np.allclose(auto1.amplitude, auto2.amplitude) and np.allclose(auto1.fit_after, auto2.fit_after)
    cfg = PhaseRetrievalConfig(iterations=30, average_last=5)
    # ER/HIO starts from the measured amplitudes: give both the same values there, spoil only the masked ones
    r1 = phase_retrieve(np.where(mask, 0, over), cfg, mask=mask)
    r2 = phase_retrieve(np.where(mask, 0, _spoiled(over, mask)) + 0, cfg, mask=mask)
    assert np.allclose(r1, r2)


def test_validation_masks_sentinels_and_accepts_anything_at_unmeasured_pixels(patterns):
    counts = np.round(patterns.diffraction[:4] ** 2 * 10).astype(np.uint32)
    counts[:, 0, 0] = np.iinfo(np.uint32).max  # the counting detectors' "no measurement"
    amplitudes, mask = validate_frames(counts, intensity=True)
    assert mask is not None and mask[:, 0, 0].all() and mask.sum() == 4 and (amplitudes[:, 0, 0] == 0).all()
    frames = patterns.diffraction[:4].copy()
    flags = np.zeros((32, 32), bool)
    flags[3, 4] = True
    frames[:, 3, 4] = np.nan
    amplitudes, mask = validate_frames(frames, mask=flags)  # one mask for every frame
    assert mask.shape == (4, 32, 32) and np.isfinite(amplitudes).all()
    with pytest.raises(CdinnError, match="NaN"):
        validate_frames(frames)
    with pytest.raises(CdinnError, match="frame 0 has no measured pixel"):
        validate_frames(frames, mask=np.ones((32, 32)))
    with pytest.raises(CdinnError, match="mask must be"):
        validate_frames(frames, mask=np.zeros((31, 32), bool))


def test_network_input_carries_the_mask_as_a_second_channel(patterns):
    data = patterns.diffraction[:4]
    mask = _mask(data.shape)
    x = network_input(_spoiled(data, mask), mask, channels=2)
    assert x.shape == (4, 32, 32, 2) and np.array_equal(x[..., 1], mask.astype(np.float32))
    assert (x[..., 0][mask] == 0).all() and np.allclose(x[..., 0].max(axis=(1, 2)), 1.0)
    assert np.array_equal(x, network_input(data, mask, channels=2))


def test_one_channel_networks_see_unmeasured_pixels_filled_from_their_neighbours(patterns):
    data = patterns.diffraction[:4]
    mask = _mask(data.shape)
    x = network_input(_spoiled(data, mask), mask, channels=1)[..., 0]
    assert x.shape == (4, 32, 32) and np.array_equal(x, network_input(_spoiled(data, mask, 0.0), mask)[..., 0])
    measured = data / np.where(mask, 0, data).max(axis=(1, 2), keepdims=True)  # the beamstop held the maximum
    assert np.allclose(x[~mask], measured[~mask], rtol=1e-6)
    row, col = np.argwhere(mask[0] & ~np.roll(mask[0], 1, 0) & ~np.roll(mask[0], -1, 0))[0]  # a dead pixel
    neighbours = [(row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)]
    around = [x[0][p] for p in neighbours if 0 <= min(p) and max(p) < 32 and not mask[0][p]]
    assert np.isclose(x[0, row, col], np.mean(around), rtol=1e-6)
    assert np.array_equal(network_input(data, None, channels=1), network_input(data))  # no mask: as given
