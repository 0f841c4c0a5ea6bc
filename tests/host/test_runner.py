"""The readout-node runner end to end: real sources, real backends, real HDF5 files and real sockets."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

from cdinn.api import reconstruct as cdinn_reconstruct
from cdinn.cli import main
from cdinn.errors import CdinnError
from cdinn.host.backends import get_backend
from cdinn.host.front import ThreadFront
from cdinn.host.merge import merge, missing_numbers
from cdinn.host.output import PER_FRAME
from cdinn.host.preprocess import PreprocessConfig, Preprocessor
from cdinn.host.runner import Runner
from cdinn.host.sources import FileSource
from cdinn.host.writer import RunWriter

CDINN = str(Path(sys.executable).with_name("cdinn"))


def _intensities(patterns, n=None):
    return (patterns.diffraction[:n].astype(np.float64) ** 2).astype(np.float32)


def _run(source, out, backend="onnx", max_batch=8):
    b = get_backend(backend, net="edge")
    writer = RunWriter(out, b.provenance(), PreprocessConfig(input_kind="intensity").as_dict())
    front = ThreadFront(source, Preprocessor(PreprocessConfig(input_kind="intensity")), max_batch)
    return Runner(front, b, writer, progress=False).run()


def test_npy_run_writes_every_frame_with_metadata(tmp_path, patterns):
    np.save(tmp_path / "in.npy", _intensities(patterns))
    summary = _run(FileSource(str(tmp_path / "in.npy")), tmp_path / "out.h5")
    assert summary["received"] == summary["written"] == len(patterns.diffraction) and summary["rejected"] == 0
    with h5py.File(tmp_path / "out.h5") as fh:
        assert fh["amplitude"].shape == (24, 32, 32) and fh["frame_number"][()].tolist() == list(range(24))
        assert (fh["latency"][()] >= 0).all() and (fh["completion_time"][()] >= fh["arrival_time"][()]).all()
        assert fh.attrs["complete"] and json.loads(fh.attrs["counts"])["written"] == 24
        provenance = json.loads(fh.attrs["provenance"])
        assert provenance["backend"] == "onnx" and len(provenance["shape_sha256"]) == 64
        assert "tensorflow" in provenance["versions"]


def test_bad_frames_are_rejected_and_counted(tmp_path, patterns):
    frames = _intensities(patterns, 10)
    frames[2, 0, 0] = np.nan
    frames[5] = 0
    frames[7, 3, 3] = -4
    np.save(tmp_path / "bad.npy", frames)
    (tmp_path / "corrupt.h5").write_bytes(b"garbage")
    source = FileSource(str(tmp_path / "*.*"))
    summary = _run(source, tmp_path / "out.h5")
    assert summary["received"] == summary["written"] + summary["rejected"]
    assert summary["rejected"] == 4 and summary["written"] == 7
    with h5py.File(tmp_path / "out.h5") as fh:
        reasons = [r.decode() for r in fh["rejected/reason"][()]]
        assert any("NaN" in r for r in reasons) and any("all zero" in r for r in reasons)
        assert any("negative" in r for r in reasons) and any("HDF5" in r for r in reasons)
        assert 2 not in fh["frame_number"][()].tolist()


def test_backends_agree(tmp_path, patterns):
    amplitudes = patterns.diffraction[:6]
    keras_amp, keras_phase = get_backend("keras", net="edge").infer(amplitudes)
    onnx_amp, onnx_phase = get_backend("onnx", net="edge").infer(amplitudes)
    assert np.abs(keras_amp - onnx_amp).max() < 1e-4
    assert np.abs(np.where(keras_amp > 0.2, keras_phase - onnx_phase, 0)).max() < 1e-3
    with pytest.raises(CdinnError, match="unknown backend"):
        get_backend("gpu")


def test_fpga_backend_refuses_without_a_board():
    with pytest.raises(CdinnError, match="fpga backend") as info:
        get_backend("fpga")
    assert "\n" not in str(info.value)


def test_output_file_is_never_overwritten(tmp_path):
    (tmp_path / "out.h5").write_bytes(b"earlier run")
    with pytest.raises(CdinnError, match="already exists"):
        RunWriter(tmp_path / "out.h5", {}, {})
    assert (tmp_path / "out.h5").read_bytes() == b"earlier run"


def test_onnx_export_matches_keras_and_stale_exports_are_refused(tmp_path):
    from cdinn.host.onnx_export import export_onnx

    report = export_onnx("edge", tmp_path / "onnx", check_patterns=16)
    assert all(v < 1e-4 for v in report["max_abs_difference"].values())
    assert {p.name for p in (tmp_path / "onnx").iterdir()} >= {
        "shape.onnx",
        "phase.onnx",
        "cdinn.onnx",
        "onnx.sha256.json",
    }
    import shutil

    from cdinn.model.inference import WEIGHTS_DIR

    stale = tmp_path / "stale"
    shutil.copytree(WEIGHTS_DIR / "edge", stale)
    for name in ("cdinn.onnx", "onnx.sha256.json"):  # another set's export with its record
        shutil.copy(WEIGHTS_DIR / "paper" / name, stale / name)
    with pytest.raises(CdinnError, match="exported from other"):
        get_backend("onnx", net=str(stale))


def _wait_for_frames(path, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with h5py.File(path, "r", libver="latest", swmr=True) as fh:
                if fh["frame_number"].shape[0] >= count:
                    return
        except (OSError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {count} frames")


def _stream_sim(source, endpoint, rate, count, consumers=1):
    return subprocess.Popen(
        [
            CDINN,
            "stream-sim",
            "--frames",
            str(source),
            "--endpoint",
            endpoint,
            "--rate",
            str(rate),
            "--count",
            str(count),
            "--consumers",
            str(consumers),
            "--connect-wait",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _runner(endpoint, out, *extra):
    return subprocess.Popen(
        [
            CDINN,
            "run",
            "--input-kind",
            "intensity",
            "--source",
            endpoint,
            "--backend",
            "onnx",
            "--out",
            str(out),
            "--quiet",
            "--idle-timeout",
            "20",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_exists(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _interrupt_live_run(tmp_path, patterns, endpoint, out, sig) -> subprocess.Popen:
    """Start a runner on a slow live stream, send ``sig`` once 30 frames are written, wait for it to end."""
    np.save(tmp_path / "frames.npy", _intensities(patterns))
    runner = _runner(endpoint, out)
    _wait_exists(out)
    sender = _stream_sim(tmp_path / "frames.npy", endpoint, rate=200, count=4000)
    try:
        _wait_for_frames(out, 30)
        front = psutil.Process(runner.pid).children()  # the front end's process
        runner.send_signal(sig)
        runner.communicate(timeout=60)
        _, alive = psutil.wait_procs(front, timeout=30)
        assert len(front) == 1 and not alive  # it ends with the runner, however the runner ended
    finally:
        sender.kill()
        sender.wait()
    return runner


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_leaves_a_valid_file_marked_incomplete(tmp_path, patterns, free_tcp_endpoint, sig):
    out = tmp_path / "live.h5"
    runner = _interrupt_live_run(tmp_path, patterns, free_tcp_endpoint, out, sig)
    assert runner.returncode == 2  # the series' end never came: not a complete run
    with h5py.File(out) as fh:
        counts = json.loads(fh.attrs["counts"])
        assert not fh.attrs["complete"]
        assert counts["received"] == counts["written"] + counts["rejected"] + counts["missed"]
        numbers = fh["frame_number"][()]
        assert len(numbers) == counts["written"] >= 30 and numbers.tolist() == list(range(len(numbers)))
        assert fh["amplitude"].shape[0] == fh["phase"].shape[0] == len(numbers)


@pytest.mark.slow
def test_a_killed_runner_leaves_every_completed_frame_readable(tmp_path, patterns, free_tcp_endpoint):
    out = tmp_path / "killed.h5"
    runner = _interrupt_live_run(tmp_path, patterns, free_tcp_endpoint, out, signal.SIGKILL)
    assert runner.returncode == -signal.SIGKILL
    with h5py.File(out, "r", libver="latest", swmr=True) as fh:
        n = fh["frame_number"].shape[0]
        assert n >= 30 and not fh.attrs["complete"]
        assert fh["amplitude"][:n].shape == (n, 32, 32) and np.isfinite(fh["phase"][:n]).all()


@pytest.mark.slow
def test_two_runners_share_one_stream_and_merge_in_order(tmp_path, patterns, free_tcp_endpoint, capsys):
    np.save(tmp_path / "frames.npy", _intensities(patterns))
    outs = [tmp_path / "r0.h5", tmp_path / "r1.h5"]
    runners = [_runner(free_tcp_endpoint, out) for out in outs]
    for out in outs:
        _wait_exists(out)
    sender = _stream_sim(tmp_path / "frames.npy", free_tcp_endpoint, rate=2000, count=400, consumers=2)
    assert sender.wait(timeout=60) == 0
    for runner in runners:
        _, err = runner.communicate(timeout=60)
        assert runner.returncode == 0, err
    report = merge([str(o) for o in outs], tmp_path / "merged.h5")
    assert report["frames"] == 400 and report["missing"] == [] and report["duplicates"] == []
    with h5py.File(tmp_path / "merged.h5") as fh, h5py.File(outs[0]) as a, h5py.File(outs[1]) as b:
        assert fh["frame_number"][()].tolist() == list(range(400))
        assert a["frame_number"].shape[0] > 0 and b["frame_number"].shape[0] > 0  # the work was shared
        for name in PER_FRAME:  # every per-frame field of the runs, the trust figure included, in frame order
            both = np.concatenate([a[name][()], b[name][()]])[
                np.argsort(np.concatenate([a["frame_number"][()], b["frame_number"][()]]), kind="stable")
            ]
            assert np.array_equal(fh[name][()], both), name
        assert fh.attrs["default"] == "entry" and fh["entry/reconstruction"].attrs["signal"] == "amplitude"
    # a gap is reported
    assert missing_numbers(np.array([0, 1, 2, 5, 6])) == [3, 4]
    assert main(["merge", str(outs[0]), "--out", str(tmp_path / "one.h5")]) == 0
    assert "missing frame numbers" in capsys.readouterr().err


def test_run_cli_on_a_hdf5_glob(tmp_path, patterns, capsys):
    from cdinn.io import write_arrays

    write_arrays(tmp_path / "a.h5", {"diffraction": _intensities(patterns, 5)})
    write_arrays(tmp_path / "b.h5", {"diffraction": _intensities(patterns, 7)})
    code = main(
        [
            "run",
            "--input-kind",
            "intensity",
            "--source",
            f"{tmp_path}/*.h5:/diffraction",
            "--backend",
            "keras",
            "--out",
            str(tmp_path / "o.h5"),
            "--quiet",
        ]
    )
    assert code == 0 and "received 12 = written 12 + rejected 0" in capsys.readouterr().out


def test_refinement_workers_keep_the_counters_and_record_every_frame(tmp_path, patterns):
    from cdinn.model.refine import AutoRefineConfig

    frames = (patterns.diffraction_oversampled.astype(np.float64) ** 2).astype(np.float32)
    frames[4] = np.nan  # one bad frame among them
    np.save(tmp_path / "over.npy", frames)
    backend = get_backend("onnx", net="edge")
    pre = PreprocessConfig(input_kind="intensity", output_size=64)
    writer = RunWriter(tmp_path / "out.h5", backend.provenance(), pre.as_dict())
    probe = cdinn_reconstruct(patterns.diffraction_oversampled, net="edge", refine=30)
    refiner = AutoRefineConfig(threshold=float(np.median(probe.fit_before)))
    summary = Runner(
        ThreadFront(FileSource(str(tmp_path / "over.npy")), Preprocessor(pre), max_batch=5),
        backend,
        writer,
        progress=False,
        refiner=refiner,
        refine_workers=2,
    ).run()
    assert summary["received"] == 24 == summary["written"] + summary["rejected"] and summary["rejected"] == 1
    assert 0 < summary["refined"] < summary["written"]
    with h5py.File(tmp_path / "out.h5") as fh:
        refined, iterations = fh["refined"][()], fh["iterations"][()]
        fit, before = fh["fit"][()], fh["fit_before"][()]
        assert len(refined) == 23 and sorted(fh["frame_number"][()].tolist()) == [i for i in range(24) if i != 4]
        assert refined.sum() == summary["refined"] and (iterations[refined] > 0).all()
        assert (iterations[~refined] == 0).all() and np.array_equal(fit[~refined], before[~refined])
        assert (before[refined] > refiner.threshold).all() and (fit[refined] <= before[refined]).all()
        assert fh["amplitude"][()].max() <= 1 and fh["amplitude"][()].min() >= 0
        assert json.loads(fh.attrs["counts"])["refined"] == summary["refined"]


def test_run_and_reconstruct_spell_and_do_a_fixed_refinement_the_same(tmp_path, patterns):
    """``--refine none|K|auto`` on both commands: K iterations for every frame, recorded alike."""
    from cdinn.host import output

    np.save(tmp_path / "over.npy", (patterns.diffraction_oversampled[:6].astype(np.float64) ** 2).astype(np.float32))
    common = ["--input-kind", "intensity", "--net", "edge", "--refine", "5"]
    source = ["--source", str(tmp_path / "over.npy")]
    assert main(["run", *source, "--out", str(tmp_path / "r.h5"), "--quiet", *common]) == 0
    assert main(["reconstruct", str(tmp_path / "over.npy"), str(tmp_path / "b.h5"), *common]) == 0
    ran, batch = output.read(str(tmp_path / "r.h5")), output.read(str(tmp_path / "b.h5"))
    assert ran["attrs"]["provenance"]["refine"] == batch["attrs"]["provenance"]["refine"] == "5"
    # run's default backend is OpenVINO (the runner's thread layout), reconstruct's onnxruntime
    assert ran["attrs"]["provenance"]["backend"] == "openvino" and batch["attrs"]["provenance"]["backend"] == "onnx"
    assert (ran["iterations"] == 5).all() and ran["refined"].all() and np.array_equal(ran["frame_number"], np.arange(6))
    # the networks of the two runtimes agree to ~4e-6, but ER/HIO's shrink-wrap support can take or leave a
    # pixel on such a difference (one of these frames moved by up to 0.008): on one runtime, the same numbers,
    # whatever batches the runner's arrivals made
    assert np.median(np.abs(ran["amplitude"] - batch["amplitude"]).max(axis=(1, 2))) < 1e-4
    same = ["--backend", "onnx"]
    assert main(["run", *source, "--out", str(tmp_path / "o.h5"), "--quiet", *common, *same]) == 0
    ran = output.read(str(tmp_path / "o.h5"))
    np.testing.assert_allclose(ran["amplitude"], batch["amplitude"], atol=1e-6)
    np.testing.assert_allclose(ran["fit"], batch["fit"], rtol=1e-5)
    with pytest.raises(SystemExit):  # one spelling: a negative budget is refused by the parser
        main(["run", "--source", "x.npy", "--out", str(tmp_path / "n.h5"), "--refine", "-1"])


def test_refinement_needs_oversampled_preprocessing(tmp_path):
    from cdinn.model.refine import AutoRefineConfig

    backend = get_backend("onnx", net="edge")
    writer = RunWriter(tmp_path / "out.h5", backend.provenance(), {})
    with pytest.raises(CdinnError, match="oversampled"):
        Runner(
            ThreadFront(FileSource(str(tmp_path / "none.npy")), Preprocessor(PreprocessConfig(input_kind="intensity"))),
            backend,
            writer,
            refiner=AutoRefineConfig(),
        )


@pytest.mark.parametrize("option", [("--mask", "missing.npy"), ("--dark", "missing.npy")])
def test_a_configuration_error_leaves_no_output_behind(tmp_path, patterns, capsys, option):
    np.save(tmp_path / "frames.npy", patterns.diffraction[:2])
    out = tmp_path / "out.h5"
    code = main(
        [
            "run",
            "--input-kind",
            "intensity",
            "--source",
            str(tmp_path / "frames.npy"),
            "--out",
            str(out),
            "--net",
            "edge",
            "--quiet",
            option[0],
            str(tmp_path / option[1]),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot read" in err and not out.exists()  # the rerun is not blocked
