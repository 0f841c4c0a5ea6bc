from pathlib import Path

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.host.frames import Band
from cdinn.host.preprocess import (
    PreprocessConfig,
    Preprocessor,
    bin_to,
    crop_around,
    default_crop,
    find_centre,
    subtract,
    to_amplitude,
)


def test_subtract_clips_at_zero():
    frame = np.array([[5.0, 1.0], [3.0, 0.0]])
    dark = np.array([[1.0, 2.0], [0.0, 0.0]])
    assert subtract(frame, dark, 1.0).tolist() == [[3.0, 0.0], [2.0, 0.0]]


def test_centre_finders():
    frame = np.zeros((9, 9))
    frame[2, 6] = 10
    frame[3, 6] = 10
    assert find_centre(frame, "max") == (2, 6)
    assert find_centre(frame, "com") == (2, 6) or find_centre(frame, "com") == (3, 6)
    assert find_centre(frame, "frame") == (4, 4)


def test_crop_puts_the_centre_at_the_middle_and_pads_off_detector():
    frame = np.arange(100.0).reshape(10, 10)
    window = crop_around(frame, (1, 8), 4)
    assert window.shape == (4, 4) and window[2, 2] == frame[1, 8]
    assert window[0, 0] == 0 and window[0].sum() == 0  # row -1 is off the detector


def test_binning_conserves_counts_and_default_crop():
    frame = np.random.default_rng(0).poisson(5, (64, 64)).astype(float)
    binned = bin_to(frame, 32)[0]
    assert binned.shape == (32, 32) and binned.sum() == frame.sum() and binned[0, 0] == frame[:2, :2].sum()
    assert default_crop((100, 130), 32) == 96
    with pytest.raises(CdinnError):
        bin_to(np.zeros((40, 40)), 32)


def test_intensities_become_amplitudes():
    assert to_amplitude(np.array([4.0, 9.0]), "intensity").tolist() == [2.0, 3.0]
    assert to_amplitude(np.array([4.0]), "amplitude").tolist() == [4.0]


def test_a_centred_32x32_intensity_frame_passes_through(centred_patterns):
    intensity = centred_patterns.diffraction[0].astype(np.float64) ** 2
    out = Preprocessor(PreprocessConfig(input_kind="intensity"))(intensity)
    assert np.allclose(out, centred_patterns.diffraction[0], rtol=1e-5)


def test_a_large_offset_detector_frame_is_centred_cropped_and_binned(patterns, tmp_path):
    pattern = patterns.diffraction_oversampled[0].astype(np.float64) ** 2  # 64x64 intensities
    detector = np.zeros((100, 120))
    detector[10:74, 40:104] = pattern + 2.0  # peak off-centre, on a flat background of 2 counts
    dark = np.zeros_like(detector)
    dark[10:74, 40:104] = 1.0
    np.save(tmp_path / "dark.npy", dark)
    cfg = PreprocessConfig(
        input_kind="intensity", dark=str(tmp_path / "dark.npy"), background=1.0, crop=64, centre_pixel=(42, 72)
    )
    out = Preprocessor(cfg)(detector)
    expected = np.sqrt(bin_to(pattern, 32)[0])
    assert out.shape == (32, 32) and np.allclose(out, expected, rtol=1e-5)


def test_the_maximum_finds_the_zero_frequency_of_a_real_object():
    obj = np.zeros((64, 64))
    obj[20:30, 25:33] = 1.0
    intensity = np.abs(np.fft.fftshift(np.fft.fft2(obj))) ** 2
    detector = np.zeros((90, 90))
    detector[5:69, 20:84] = intensity
    out = Preprocessor(PreprocessConfig(input_kind="intensity", centre="max", crop=64))(detector)
    assert np.allclose(out, np.sqrt(bin_to(intensity, 32)[0]), rtol=1e-5)


@pytest.mark.parametrize(
    "frame,message",
    [
        (np.full((32, 32), np.nan), "NaN"),
        (-np.ones((32, 32)), "negative"),
        (np.zeros((32, 32)), "all zero"),
        (np.ones((2, 32, 32)), "2-D"),
        (np.ones((32, 32), complex), "real number"),
    ],
)
def test_bad_frames(frame, message):
    with pytest.raises(CdinnError, match=message):
        Preprocessor(PreprocessConfig(input_kind="intensity"))(frame)


def test_frame_empty_after_background_and_bad_configs(tmp_path):
    with pytest.raises(CdinnError, match="empty after"):
        Preprocessor(PreprocessConfig(input_kind="intensity", background=5.0))(np.ones((32, 32)))
    with pytest.raises(CdinnError, match="multiple"):
        PreprocessConfig(input_kind="intensity", crop=40)
    with pytest.raises(CdinnError, match="cannot read dark frame"):
        Preprocessor(PreprocessConfig(input_kind="intensity", dark=str(tmp_path / "missing.npy")))


def test_mask_problems_give_one_line_errors(tmp_path):
    with pytest.raises(CdinnError, match="cannot read mask: input file not found"):
        Preprocessor(PreprocessConfig(input_kind="intensity", mask=str(tmp_path / "missing.npy")))
    np.save(tmp_path / "small.npy", np.zeros((16, 16), np.uint8))
    pre = Preprocessor(PreprocessConfig(input_kind="intensity", mask=str(tmp_path / "small.npy")))
    with pytest.raises(CdinnError, match=r"does not match the mask \(16, 16\)"):
        pre(np.ones((64, 64), np.uint16))
    with pytest.raises(CdinnError, match="no measured pixel"):
        Preprocessor(PreprocessConfig(input_kind="intensity"))(np.full((64, 64), np.iinfo(np.uint16).max, np.uint16))
    frame = np.ones((64, 64), np.float32)
    frame[3, 3] = np.nan
    with pytest.raises(CdinnError, match="NaN or Inf"):
        Preprocessor(PreprocessConfig(input_kind="intensity"))(frame)
    masked = np.zeros((64, 64), bool)
    masked[3, 3] = True
    assert np.isfinite(
        Preprocessor(PreprocessConfig(input_kind="intensity"))(frame, masked)
    ).all()  # a masked NaN is no measurement


def test_a_bad_cluster_spec_is_one_line(tmp_path):
    from cdinn.cli import main

    np.save(tmp_path / "in.npy", np.ones((2, 32, 32), np.float32))
    assert main(["reconstruct", str(tmp_path / "in.npy"), str(tmp_path / "o.h5"), "--cluster", "local:two"]) == 2
    assert not (tmp_path / "o.h5").exists()


REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "aps34idc-au111-scan54"


@pytest.mark.skipif(not REALDATA.is_dir(), reason="needs ../shared/realdata")
def test_measured_peak_binning_auto_and_undersampling_rejected():
    frame = np.load(REALDATA / "raw_stack_S0054.npz")["data"][99]
    centre = (126, 127)
    auto = Preprocessor(PreprocessConfig(input_kind="intensity", centre_pixel=centre))
    prepared = auto.prepare(frame)
    assert auto.binning == 2  # ~3.3x oversampled at full resolution: 2x2 keeps it >= 1.25 on the grid
    assert prepared.amplitude.shape == (32, 32) and 1.25 <= prepared.oversampling < 2.5
    with pytest.raises(CdinnError, match="undersampled: oversampling 0.[0-9]+ .* after 4x4 binning"):
        Preprocessor(PreprocessConfig(input_kind="intensity", centre_pixel=centre, crop=128)).prepare(frame)
    assert (
        Preprocessor(PreprocessConfig(input_kind="intensity", centre_pixel=centre, binning=1))
        .prepare(frame)
        .oversampling
        > 3
    )


def test_beamstop_and_saturation_mark_pixels_without_measurement():
    frame = np.full((64, 64), 10, np.uint32)
    frame[10:12, 10:12] = 5000  # a 2x2 block above the saturation level
    prepared = Preprocessor(PreprocessConfig(input_kind="intensity", beamstop=3.0, saturation=1000, binning=2)).prepare(
        frame
    )
    assert prepared.mask is not None
    assert prepared.mask[16, 16] and prepared.mask[5, 5]  # the 2x2 blocks fully under the beamstop / hot pixel
    assert prepared.mask.sum() < 10
    with pytest.raises(CdinnError, match="beamstop radius"):
        PreprocessConfig(input_kind="intensity", beamstop=-1.0)
    with pytest.raises(CdinnError, match="disagree"):
        PreprocessConfig(input_kind="intensity", crop=64, binning=4)


def test_frames_smaller_than_the_grid_are_rejected_not_padded():
    for shape in ((1, 1), (31, 31), (1, 5000)):
        with pytest.raises(CdinnError, match="smaller than the 32x32 grid"):
            Preprocessor(PreprocessConfig(input_kind="intensity")).prepare(np.ones(shape, np.uint16))


def test_frames_cut_to_their_known_window_first_give_what_the_whole_frame_gives():
    """With the window known before the pixels are read (the frame's middle, the source's or a calibrated
    centre), frames are cut to it before masking and binning: the same amplitudes, grid masks, oversampling and
    rejections as going through the whole frame (here: centring on the maximum, which sits at the middle)."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[-128:128, -128:128]
    peak = 5e4 * np.sinc(yy / 9.0) ** 2 * np.sinc(xx / 7.0) ** 2
    frames = [rng.poisson(peak * s).astype(np.uint32) for s in (1.0, 0.5, 2.0)]
    frames.append(np.zeros((256, 256), np.uint32))  # empty: rejected either way
    frames[0][100, 90] = np.iinfo(np.uint32).max  # a sentinel inside the window
    frames[1][3, 3] = np.iinfo(np.uint32).max  # and one outside it
    mask = np.zeros((256, 256), bool)
    mask[148:156, :] = True  # chip gaps, off the maximum (which then finds the middle), two grid rows wide
    mask[:, 96:98] = True
    window_first = Preprocessor(PreprocessConfig(binning=4))
    whole = Preprocessor(PreprocessConfig(binning=4, centre="max"))
    assert window_first._known_window((256, 256), None) == (64, 64, 128)
    assert whole._known_window((256, 256), None) is None
    cut = window_first.prepare_many(frames, [mask] * 4)
    full = whole.prepare_many([f.copy() for f in frames], [mask] * 4)
    for a, b in zip(cut[:3], full[:3], strict=True):
        assert np.array_equal(a.amplitude, b.amplitude) and a.oversampling == b.oversampling
        assert a.mask is not None and np.array_equal(a.mask, b.mask) and a.mask.sum() == 2 * 32
    assert isinstance(cut[3], CdinnError) and str(cut[3]) == str(full[3])


def test_frames_decoded_in_part_give_what_the_whole_frame_gives_and_must_hold_their_window():
    """A source told :meth:`Preprocessor.window_rows` decodes those rows alone: they give what the whole frame
    gives (detector mask and sentinels included); rows that do not hold the window are a rejection naming it,
    never a pattern made from rows that are not there."""
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[-128:128, -128:128]
    frames = [rng.poisson(5e4 * s * np.sinc(yy / 9.0) ** 2 * np.sinc(xx / 7.0) ** 2).astype(np.uint32) for s in (1, 2)]
    frames[1][100, 90] = np.iinfo(np.uint32).max
    mask = np.zeros((256, 256), bool)
    mask[148:156, :] = True
    pre = Preprocessor(PreprocessConfig(binning=4))
    first, end = pre.window_rows((256, 256), (128.0, 128.0))
    assert (first, end) == (64, 192) and Preprocessor(PreprocessConfig()).window_rows((256, 256), None) is None
    band = Band(first, (256, 256))
    parts = pre.prepare_many([f[first:end] for f in frames], [mask] * 2, [(128.0, 128.0)] * 2, None, [band] * 2)
    whole = pre.prepare_many(frames, [mask] * 2, [(128.0, 128.0)] * 2)
    for a, b in zip(parts, whole, strict=True):
        assert np.array_equal(a.amplitude, b.amplitude) and np.array_equal(a.mask, b.mask)
        assert a.oversampling == b.oversampling
    (wrong,) = pre.prepare_many([frames[0][:128]], [mask], [(128.0, 128.0)], None, [Band(0, (256, 256))])
    assert isinstance(wrong, CdinnError) and "not the crop window (64, 64, 128)" in str(wrong)
