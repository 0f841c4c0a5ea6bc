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
    code, out, _ = _run(capsys, "simulate", "--n", 12, "--seed", 3, "--out", data, "--oversampled",
                        "--position", "random")
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
    code, out, _ = _run(capsys, "phase-retrieve", f"{data}:/diffraction_oversampled", pr_file,
                        "--iterations", 40)
    assert code == 0
    with h5py.File(pr_file) as fh:
        assert fh["phase"].shape == (12, 64, 64)


def test_npy_input_and_intensities(tmp_path, capsys, patterns):
    np.save(tmp_path / "i.npy", patterns.diffraction[:4] ** 2)
    code, _, _ = _run(capsys, "reconstruct", tmp_path / "i.npy", tmp_path / "o.h5", "--intensity", "--net", "edge")
    assert code == 0 and h5py.File(tmp_path / "o.h5")["phase"].shape == (4, 32, 32)


@pytest.mark.parametrize("setup,message", [
    (lambda d: None, "input file not found"),
    (lambda d: (d / "in.h5").write_bytes(b"\x89HDF corrupt"), "not a readable HDF5 file"),
    (lambda d: np.save(d / "in.npy", np.full((2, 32, 32), np.nan)), "frame 0 contains NaN"),
    (lambda d: np.save(d / "in.npy", -np.ones((2, 32, 32))), "frame 0 has negative"),
    (lambda d: np.save(d / "in.npy", np.ones((2, 30, 30))), "must have shape"),
])
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


def test_train_command_defaults_are_the_training_defaults():
    from cdinn.cli import build_parser, train_options
    from cdinn.model.train import TrainConfig

    o = train_options(build_parser().parse_args(["train", "--out", "x"]))
    cfg = TrainConfig()
    assert (o["config"], o["examples"], o["val"], o["epochs"], o["batch"], o["lr"], o["loss"], o["lr_schedule"],
            o["fresh"], o["seed"], o["noise_fraction"], o["photons"], o["init"]) == (
        cfg.config, cfg.examples, cfg.val, cfg.epochs, cfg.batch, cfg.learning_rate, cfg.loss, cfg.lr_schedule,
        cfg.fresh, cfg.seed, cfg.noise_fraction, cfg.photon_range, cfg.init)
    assert train_options(build_parser().parse_args(["train", "--out", "x", "--no-fresh"]))["fresh"] is False


def test_training_options_come_from_defaults_then_recipe_then_command_line(tmp_path):
    from cdinn.cli import TRAIN_DEFAULTS, build_parser, train_options

    recipe = tmp_path / "r.yml"
    recipe.write_text("config: robust\ndata: broad\nepochs: 3\nphotons: [1.0e+4, 1.0e+7]\n")
    args = build_parser().parse_args(["train", "--recipe", str(recipe), "--epochs", "5", "--out", "x"])
    options = train_options(args)
    assert options["config"] == "robust" and options["data"] == "broad" and options["photons"] == [1e4, 1e7]
    assert options["epochs"] == 5  # typed on the command line: wins over the recipe
    assert options["examples"] == TRAIN_DEFAULTS["examples"]  # neither: the default
    shipped = build_parser().parse_args(["train", "--recipe", "model/recipes/robust-stage2.yml", "--out", "x"])
    assert train_options(shipped)["loss"] == "twin+support+chi2" and train_options(shipped)["fresh"] is False
    recipe.write_text("epoch: 3\n")
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "o")]) == 2


def test_commands_print_no_tensorflow_start_up_noise(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    cdinn = str(Path(sys.executable).with_name("cdinn"))
    run = subprocess.run([cdinn, "train", "--config", "edge", "--examples", "64", "--val", "32", "--epochs", "1",
                          "--batch", "32", "--out", str(tmp_path / "t")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    noise = [line for line in run.stderr.splitlines() if "cuda" in line.lower() or line.startswith(("I0000", "E0000",
                                                                                                     "W0000"))]
    assert noise == [], noise
