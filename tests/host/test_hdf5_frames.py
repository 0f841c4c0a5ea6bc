"""Detector files as an Eiger FileWriter writes them (NXmx master + data files, uint32, bitshuffle/LZ4
chunks per frame, pixel mask, beam centre), read by the runner's file source."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from cdinn.api import reconstruct
from cdinn.cli import main
from cdinn.errors import CdinnError
from cdinn.host.backends import get_backend
from cdinn.host.batch_input import detector_preprocessor, iter_patterns
from cdinn.host.dectris import bslz4_decompress
from cdinn.host.distributed import _frames as chunk_frames
from cdinn.host.distributed import plan
from cdinn.host.front import ThreadFront
from cdinn.host.hdf5_frames import Hdf5Frames
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.host.runner import STAGES, Runner
from cdinn.host.sources import FileSource, read_stack
from cdinn.host.writer import RunWriter
from cdinn.io import nexus_default_dataset
from cdinn.model.conventions import complex_object
from cdinn.model.metrics import reconstruction_metrics

CDINN = str(Path(sys.executable).with_name("cdinn"))
SIDE, K = 256, 8  # detector pixels; the 32x32 pattern is spread over 8x8 pixel blocks (256 / 32)
CENTRE = (120, 136)  # beam centre (row, col) on the detector
SENTINEL = np.iinfo(np.uint32).max


def _detector_frames(patterns, photons=1e9):
    """(N, 256, 256) uint32 counts: each pattern's intensity spread over 8x8 blocks, the zero frequency at
    CENTRE (off the frame's middle, as on a real detector)."""
    intensity = patterns.diffraction.astype(np.float64) ** 2
    intensity *= photons / intensity.sum(axis=(1, 2), keepdims=True)
    big = np.repeat(np.repeat(intensity / K**2, K, axis=1), K, axis=2)
    frames = np.zeros((len(big), SIDE, SIDE))
    r0, c0 = CENTRE[0] - SIDE // 2, CENTRE[1] - SIDE // 2  # detector pixel of the window's corner
    rows = slice(max(r0, 0), min(r0 + SIDE, SIDE))
    cols = slice(max(c0, 0), min(c0 + SIDE, SIDE))
    frames[:, rows, cols] = big[:, rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]
    return np.round(frames).astype(np.uint32)


def _gaps():
    """A chip gap (rows 100-105 and columns 60-62) and a few dead pixels, as a pixel mask (nonzero = bad)."""
    mask = np.zeros((SIDE, SIDE), np.uint32)
    mask[100:106, :] = 1
    mask[:, 60:63] = 1
    mask[[5, 77, 200], [9, 150, 33]] = 2
    return mask


def write_eiger(
    folder: Path, frames: np.ndarray, per_file: int, mask=None, missing: int | None = None, default_signal: bool = False
) -> Path:
    """An NXmx master and its data files (FileWriter v1 layout); ``missing``: a data file not written."""
    folder.mkdir(parents=True, exist_ok=True)
    master = folder / "series_master.h5"
    with h5py.File(master, "w") as fh:
        entry = fh.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        det = fh.create_group("entry/instrument/detector")
        det["beam_center_x"] = float(CENTRE[1])
        det["beam_center_y"] = float(CENTRE[0])
        if mask is not None:
            det.create_dataset("detectorSpecific/pixel_mask", data=mask)
        for i, start in enumerate(range(0, len(frames), per_file)):
            name = f"series_data_{i + 1:06d}.h5"
            data[f"data_{i + 1:06d}"] = h5py.ExternalLink(name, "/entry/data/data")
            if i == missing:
                continue
            block = frames[start : start + per_file]
            with h5py.File(folder / name, "w") as dfh:
                d = dfh.create_dataset(
                    "entry/data/data", data=block, chunks=(1, SIDE, SIDE), **hdf5plugin.Bitshuffle(cname="lz4")
                )
                d.attrs["image_nr_low"] = start + 1
                d.attrs["image_nr_high"] = start + len(block)
        if default_signal:
            fh.attrs["default"] = "entry"
            entry.attrs["default"] = "data"
            data.attrs["signal"] = "data_000001"
    return master


def _run(spec, out, net="edge", pre=None):
    backend = get_backend("onnx", net=net)
    pre = pre or PreprocessConfig(input_kind="intensity")
    writer = RunWriter(out, backend.provenance(), pre.as_dict())
    runner = Runner(ThreadFront(FileSource(spec), Preprocessor(pre), max_batch=8), backend, writer, progress=False)
    return runner, runner.run()


def test_a_master_alone_means_all_its_data_files_in_order(tmp_path, patterns):
    frames = _detector_frames(patterns)
    master = write_eiger(tmp_path / "eiger", frames, per_file=10)
    with h5py.File(tmp_path / "eiger" / "series_data_000001.h5") as fh:
        assert "32008" in fh["entry/data/data"]._filters  # bitshuffle (HDF5 filter 32008) with LZ4
    reader = Hdf5Frames(master)
    items = list(reader.iter(0))
    assert [f.number for f in items] == list(range(1, 25)) and reader.ended_normally
    assert all(np.array_equal(f.data, frames[f.number - 1]) for f in items)
    assert reader.info.beam_centre == CENTRE
    runner, summary = _run(str(master), tmp_path / "out.h5")
    assert summary["written"] == 24 and summary["rejected"] == 0 and runner.source_ok
    with h5py.File(tmp_path / "out.h5") as fh:
        assert sorted(fh["frame_number"][()].tolist()) == list(range(1, 25)) and fh.attrs["complete"]
        amplitude = fh["amplitude"][()][np.argsort(fh["frame_number"][()])]
        # NeXus: viewers find the amplitude by default
        assert nexus_default_dataset(fh) == "/entry/reconstruction/amplitude"
        assert fh["entry/reconstruction"].attrs["NX_class"] == "NXdata" and fh["phase"].attrs["units"] == "rad"
    # the beam centre from the metadata puts the zero frequency where the networks expect it: same result as
    # the 32x32 patterns given directly (binning 8x8 blocks of the spread intensity gives them back)
    direct = reconstruct(patterns.diffraction, net="edge")
    assert np.abs(amplitude - direct.amplitude).max() < 0.02


@pytest.mark.parametrize("compression", ["bslz4", "lz4"])
def test_a_file_source_decodes_the_rows_its_consumer_asked_for(tmp_path, patterns, compression):
    """Told the rows its consumer uses (asked with the frame's shape and the file's beam centre), the file
    source decodes bitshuffle-LZ4 chunks' rows alone and says where they lie; LZ4 chunks come whole."""
    frames = _detector_frames(patterns)[:6]
    path = tmp_path / "frames.h5"
    filters = hdf5plugin.Bitshuffle(cname="lz4") if compression == "bslz4" else hdf5plugin.LZ4()
    with h5py.File(path, "w") as fh:
        fh.create_dataset("entry/data/data", data=frames, chunks=(1, SIDE, SIDE), **filters)
        fh["entry/instrument/detector/beam_center_x"], fh["entry/instrument/detector/beam_center_y"] = 130.0, 90.0
    calls = []

    def wanted(shape, centre):
        calls.append((shape, centre))
        return 26, 154

    source = FileSource(str(path))
    source.wanted_rows = wanted
    items = list(source)
    assert calls[0] == ((SIDE, SIDE), (90.0, 130.0)) and len(calls) == len(frames) == len(items)
    for item, frame in zip(items, frames, strict=True):
        assert item.shape == (SIDE, SIDE)
        if compression == "bslz4":
            assert item.band == (26, (SIDE, SIDE)) and np.array_equal(item.data, frame[26:154])
        else:
            assert item.band is None and np.array_equal(item.data, frame)


def test_reconstruct_reads_only_the_crop_window_rows_of_detector_frames(tmp_path, patterns):
    """`cdinn reconstruct`'s file path (:func:`iter_patterns`) has the file source decode the window's rows of
    bitshuffle-LZ4 chunks alone: the patterns equal those of the same frames stored uncompressed (read whole by
    HDF5), and a chunk damaged past the window's rows (bytes appended after its last block, which decoding the
    whole frame refuses) is read as the others are: those rows are never looked at."""
    frames = _detector_frames(patterns)[:12]
    master = write_eiger(tmp_path / "eiger", frames, per_file=12, mask=_gaps())
    data = tmp_path / "eiger" / "series_data_000001.h5"
    with h5py.File(data, "r+") as fh:
        d = fh["entry/data/data"]
        d.id.write_direct_chunk((3, 0, 0), d.id.read_direct_chunk((3, 0, 0))[1] + bytes(16))
    with h5py.File(data) as fh, pytest.raises(ValueError, match="does not match its 32 block sizes"):
        bslz4_decompress(fh["entry/data/data"].id.read_direct_chunk((3, 0, 0))[1], 4)
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as fh:
        fh.create_dataset("entry/data/data", data=frames, chunks=(1, SIDE, SIDE))
        det = fh.create_group("entry/instrument/detector")
        det["beam_center_x"], det["beam_center_y"] = float(CENTRE[1]), float(CENTRE[0])
        det["pixel_mask"] = _gaps()
    pre = PreprocessConfig(input_kind="intensity", binning=4)
    (rows,) = iter_patterns(str(master), 32, detector_preprocessor(pre, 32))
    (whole,) = iter_patterns(str(plain), 32, detector_preprocessor(pre, 32))
    assert len(rows.patterns) == len(whole.patterns) == 12 and not rows.rejected
    for name in ("patterns", "mask", "oversampling"):
        np.testing.assert_array_equal(getattr(rows, name), getattr(whole, name))


def test_chip_gaps_and_dead_pixels_cost_almost_nothing(tmp_path, patterns):
    frames = _detector_frames(patterns)
    mask = _gaps()
    gappy = frames.copy()
    gappy[:, mask != 0] = SENTINEL
    master = write_eiger(tmp_path / "eiger", gappy, per_file=24, mask=mask)
    _, summary = _run(str(master), tmp_path / "out.h5")
    assert summary["rejected"] == 0 and summary["written"] == 24
    with h5py.File(tmp_path / "out.h5") as fh:
        order = np.argsort(fh["frame_number"][()])
        amplitude, phase = fh["amplitude"][()][order], fh["phase"][()][order]
    masked = reconstruction_metrics(complex_object(amplitude, phase), patterns.amplitude, patterns.phase)
    clean = reconstruct(patterns.diffraction, net="edge")
    ref = reconstruction_metrics(complex_object(clean.amplitude, clean.phase), patterns.amplitude, patterns.phase)
    assert np.median(masked["support_iou"]) > np.median(ref["support_iou"]) - 0.03
    # without the mask handling the sentinels (4.3e9 counts) would dominate the pattern
    raw = Preprocessor(PreprocessConfig(input_kind="intensity", centre_pixel=CENTRE))
    assert np.isclose(raw(gappy[0], mask != 0).max(), raw(frames[0]).max(), rtol=0.2)


def test_cdinn_run_reports_what_each_stage_cost_a_frame(tmp_path, patterns, capsys):
    """Decoding (bitshuffle-LZ4 chunks), validation with the pixel mask, binning, inference, the fit and the
    write each cost something, and `cdinn run` says how much, as the output's timing records it; the thread
    front end reports the same stages."""
    frames = _detector_frames(patterns)
    master = write_eiger(tmp_path / "eiger", frames, per_file=12, mask=_gaps())
    code = main(["run", "--source", str(master), "--input-kind", "intensity", "--out", str(tmp_path / "p.h5")])
    printed = capsys.readouterr().out.split("us/frame: ")[1].split(" -> ")[0]
    per_frame = {name: float(value) for name, value in (part.split() for part in printed.split(", "))}
    assert code == 0 and tuple(per_frame) == STAGES and all(v > 0 for v in per_frame.values())
    with h5py.File(tmp_path / "p.h5") as fh:
        seconds = json.loads(fh.attrs["timing"])["stage_seconds"]
    # printed in whole microseconds a frame; the record keeps the run's totals to the microsecond
    assert tuple(seconds) == STAGES
    assert all(abs(1e6 * seconds[k] / 24 - per_frame[k]) <= 0.55 for k in STAGES), (seconds, per_frame)
    _, summary = _run(str(master), tmp_path / "t.h5")
    assert tuple(summary["stage_us_per_frame"]) == STAGES and all(summary["stage_us_per_frame"].values())


@pytest.mark.parametrize(
    "fill, net", [(SENTINEL, "default"), (0, "default"), (SENTINEL, "edge")], ids=["sentinel", "zero", "one-channel"]
)
def test_the_nxmx_pixel_mask_reaches_the_networks_as_the_api_gives_it(tmp_path, patterns, fill, net):
    """Gap pixels holding the sentinel (found in every frame) or 0 (the pixel mask alone, one for all frames);
    the runner's result equals the API's on the same grid pattern and mask, for the mask-input networks and for
    one-channel ones (which see unmeasured pixels filled from their neighbours in both)."""
    frames = _detector_frames(patterns)
    mask = np.zeros((SIDE, SIDE), np.uint32)
    mask[96:112, :] = 1  # a 16-row gap: two whole rows of the 32x32 grid (8x8 blocks) carry no measurement
    gappy = frames.copy()
    gappy[:, mask != 0] = fill
    master = write_eiger(tmp_path / "eiger", gappy, per_file=24, mask=mask)
    # --bin 8: a gap this wide next to the beam biases the first frame's sampling estimate low (docs)
    _, summary = _run(
        str(master), tmp_path / "out.h5", net=net, pre=PreprocessConfig(input_kind="intensity", binning=8)
    )
    assert summary["written"] == 24
    with h5py.File(tmp_path / "out.h5") as fh:
        order = np.argsort(fh["frame_number"][()])
        amplitude = fh["amplitude"][()][order]
        masked_fraction = fh["masked_fraction"][()]
        hidden = fh["unconstrained"][()][order]
    prepared = Preprocessor(PreprocessConfig(input_kind="intensity", binning=8)).prepare(gappy[0], mask != 0, CENTRE)
    # the window (zero frequency at CENTRE) starts 8 rows above the detector: detector rows 96-111 are its
    # rows 104-119, grid rows 13 and 14; its first grid row and last grid column lie off the detector
    assert prepared.mask is not None and prepared.mask[[0, 13, 14]].all() and prepared.mask[:, 31].all()
    assert np.allclose(masked_fraction, prepared.mask.mean())
    direct = reconstruct(prepared.amplitude, mask=prepared.mask, net=net)  # the API with the same grid mask
    assert np.abs(amplitude[0] - direct.amplitude).max() < 1e-5
    assert hidden[0] == pytest.approx(float(direct.unconstrained), abs=1e-3) and hidden[0] > 0.5  # two whole rows
    unmasked = reconstruct(prepared.amplitude, net=net)  # the same pattern, its gap taken as measured
    assert np.abs(unmasked.amplitude - direct.amplitude).max() > 0.05


def test_a_missing_middle_data_file_is_rejected_and_the_next_ones_are_still_read(tmp_path, patterns):
    frames = _detector_frames(patterns)
    master = write_eiger(tmp_path / "eiger", frames, per_file=10, missing=1)
    runner, summary = _run(str(master), tmp_path / "out.h5")
    assert summary["written"] == 14 and summary["rejected"] == 1 and not runner.source_ok and not runner.complete
    with h5py.File(tmp_path / "out.h5") as fh:
        assert not fh.attrs["complete"] and fh["amplitude"].shape[0] == 14
        assert fh["frame_number"][:].tolist() == [*range(1, 11), *range(21, 25)]  # the detector's numbers
        reason = fh["rejected/reason"][0].decode()
        assert "series_data_000002.h5" in reason
    out = tmp_path / "cli.h5"
    run = subprocess.run(
        [CDINN, "run", "--source", str(master), "--out", str(out), "--net", "edge", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "did not reach its own end" in run.stderr.strip().splitlines()[-1]
    with h5py.File(out) as fh:
        assert fh["amplitude"].shape[0] == 14 and json.loads(fh.attrs["counts"])["written"] == 14
    partial = subprocess.run(
        [
            CDINN,
            "run",
            "--source",
            str(master),
            "--out",
            str(tmp_path / "partial.h5"),
            "--net",
            "edge",
            "--quiet",
            "--allow-partial",
        ],
        capture_output=True,
        text=True,
    )
    assert partial.returncode == 0, partial.stderr
    with h5py.File(tmp_path / "partial.h5") as fh:
        assert not fh.attrs["complete"]


def test_an_eiger_data_file_given_alone_is_read_by_its_layout(tmp_path, patterns):
    frames = _detector_frames(patterns)
    write_eiger(tmp_path / "eiger", frames, per_file=10)
    items = list(FileSource(str(tmp_path / "eiger" / "series_data_000002.h5")))
    assert [f.number for f in items] == list(range(11, 21))  # image_nr_low, as the detector numbered them
    assert np.array_equal(np.stack([f.data for f in items]), frames[10:20])


def test_the_nexus_default_signal_is_followed_through_an_external_link(tmp_path, patterns):
    frames = _detector_frames(patterns)
    master = write_eiger(tmp_path / "eiger", frames, per_file=24, default_signal=True)
    with h5py.File(master) as fh:
        assert nexus_default_dataset(fh) == "/entry/data/data_000001"
    items = list(FileSource(str(master)))
    assert len(items) == 24 and items[0].number == 1


def test_every_frame_rejected_exits_non_zero(tmp_path):
    np.save(tmp_path / "zeros.npy", np.zeros((3, 32, 32), np.float32))
    run = subprocess.run(
        [
            CDINN,
            "run",
            "--source",
            str(tmp_path / "zeros.npy"),
            "--out",
            str(tmp_path / "o.h5"),
            "--net",
            "edge",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "no frame was reconstructed" in run.stderr


def test_an_empty_block_holds_no_measurement_and_is_in_the_grid_mask():
    from cdinn.host.preprocess import bin_to

    rows, cols = np.indices((64, 64))
    frame = (3.0 * rows + 2.0 * cols).astype(np.float64)
    valid = np.ones_like(frame, bool)
    valid[20:24, 40:44] = False  # blocks (10, 20), (10, 21), (11, 20), (11, 21) of the 2x2 binning
    valid[0:4, 0:1] = False  # half of blocks (0, 0) and (1, 0): scaled up from the valid half
    binned, missing = bin_to(frame, 32, valid)
    expected = bin_to(frame, 32)[0]
    assert missing is not None and np.argwhere(missing).tolist() == [[10, 20], [10, 21], [11, 20], [11, 21]]
    assert (binned[missing] == 0).all()
    assert binned[0, 0] == 4 * (frame[0, 1] + frame[1, 1]) / 2 and binned[1, 0] == 4 * (frame[2, 1] + frame[3, 1]) / 2
    whole = ~missing
    whole[0:2, 0] = False
    assert np.array_equal(binned[whole], expected[whole])  # blocks with every pixel valid are untouched


def test_a_detector_gap_wider_than_a_block_masks_grid_pixels_of_every_frame():
    """One detector mask shared by a stack of frames (an Eiger's pixel_mask) that leaves whole grid blocks
    without a measurement: every frame gets the grid mask, none is lost."""
    from cdinn.host.preprocess import PreprocessConfig, Preprocessor

    gap = np.zeros((64, 64), bool)
    gap[30:34, :] = True  # 4 rows: two whole rows of 2x2 blocks
    frames = [np.random.default_rng(i).poisson(50, (64, 64)).astype(np.uint32) for i in range(3)]
    prepared = Preprocessor(PreprocessConfig(binning=2)).prepare_many(frames, [gap] * 3)
    assert [type(p).__name__ for p in prepared] == ["Prepared"] * 3
    for p in prepared:
        assert p.mask is not None and p.mask[15:17].all() and p.mask.sum() == 64 and (p.amplitude[p.mask] == 0).all()


def test_beam_centres_as_area_detector_writes_them_and_bad_ones(tmp_path, patterns, capsys):
    from cdinn.cli import main
    from cdinn.errors import CdinnError
    from cdinn.host.hdf5_frames import detector_info

    master = write_eiger(tmp_path / "eiger", _detector_frames(patterns), per_file=24)
    with h5py.File(master, "a") as fh:  # NDAttributes: one value per frame, a 1-element array for one frame
        det = fh["entry/instrument/detector"]
        del det["beam_center_x"], det["beam_center_y"]
        det["beam_center_x"] = np.full(24, float(CENTRE[1]))
        det["beam_center_y"] = np.array([float(CENTRE[0])])
    with h5py.File(master) as fh:
        assert detector_info(fh).beam_centre == CENTRE
    with h5py.File(master, "a") as fh:
        fh["entry/instrument/detector/beam_center_x"][0] = np.nan
    with h5py.File(master) as fh, pytest.raises(CdinnError, match="beam_center_x is not a finite number"):
        detector_info(fh)
    assert main(["run", "--source", str(master), "--out", str(tmp_path / "run.h5"), "--net", "edge", "--quiet"]) == 2
    assert "beam_center_x is not a finite number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("units", "pixel_size", "expected"),
    [
        ("pixel", None, CENTRE),  # as DECTRIS writes it
        (None, None, CENTRE),  # no units: pixels
        ("mm", (0.075, "mm"), CENTRE),  # a length, as NeXus allows: divided by the pixel size
        ("m", (75e-6, None), CENTRE),  # NXmx pixel sizes are in metres unless they say otherwise
        ("mm", None, "records no"),
        ("degrees", (75e-6, "m"), "neither pixels nor a length"),
    ],
)
def test_a_beam_centre_is_read_in_the_units_the_file_gives(tmp_path, units, pixel_size, expected):
    from cdinn.errors import CdinnError
    from cdinn.host.hdf5_frames import detector_info

    scale = {"pixel": 1, None: 1, "mm": 0.075, "m": 75e-6, "degrees": 1}[units]
    with h5py.File(tmp_path / "master.h5", "w") as fh:
        det = fh.create_group("entry/instrument/detector")
        for axis, value in (("x", CENTRE[1]), ("y", CENTRE[0])):
            det[f"beam_center_{axis}"] = value * scale
            if units is not None:
                det[f"beam_center_{axis}"].attrs["units"] = units
            if pixel_size is not None:
                det[f"{axis}_pixel_size"] = pixel_size[0]
                if pixel_size[1] is not None:
                    det[f"{axis}_pixel_size"].attrs["units"] = pixel_size[1]
    with h5py.File(tmp_path / "master.h5") as fh:
        if isinstance(expected, str):
            with pytest.raises(CdinnError, match=expected):
                detector_info(fh)
        else:
            assert np.allclose(detector_info(fh).beam_centre, expected)


def test_a_corrupt_compressed_chunk_is_rejected_not_a_crash(tmp_path, patterns):
    """A bitshuffle-LZ4 chunk whose block claims 2 GB (found by fuzzing: HDF5's bitshuffle filter plugin reads
    past the chunk and the process dies with SIGSEGV) is one rejected frame; the frames around it are written."""
    frames = _detector_frames(patterns)[:3]
    path = tmp_path / "corrupt.h5"
    with h5py.File(path, "w") as fh:
        d = fh.create_dataset(
            "entry/data/data", data=frames, chunks=(1, SIDE, SIDE), **hdf5plugin.Bitshuffle(cname="lz4")
        )
        header = (frames[1].nbytes).to_bytes(8, "big") + (8192).to_bytes(4, "big")
        d.id.write_direct_chunk((1, 0, 0), header + (2**31 - 1).to_bytes(4, "big") + bytes(64))
    run = subprocess.run(
        [CDINN, "run", "--source", str(path), "--out", str(tmp_path / "out.h5"), "--net", "edge", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr  # not -11: the run ends with its counts, marked incomplete
    with h5py.File(tmp_path / "out.h5") as fh:
        counts = json.loads(fh.attrs["counts"])
        assert counts["written"] == 1 and counts["rejected"] == 1 and not fh.attrs["complete"]
        assert "frame 1 cannot be read" in fh["rejected/reason"][0].decode()


CHANNELS = ("threshold_1", "threshold_2", "difference")


def write_eiger_channels(folder: Path, frames: np.ndarray, masks: np.ndarray, per_file: int) -> Path:
    """An NXmx master in the DECTRIS FileWriter's "hdf5 nexus v2024.2 nxmx" format: ``frames`` (N, C, rows,
    cols) in data files of (n, C, rows, cols) chunked one frame of one channel at a time (bitshuffle-LZ4), and
    in the master one virtual ``/entry/data/data`` over them, the ``channel`` axis naming the channels,
    ``default_slice`` naming threshold_1, and each channel's pixel mask in ``detector/<name>_channel``."""
    folder.mkdir(parents=True, exist_ok=True)
    n, c = frames.shape[:2]
    layout = h5py.VirtualLayout(shape=frames.shape, dtype=frames.dtype)
    for i, start in enumerate(range(0, n, per_file)):
        name = f"series_data_{i + 1:06d}.h5"
        block = frames[start : start + per_file]
        with h5py.File(folder / name, "w") as dfh:
            d = dfh.create_dataset(
                "entry/data/data", data=block, chunks=(1, 1, SIDE, SIDE), **hdf5plugin.Bitshuffle(cname="lz4")
            )
            d.attrs["image_nr_low"] = start + 1
        layout[start : start + len(block)] = h5py.VirtualSource(name, "entry/data/data", shape=block.shape)
    master = folder / "series_master.h5"
    with h5py.File(master, "w") as fh:
        fh.attrs["default"] = "entry"
        entry = fh.create_group("entry")
        entry.attrs.update({"NX_class": "NXentry", "default": "data"})
        data = entry.create_group("data")
        data.attrs.update({"NX_class": "NXdata", "signal": "data", "channel_indices": 1})
        data.attrs["axes"] = ["image_id", "channel", ".", "."]
        data.attrs["default_slice"] = [".", "threshold_1", ".", "."]
        data.create_virtual_dataset("data", layout)
        data["channel"] = list(CHANNELS[:c])
        data["image_id"] = np.arange(1, n + 1)
        det = fh.create_group("entry/instrument/detector")
        det["beam_center_x"] = float(CENTRE[1])
        det["beam_center_x"].attrs["units"] = "pixel"
        det["beam_center_y"] = float(CENTRE[0])
        det["beam_center_y"].attrs["units"] = "pixel"
        for name, mask in zip(CHANNELS, masks, strict=False):
            det.create_dataset(f"{name}_channel/pixel_mask", data=mask)
    return master


def _three_channels(patterns):
    """(N, 3, rows, cols) frames (the second threshold sees a brighter pattern, the difference what is between
    them) and one pixel mask per channel (the second has one more dead column)."""
    upper = _detector_frames(patterns)
    frames = np.stack([upper // 3, upper, upper - upper // 3], axis=1)
    masks = np.stack([_gaps()] * 3)
    masks[1][:, 200] = 1
    return frames, masks


def test_multi_channel_nxmx_reads_the_default_or_the_named_channel_with_its_own_mask(tmp_path, patterns):
    frames, masks = _three_channels(patterns)
    master = write_eiger_channels(tmp_path / "eiger", frames, masks, per_file=10)
    default = list(FileSource(str(master)))  # the default_slice's channel, threshold_1
    assert len(default) == 24 and np.array_equal(np.stack([f.data for f in default]), frames[:, 0])
    assert default[0].source.endswith("/entry/data/data[threshold_1]")
    second = list(FileSource(str(master), channel="threshold_2"))
    assert np.array_equal(np.stack([f.data for f in second]), frames[:, 1])
    assert np.array_equal(second[0].mask, masks[1] != 0) and second[0].centre == CENTRE
    alone = list(FileSource(str(tmp_path / "eiger" / "series_data_000002.h5"), channel="1"))  # no names there
    assert [f.number for f in alone] == list(range(11, 21)) and np.array_equal(alone[0].data, frames[10, 1])
    with pytest.raises(CdinnError, match="no channel 'threshold_3' .*threshold_1, threshold_2, difference"):
        read_stack(str(master), channel="threshold_3")
    single = write_eiger(tmp_path / "single", frames[:, 1], per_file=24, mask=masks[1])
    with pytest.raises(CdinnError, match="have one channel"):
        read_stack(str(single), channel="threshold_2")
    # the batch command and the Dask plan read the same channel: the same file as a single-channel series
    outputs = {}
    for name, spec, extra in (
        ("channel", master, ["--channel", "threshold_2"]),
        ("single", single, []),
    ):
        out = tmp_path / f"{name}.h5"
        done = subprocess.run(
            [CDINN, "reconstruct", str(spec), str(out), "--net", "edge", *extra], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        with h5py.File(out) as fh:
            outputs[name] = fh["amplitude"][()]
    assert np.array_equal(outputs["channel"], outputs["single"])
    live = subprocess.run(
        [CDINN, "run", "--source", str(master), "--channel", "threshold_2", "--out", str(tmp_path / "run.h5")]
        + ["--net", "edge", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert live.returncode == 0, live.stderr
    with h5py.File(tmp_path / "run.h5") as fh:
        order = np.argsort(fh["frame_number"][()])
        # the same amplitudes as the batch command (one-channel edge: unmeasured blocks filled the same way)
        assert np.allclose(fh["amplitude"][()][order], outputs["single"], atol=2e-5)
    chunks = plan(str(master), 16, "threshold_2")
    assert [c.channel for c in chunks] == [(1, "threshold_2")] * 2
    assert np.array_equal(np.stack([f.data for f in chunk_frames(chunks[1])]), frames[16:, 1])
    wrong = subprocess.run(
        [CDINN, "reconstruct", str(master), str(tmp_path / "x.h5"), "--channel", "nope"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1 and "no channel 'nope'" in wrong.stderr
    assert not (tmp_path / "x.h5").exists()


def test_a_recorded_beam_centre_that_is_off_is_found_by_the_fit(tmp_path, patterns):
    """A master that records the beam centre 8 detector pixels (one grid pixel at 8x8 binning) below and 16 to
    the left of where the zero frequency is: every written frame's fitted centre_offset moves by (-1, +2) grid
    pixels from what the right centre gives (the objects' own phase gradients give the rest)."""
    frames = _detector_frames(patterns)
    found = {}
    for name, error in (("right", (0.0, 0.0)), ("off", (8.0, -16.0))):
        master = write_eiger(tmp_path / name, frames, per_file=24)
        with h5py.File(master, "a") as fh:
            fh["entry/instrument/detector/beam_center_y"][()] = CENTRE[0] + error[0]
            fh["entry/instrument/detector/beam_center_x"][()] = CENTRE[1] + error[1]
        pre = PreprocessConfig(input_kind="intensity", binning=8)
        _, summary = _run(str(master), tmp_path / f"{name}.h5", net="default", pre=pre)
        assert summary["written"] == 24
        with h5py.File(tmp_path / f"{name}.h5") as fh:
            assert fh["centre_offset"].attrs["units"] == "pixel" and fh["centre_offset"].shape == (24, 2)
            found[name] = fh["centre_offset"][()][np.argsort(fh["frame_number"][()])]
    moved = found["off"] - found["right"]
    assert np.allclose(np.median(moved, axis=0), [-1.0, 2.0], atol=0.1), np.median(moved, axis=0)
