"""The sampling check: oversampling from the autocorrelation, on simulated and measured patterns."""

from pathlib import Path

import numpy as np
import pytest

from cdinn.model.metrics import support
from cdinn.model.sampling import AUTOCORRELATION_THRESHOLD, fill_from_neighbours, oversampling
from cdinn.model.simulate import broad, simulate

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "aps34idc-au111-scan54"


def test_oversampling_follows_the_object_size():
    batch = simulate(200, seed=4, config=broad(position="random"), oversampled=True)
    sigma = oversampling(batch.oversampled**2)  # on the 64 grid: resolved from 2 up
    width = np.array([support(a).any(axis=1).sum() for a in batch.amplitude])
    assert np.corrcoef(sigma[:, 0], 64 / width)[0, 1] > 0.85
    assert (sigma >= 2).all()  # every training object fits the network grid at least once over
    on_grid = oversampling(batch.diffraction**2)  # the 32-grid pattern: only >= 2 is resolved
    assert (on_grid > 1.9).all()


def test_binning_divides_the_oversampling():
    batch = simulate(50, seed=5, config=broad(position="random"), oversampled=True)
    intensity = batch.oversampled.astype(np.float64) ** 2
    fine = np.repeat(np.repeat(intensity, 4, axis=1), 4, axis=2)  # a detector 4x finer than the 64 grid
    ratio = oversampling(fine) / oversampling(intensity)
    assert np.median(ratio) == pytest.approx(4, rel=0.15)


@pytest.mark.skipif(not REALDATA.is_dir(), reason="needs ../shared/realdata")
def test_the_measured_au_peak_is_about_3_to_4_times_oversampled():
    frame = np.load(REALDATA / "raw_stack_S0054.npz")["data"][99].astype(np.float64)
    window = frame[126 - 64 : 126 + 64, 127 - 64 : 127 + 64]
    sigma = oversampling(window[None])[0]
    assert 3.0 < sigma.min() and sigma.max() < 4.5  # shared/realdata/README: about 3.9 x 3.3
    binned = window.reshape(32, 4, 32, 4).sum(axis=(1, 3))
    assert oversampling(binned[None])[0].max() < 2  # binned 4x4 it no longer resolves: undersampled


def test_a_shared_mask_is_filled_by_its_plan_exactly_as_round_by_round():
    """The plan (found breadth first, once per mask) fills exactly as the rounds over the whole grid do."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        size = (8, 32, 64)[trial % 3]
        values = rng.random((3, size, size)) * 100
        empty = rng.random((1, size, size)) < (0.0, 0.02, 0.3, 0.9, 1.0)[trial % 5]
        if trial % 4 == 0:
            empty[0, size // 2 - 2 : size // 2 + 2, :] = True  # a gap four rows wide
        if trial % 6 == 1:
            empty[0, : size // 3, : size // 2] = True  # a window reaching off the detector: many rounds
        per_frame = np.repeat(empty, len(values), axis=0)  # one mask per frame: filled round by round
        assert np.array_equal(fill_from_neighbours(values, empty), fill_from_neighbours(values, per_frame))


def test_the_real_transform_gives_the_full_transforms_oversampling():
    import scipy.fft

    batch = simulate(200, seed=11, config=broad(position="random"), oversampled=True)
    for intensity in (batch.oversampled**2, batch.diffraction**2):
        auto = np.fft.fftshift(np.abs(scipy.fft.ifft2(np.fft.ifftshift(intensity, axes=(1, 2)))), axes=(1, 2))
        above = auto > AUTOCORRELATION_THRESHOLD * auto.max(axis=(1, 2), keepdims=True)
        extent = np.stack([above.any(axis=2).sum(axis=1), above.any(axis=1).sum(axis=1)], axis=1)
        assert np.array_equal(oversampling(intensity), 2.0 * intensity.shape[-1] / (extent + 1.0))
