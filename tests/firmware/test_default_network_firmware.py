"""The firmware of the default network set (the one `make firmware` builds): its shipped quantized networks
convert, compile, emulate bit-exactly, pass their own C test benches (C simulation with g++), and the
estimate fits the target part within the frame interval and the latency target."""

import json

import pytest

from cdinn.artefacts import quantized_folder
from cdinn.firmware.build import FirmwareBuildConfig, build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("firmware") / "default"
    cfg = FirmwareBuildConfig(
        out_dir=str(out), combined=False, validate_patterns=24, compare_patterns=24, testbench_patterns=4, workers=2
    )
    return build(cfg, progress=lambda _: None), out


def test_default_network_is_bit_exact_and_passes_c_simulation(report):
    result, out = report
    assert result["config"]["quantized"] == str(quantized_folder("default"))
    assert result["firmware_config"]["Part"].startswith("xczu9eg")
    assert result["bit_exact"] is True and result["csim_passed"] is True
    for role in ("shape", "phase"):
        assert result["steps"]["validate"]["result"][role]["identical_fraction"] == 1.0
        assert result["steps"]["csim"]["result"][role]["patterns"] == 4
    assert result["steps"]["compare"]["result"]["emulation_equals_qat_keras"] is True
    for role in ("shape", "phase"):  # the firmware streams both input channels: amplitude and mask
        assert json.loads((out / role / "manifest.json").read_text())["input_size"] == 2 * 32 * 32


def test_default_network_summary_fits_the_part(report):
    _, out = report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["net"] == "robust" and summary["design"] == "shape+phase"
    assert summary["bit_exact"] is True and set(summary["sha256"]) == {"shape", "phase"}
    assert summary["fits"]["xczu9eg"] is True and summary["multipliers"] <= 2520 and summary["bram18"] <= 1824
    assert summary["ii_cycles"] <= 5000 and summary["frame_interval_us"] == pytest.approx(summary["ii_cycles"] * 5e-3)
    # 50 us with one input channel; the mask channel costs 5 us within the part's 2520 DSPs (docs/firmware.md)
    assert summary["latency_us"] <= 55
