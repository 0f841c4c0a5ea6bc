"""`cdinn firmware` on the shipped quantized edge networks, and the emulator backend that uses its output."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cdinn.cli import main
from cdinn.errors import CdinnError
from cdinn.host.backends import get_backend
from cdinn.model.conventions import network_input, sigmoid
from cdinn.model.inference import WEIGHTS_DIR
from cdinn.quantize.grid import quantize_input
from cdinn.quantize.qat import firmware_model, load_quantized

QUANTIZED = WEIGHTS_DIR / "edge-q"


def load_card_sha(path):
    from cdinn.cards import read_card

    return read_card(path)["sha256"]


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build_dir(edge_firmware):
    return edge_firmware


def test_firmware_build_is_bit_exact_and_complete(build_dir):
    report = json.loads((build_dir / "report.json").read_text())
    assert report["bit_exact"] is True
    for project in ("shape", "phase", "both"):
        assert (build_dir / project / "build_prj.tcl").is_file()
        assert (build_dir / project / "manifest.json").is_file()
        assert (build_dir / project / "estimate.md").read_text().startswith("**ESTIMATE")
        assert report["steps"]["validate"]["result"][project]["identical_fraction"] == 1.0
    manifest = json.loads((build_dir / "both" / "manifest.json").read_text())
    assert manifest["roles"] == ["shape", "phase"] and manifest["output_sizes"] == [1024, 1024]
    # C simulation: each project's own test bench, built with g++, reproduces the expected predictions
    assert report["csim_passed"] is True
    for project in ("shape", "phase", "both"):
        csim = report["steps"]["csim"]["result"][project]
        assert csim["passed"] and csim["patterns"] == 10 and csim["max_abs_difference"] <= csim["tolerance"]
    logits = load_quantized(QUANTIZED / "shape.h5").get_layer("logits").quantizer
    assert manifest["output_fraction_bits"][0] == logits.bits - logits.integer - 1
    summary = report["steps"]["estimate"]["result"]["shape"]["summary"]
    assert summary["initiation_interval_cycles"] <= 1300 and summary["fits"]["xcvu9p"]["dsp"]
    assert report["steps"]["compare"]["result"]["emulation_equals_qat_keras"] is True
    assert "Bit accuracy" in (build_dir / "report.md").read_text()
    summary = json.loads((build_dir / "summary.json").read_text())
    assert summary["net"] == "edge" and summary["bit_exact"] is True and summary["csim_passed"] is True
    assert summary["design"] == "both" and summary["sha256"]["shape"] == load_card_sha(QUANTIZED / "shape.h5")
    both = report["steps"]["estimate"]["result"]["both"]["summary"]
    assert summary["ii_cycles"] == both["initiation_interval_cycles"] and summary["multipliers"] == both["multipliers"]
    assert summary["fits"] == {device: all(f.values()) for device, f in both["fits"].items()}


def test_a_build_resumes_at_a_named_step_from_the_previous_one(build_dir, tmp_path):
    """FINN's start/stop steps: validation alone, the networks, test vectors, projects and compiled emulation
    restored from the build before; a start without a previous build is refused in one line."""
    from cdinn.firmware.build import FirmwareBuildConfig, build

    before = json.loads((build_dir / "report.json").read_text())
    copy = tmp_path / "edge"
    shutil.copytree(build_dir, copy)
    cfg = FirmwareBuildConfig(net="edge", out_dir=str(copy), workers=2, start_step="validate", stop_step="validate")
    report = build(cfg, progress=lambda _: None)
    assert list(report["steps"]) == ["load", "test_vectors", "convert", "compile", "validate"]
    assert report["steps"]["convert"] == before["steps"]["convert"]  # taken from the previous build
    assert report["steps"]["validate"]["result"] == before["steps"]["validate"]["result"] and report["bit_exact"]
    with pytest.raises(CdinnError, match="needs a previous build") as info:
        build(FirmwareBuildConfig(net="edge", out_dir=str(tmp_path / "none"), start_step="csim"))
    assert "\n" not in str(info.value)
    with pytest.raises(CdinnError, match="comes after"):
        build(FirmwareBuildConfig(net="edge", out_dir=str(copy), start_step="csim", stop_step="load"))


def test_csim_command_on_the_build(build_dir, capsys):
    assert main(["csim", "--build", str(build_dir)]) == 0
    assert capsys.readouterr().out.count("PASS") == 3


def test_emulator_backend_reproduces_the_quantized_networks(build_dir, patterns):
    backend = get_backend("emulator", project=str(build_dir / "both"), quantized=str(QUANTIZED))
    amplitude, phase = backend.infer(patterns.diffraction[:4])
    x = quantize_input(network_input(patterns.diffraction[:4]), 9)
    expected = sigmoid(firmware_model(load_quantized(QUANTIZED / "shape.h5")).predict(x, verbose=0))[..., 0]
    assert np.array_equal(amplitude, expected)
    assert backend.provenance()["backend"] == "emulator"


def test_a_model_that_does_not_match_its_firmware_is_refused(build_dir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for role, src in (("shape", "phase"), ("phase", "phase")):
        shutil.copy(QUANTIZED / f"{src}.h5", other / f"{role}.h5")
        card = json.loads((QUANTIZED / f"{src}.card.json").read_text())
        card["weights"] = f"{role}.h5"
        (other / f"{role}.card.json").write_text(json.dumps(card))
    with pytest.raises(CdinnError, match="does not match its firmware"):
        get_backend("emulator", project=str(build_dir / "both"), quantized=str(other))
    with pytest.raises(CdinnError, match="needs the project that streams both"):
        get_backend("emulator", project=str(build_dir / "shape"), quantized=str(QUANTIZED))


def test_run_with_the_emulator_backend(build_dir, patterns, tmp_path, capsys):
    np.save(tmp_path / "f.npy", patterns.diffraction[:3].astype(np.float64) ** 2)
    code = main(
        [
            "run",
            "--input-kind",
            "intensity",
            "--source",
            str(tmp_path / "f.npy"),
            "--backend",
            "emulator",
            "--project",
            str(build_dir / "both"),
            "--quantized",
            str(QUANTIZED),
            "--out",
            str(tmp_path / "o.h5"),
            "--quiet",
        ]
    )
    assert code == 0 and "written 3" in capsys.readouterr().out
    assert Path(tmp_path / "o.h5").stat().st_size > 0
