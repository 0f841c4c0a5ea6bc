"""The command line, in-process (``main``) and once through the installed console script."""

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cdinn.cli import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_reconstruct_phase_retrieve_round_trip(tmp_path, capsys):
    data = tmp_path / "sim.h5"
    code, out, _ = _run(
        capsys, "simulate", "--n", 12, "--seed", 3, "--out", data, "--oversampled", "--position", "random"
    )
    assert code == 0 and "wrote 12 patterns" in out
    with h5py.File(data) as fh:
        assert fh["diffraction"].shape == (12, 32, 32) and fh["diffraction_oversampled"].shape == (12, 64, 64)
        assert fh.attrs["seed"] == 3 and '"position": "random"' in fh.attrs["generator"]
        truth = fh["amplitude"][()]
    out_file = tmp_path / "recon.h5"
    code, out, _ = _run(capsys, "reconstruct", data, out_file, "--net", "edge")
    assert code == 0
    with h5py.File(out_file) as fh:
        assert fh["amplitude"].shape == (12, 32, 32) and len(fh.attrs["shape_sha256"]) == 64
        assert np.corrcoef(fh["amplitude"][()].sum(axis=(1, 2)), truth.sum(axis=(1, 2)))[0, 1] > 0.8
    pr_file = tmp_path / "pr.h5"
    code, out, _ = _run(capsys, "phase-retrieve", f"{data}:/diffraction_oversampled", pr_file, "--iterations", 40)
    assert code == 0
    with h5py.File(pr_file) as fh:
        assert fh["phase"].shape == (12, 64, 64)


def test_npy_input_and_intensities(tmp_path, capsys, patterns):
    np.save(tmp_path / "i.npy", patterns.diffraction[:4] ** 2)
    code, _, _ = _run(
        capsys, "reconstruct", tmp_path / "i.npy", tmp_path / "o.h5", "--input-kind", "intensity", "--net", "edge"
    )
    assert code == 0 and h5py.File(tmp_path / "o.h5")["phase"].shape == (4, 32, 32)


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda d: None, "input file not found"),
        (lambda d: (d / "in.h5").write_bytes(b"\x89HDF corrupt"), "not a readable HDF5 file"),
        (lambda d: np.save(d / "in.npy", np.full((2, 32, 32), np.nan)), "frame 0 contains NaN"),
        (lambda d: np.save(d / "in.npy", -np.ones((2, 32, 32))), "frame 0 has negative"),
        (lambda d: np.save(d / "in.npy", np.ones((2, 30, 30))), "must have shape"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_keeps_existing_output(tmp_path, capsys, setup, message):
    setup(tmp_path)
    src = tmp_path / ("in.npy" if (tmp_path / "in.npy").exists() else "in.h5")
    existing = tmp_path / "out.h5"
    existing.write_bytes(b"previous results")
    code, _, err = _run(capsys, "reconstruct", src, existing, "--net", "edge")
    assert code == 2
    assert err.startswith("cdinn: error:") and message in err and err.count("\n") == 1
    assert existing.read_bytes() == b"previous results"


def test_console_script_help_explains_units():
    exe = Path(sys.executable).with_name("cdinn")
    result = subprocess.run([exe, "reconstruct", "--help"], capture_output=True, text=True, check=True)
    assert "radians" in result.stdout and "fftshift" in result.stdout
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True)
    for name in ("simulate", "train", "evaluate", "reconstruct", "phase-retrieve"):
        assert name in result.stdout


def _train_config(*argv):
    from cdinn.cli import build_parser
    from cdinn.cli.train import train_config

    return train_config(build_parser("train").parse_args(["train", *argv]))


def test_train_command_defaults_are_the_training_defaults():
    from cdinn.model.train import TrainConfig

    assert _train_config("--out", "x") == TrainConfig()
    assert _train_config("--out", "x", "--no-fresh").fresh is False
    assert _train_config("--out", "x", "--lr", "0.01", "--photons", "1e4", "1e6").photon_range == (1e4, 1e6)
    assert _train_config("--out", "x", "--role", "phase", "--loss", "bce").roles == ("phase",)


def test_training_options_come_from_defaults_then_recipe_then_command_line(tmp_path):
    from cdinn.model.simulate import BROAD
    from cdinn.model.train import TrainConfig

    recipe = tmp_path / "r.yml"
    recipe.write_text("config: robust\ndata: broad\nepochs: 3\nphoton_range: [1.0e+4, 1.0e+7]\n")
    cfg = _train_config("--recipe", str(recipe), "--epochs", "5", "--out", "x")
    assert cfg.config == "robust" and cfg.simulation == BROAD and cfg.photon_range == (1e4, 1e7)
    assert cfg.epochs == 5  # typed on the command line: wins over the recipe
    assert cfg.examples == TrainConfig().examples  # neither: the default
    shipped = _train_config("--recipe", "model/recipes/robust-stage2.yml", "--out", "x")
    assert shipped.loss == "twin+support+chi2" and shipped.fresh is False and shipped.learning_rate == 1e-4
    recipe.write_text("epoch: 3\n")
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "o")]) == 2


def test_forward_model_options_change_the_named_training_experiment(tmp_path, capsys):
    from cdinn.model.forward import experiment

    recipe = tmp_path / "r.yml"
    recipe.write_text("config: robust\nexperiment: detector+clean\nbeamstop: [0.5, 4.0]\nflux: [1.0e+4, 1.0e+6]\n")
    cfg = _train_config("--recipe", str(recipe), "--flux", "1e3,1e5", "--out", "x")
    model = cfg.simulation.experiment
    assert model.beamstop == (0.5, 4.0) and model.flux == (1e3, 1e5)  # typed: wins over the recipe
    assert model.clean_fraction == experiment("detector+clean").clean_fraction  # the rest: the named model's
    assert cfg.effects == {"beamstop": (0.5, 4.0), "flux": (1e3, 1e5)}  # what the model card records
    out = str(tmp_path / "o")
    assert main(["train", "--beamstop", "0.5,4", "--out", out]) == 2
    assert "name one with --experiment" in capsys.readouterr().err
    assert main(["train", "--experiment", "detector", "--beamstop-shape", "rectangle", "--out", out]) == 2
    assert "held out for evaluation" in capsys.readouterr().err


def test_every_documented_config_field_is_an_option_of_its_command():
    """The options come from the config dataclasses: each documented field appears, with its default in the
    help, and a config built from no options equals the dataclass default."""
    import dataclasses

    from cdinn.cli import build_parser
    from cdinn.cli.options import config_from
    from cdinn.evaluation.evaluate import EvaluateConfig
    from cdinn.firmware.build import FirmwareBuildConfig
    from cdinn.quantize.config import QuantConfig

    for command, cls, required in (
        ("quantize", QuantConfig, []),
        ("evaluate", EvaluateConfig, []),
        ("firmware", FirmwareBuildConfig, []),
    ):
        parser = build_parser(command)
        help_text = parser._subparsers._group_actions[0].choices[command].format_help()
        for f in dataclasses.fields(cls):
            if "help" in f.metadata:
                flag = "--" + (f.metadata["flag"] or f.name).replace("_", "-")
                assert flag in help_text, (command, flag)
        assert config_from(cls, parser.parse_args([command, *required])) == cls()
    args = build_parser("quantize").parse_args(
        ["quantize", "--bits", "6", "--layer-bits", "out_conv=10", "--prune-lr", "1e-4", "--lr-schedule", "cosine"]
    )
    assert config_from(QuantConfig, args) == QuantConfig(
        weight_bits=6, weight_bits_per_layer={"out_conv": 10}, prune_learning_rate=1e-4, lr_schedule="cosine"
    )


def test_a_backend_option_the_backend_does_not_take_is_an_error(tmp_path, capsys, patterns):
    np.save(tmp_path / "f.npy", patterns.diffraction[:2])
    code, _, err = _run(
        capsys,
        "run",
        "--source",
        tmp_path / "f.npy",
        "--out",
        tmp_path / "o.h5",
        "--backend",
        "onnx",
        "--quantized",
        tmp_path,
        "--quiet",
    )
    assert code == 2 and "the onnx backend takes no option quantized" in err


def test_train_command_is_quiet_and_trains_with_onednn(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    cdinn = str(Path(sys.executable).with_name("cdinn"))
    run = subprocess.run(
        [
            cdinn,
            "train",
            "--config",
            "edge",
            "--examples",
            "64",
            "--val",
            "32",
            "--epochs",
            "1",
            "--batch",
            "32",
            "--out",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    noise = [
        line
        for line in run.stderr.splitlines()
        if "cuda" in line.lower() or line.startswith(("I0000", "E0000", "W0000"))
    ]
    assert noise == [], noise
    card = json.loads((tmp_path / "t" / "shape.card.json").read_text())
    assert card["onednn"] is True  # TensorFlow leaves its oneDNN kernels off on AMD CPUs; training turns them on


def test_every_shipped_recipe_is_a_valid_training_configuration():
    from pathlib import Path

    from cdinn.model.inference import WEIGHTS_DIR

    recipes = sorted((WEIGHTS_DIR.parent / "recipes").glob("*-stage*.yml"))
    stages: dict[str, list[int]] = {}
    for path in recipes:
        name, stage = path.stem.split("-stage")
        stages.setdefault(name, []).append(int(stage))
    assert set(stages) == {"robust", "edge", "paper"}
    assert all(sorted(k) == list(range(1, len(k) + 1)) for k in stages.values()), stages  # make train's order
    for path in recipes:
        cfg = _train_config("--recipe", str(path), "--out", "x")
        assert cfg.config == Path(path).name.split("-stage")[0] and cfg.roles == ("shape", "phase")


def test_reconstruct_works_block_by_block_with_the_same_result(tmp_path, capsys, monkeypatch, patterns):
    """Frames are read, reconstructed and written a block at a time (memory independent of the file's length):
    blocks of 5 give the same file as one block, the detector frames' masks and numbers included."""
    from cdinn.host import batch_input

    frames = np.round(np.repeat(np.repeat(patterns.diffraction.astype(np.float64) ** 2 * 1e4, 4, 1), 4, 2))
    frames = frames.astype(np.uint32)[:12]
    frames[:, 60:62, :] = 2**32 - 1  # a gap, per frame, read as the unsigned sentinel
    np.save(tmp_path / "detector.npy", frames)
    outputs = {}
    for block in (1024, 5):
        monkeypatch.setattr(batch_input, "BLOCK_FRAMES", block)
        out = tmp_path / f"b{block}.h5"
        code, stdout, err = _run(
            capsys, "reconstruct", tmp_path / "detector.npy", out, "--input-kind", "intensity", "--net", "edge"
        )
        assert code == 0, err
        with h5py.File(out) as fh:
            outputs[block] = {name: fh[name][()] for name in fh if isinstance(fh[name], h5py.Dataset)}
    assert outputs[5].keys() == outputs[1024].keys() and outputs[5]["frame_number"].tolist() == list(range(12))
    for name, value in outputs[1024].items():
        if name not in ("arrival_time", "completion_time", "latency"):  # when each block was read and done
            assert np.array_equal(outputs[5][name], value, equal_nan=value.dtype.kind == "f"), name


def test_a_bad_frame_in_a_batch_is_rejected_with_its_reason_and_the_others_kept(tmp_path, capsys, patterns):
    frames = patterns.diffraction[:6].copy()
    frames[2] = np.nan
    frames[4] = -1.0
    np.save(tmp_path / "in.npy", frames)
    code, out, err = _run(capsys, "reconstruct", tmp_path / "in.npy", tmp_path / "out.h5", "--net", "edge")
    assert code == 0, err
    assert "4 frame(s)" in out and "2 rejected (first: frame 2 contains NaN" in out
    with h5py.File(tmp_path / "out.h5") as fh:
        assert fh["frame_number"][()].tolist() == [0, 1, 3, 5]
        assert fh["rejected/frame_number"][()].tolist() == [2, 4]
        assert "negative" in fh["rejected/reason"][1].decode()


def test_sigterm_during_reconstruct_leaves_no_temporary_file(tmp_path, patterns):
    import signal
    import time

    np.save(tmp_path / "many.npy", np.resize(patterns.diffraction, (60_000, 32, 32)))
    out = tmp_path / "out.h5"
    child = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("cdinn")),
            "reconstruct",
            str(tmp_path / "many.npy"),
            str(out),
            "--net",
            "edge",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.h5.*")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)  # the temporary file beside the output exists: the command is writing
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=60)
    assert child.returncode == 143
    assert not out.exists() and not list(tmp_path.glob(".out.h5.*"))


def test_views_reach_reconstruct_and_run_alike(tmp_path, capsys, patterns):
    """``--views`` is one option of every inverting command: `reconstruct` and `run` give the same frames the
    same estimates, record the views in the provenance, and no frame fits worse than with one view."""
    import json

    np.save(tmp_path / "in.npy", patterns.diffraction[:12] ** 2)
    common = ("--input-kind", "intensity", "--backend", "onnx")
    outs = {}
    for name, args in {
        "one": ("reconstruct", tmp_path / "in.npy", tmp_path / "one.h5", *common),
        "four": ("reconstruct", tmp_path / "in.npy", tmp_path / "four.h5", *common, "--views", "4"),
        "run": ("run", "--source", tmp_path / "in.npy", "--out", tmp_path / "run.h5", "--quiet", *common,
                "--views", "4"),
    }.items():  # fmt: skip
        code, _, err = _run(capsys, *args)
        assert code == 0, err
        with h5py.File(tmp_path / f"{name}.h5") as fh:
            outs[name] = (fh["fit"][()], fh["amplitude"][()], json.loads(fh.attrs["provenance"])["views"])
    assert [outs[k][2] for k in ("one", "four", "run")] == [1, 4, 4]
    assert np.all(outs["four"][0] <= outs["one"][0] + 1e-6) and np.any(outs["four"][0] < outs["one"][0])
    assert np.allclose(outs["run"][0], outs["four"][0], rtol=1e-4) and np.allclose(
        outs["run"][1], outs["four"][1], atol=1e-4
    )
    with pytest.raises(SystemExit) as stopped:
        _run(capsys, "reconstruct", tmp_path / "in.npy", tmp_path / "bad.h5", "--views", "3")
    assert stopped.value.code == 2 and "--views: invalid choice: 3" in capsys.readouterr().err
