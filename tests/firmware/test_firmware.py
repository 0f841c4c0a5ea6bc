"""hls4ml conversion and the compiled C++ emulation (real g++), against the QKeras model."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from cdinn.errors import CdinnError
from cdinn.firmware.config import FirmwareConfig, load_config, save_config
from cdinn.firmware.convert import compile_emulation, convert, tf_keras_as_keras
from cdinn.firmware.emulate import Emulator, EmulatorSpec, predict_parallel
from cdinn.firmware.manifest import check_models_match, read_manifest, write_manifest
from cdinn.firmware.synth import read_synthesis_report, require_vendor_tool
from cdinn.firmware.validate import compare_outputs, first_mismatching_layer, validate
from cdinn.model.architectures import ArchitectureConfig, build_network
from cdinn.quantize.config import QuantConfig
from cdinn.quantize.grid import quantize_input
from cdinn.quantize.qat import firmware_model, quantized_network

TINY = ArchitectureConfig("tiny", filters=(4, 8), convs_per_stage=1, size=16)
REPO = Path(__file__).resolve().parents[2]


def _tiny_firmware_model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    float_model = build_network(TINY, "phase")
    x = np.random.default_rng(seed).random((64, 16, 16, 1)).astype(np.float32)
    return firmware_model(quantized_network(float_model, QuantConfig(), x)), quantize_input(x, 9)


def _build(tmp_path, backend="Vitis", io_type="io_stream", name="tiny"):
    fw, x = _tiny_firmware_model()
    cfg = FirmwareConfig(Backend=backend, IOType=io_type, ProjectName=name, ReuseFactor={"default": 3})
    hls_model = convert(fw, cfg, tmp_path / name, x[:3], fw.predict(x[:3], verbose=0))
    library = compile_emulation(hls_model)
    return fw, x, hls_model, EmulatorSpec(str(library), name, 256, (256,))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("fw"))


def test_keras_alias_is_scoped():
    import tf_keras

    before = sys.modules.get("keras")
    with tf_keras_as_keras():
        import keras

        assert keras is tf_keras
    assert sys.modules.get("keras") is before


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["Vitis", "Vivado"])
@pytest.mark.parametrize("io_type", ["io_stream", "io_parallel"])
def test_emulation_is_bit_exact_with_qkeras(tmp_path, backend, io_type):
    fw, x, _, spec = _build(tmp_path, backend, io_type)
    stats = validate(fw, spec, x, workers=1)
    assert stats["identical_fraction"] == 1.0 and stats["values"] == 64 * 256
    assert (tmp_path / "tiny" / "build_prj.tcl").is_file()
    assert (tmp_path / "tiny" / "tb_data" / "tb_input_features.dat").stat().st_size > 0


def test_project_and_test_bench_are_written(compiled):
    fw, x, hls_model, spec = compiled
    project = Path(hls_model.config.get_output_dir())
    for name in ("build_prj.tcl", "firmware/tiny.cpp", "tiny_test.cpp", "hls4ml_config.yml"):
        assert (project / name).is_file(), name
    rows = (project / "tb_data" / "tb_input_features.dat").read_text().strip().splitlines()
    assert len(rows) == 3 and len(rows[0].split()) == 256


def test_parallel_emulation_equals_serial(compiled):
    fw, x, _, spec = compiled
    assert np.array_equal(predict_parallel(spec, x[:8], workers=2), Emulator(spec).predict(x[:8]))


def test_a_perturbed_weight_is_caught_and_located(tmp_path):
    fw, x, hls_model, spec = _build(tmp_path, name="perturbed")
    kernel, bias = fw.get_layer("dec0_conv0").get_weights()
    kernel[0, 0, 0, 0] += 0.5
    fw.get_layer("dec0_conv0").set_weights([kernel, bias])
    stats = validate(fw, spec, x, workers=1)
    assert stats["identical_fraction"] < 1.0 and stats["patterns_with_mismatch"] > 0
    assert first_mismatching_layer(hls_model, fw, x) == "dec0_conv0"


def test_compare_outputs_counts():
    a = np.zeros((2, 4))
    b = a.copy()
    b[1, 2] = 0.25
    s = compare_outputs(a, b)
    assert s["identical_fraction"] == 7 / 8 and s["patterns_with_mismatch"] == 1 and s["max_abs_difference"] == 0.25


def test_estimate_against_a_hand_computed_case(compiled):
    from cdinn.firmware.estimate import (
        RESOURCE_PIXEL_CYCLES,
        RESOURCE_WINDOW_CYCLES,
        estimate_layers,
        summarise_estimate,
    )

    _, _, hls_model, _ = compiled
    layers = {layer.name: layer for layer in estimate_layers(hls_model)}
    first = layers["enc0_conv0"]  # 3x3, 1 -> 4 channels on a padded 18x18 input, reuse 3, Resource strategy
    assert first.multipliers == 12 and first.reuse == 3 and first.strategy == "resource"
    assert first.cycles == 18 * 18 * RESOURCE_PIXEL_CYCLES + 16 * 16 * (3 + RESOURCE_WINDOW_CYCLES)
    assert first.weight_bits == 3 * 3 * 1 * 4 * 8 + 4 * 8
    assert first.line_buffer_bits == 2 * 18 * 1 * 9
    bottleneck = layers["enc1_conv0"]  # 4 -> 8 channels at 8x8 (padded 10x10)
    assert bottleneck.reuse == 3 and bottleneck.multipliers == 3 * 3 * 4 * 8 // 3
    assert bottleneck.cycles == 10 * 10 * RESOURCE_PIXEL_CYCLES + 8 * 8 * (3 + RESOURCE_WINDOW_CYCLES)
    summary = summarise_estimate(list(layers.values()), 5.0, "xcvu9p-flgb2104-2-e")
    assert summary["initiation_interval_cycles"] == max(layer.cycles for layer in layers.values())
    assert summary["multipliers"] == sum(layer.multipliers for layer in layers.values())
    assert summary["latency_cycles"] == round(layers["out_conv"].last_output)
    assert summary["latency_cycles"] > summary["initiation_interval_cycles"]
    assert summary["fits"]["xcvu9p"] == {"dsp": True, "bram18": True}
    assert "ESTIMATE" in summary["label"]
    for layer in layers.values():  # no layer emits before its input starts, but padding needs no input
        assert layer.first_output <= layer.last_output
        if layer.kind != "ZeroPadding2D":
            assert all(layer.first_output > layers[name].first_output for name in layer.inputs)


def test_latency_strategy_timing_by_hand(tmp_path):
    """A Latency-strategy convolution takes one input pixel every R cycles (padding included) and emits
    LATENCY_DEPTH_CYCLES after the pixel that completes a window; the padding layer before it feeds it a
    pixel a cycle from cycle 1."""
    from cdinn.firmware.estimate import LATENCY_DEPTH_CYCLES, estimate_layers

    fw, x = _tiny_firmware_model()
    cfg = FirmwareConfig(
        ProjectName="tinylat", ReuseFactor={"default": 3}, Strategy={"default": "Resource", "enc0_conv0": "Latency"}
    )
    layers = {layer.name: layer for layer in estimate_layers(convert(fw, cfg, tmp_path / "tinylat"))}
    conv = layers["enc0_conv0"]
    assert conv.strategy == "latency" and conv.multipliers == 12 and conv.cycles == 18 * 18 * 3
    assert conv.first_output == 1 + 3 * (2 * 18 + 3) + LATENCY_DEPTH_CYCLES  # window complete at padded (2, 2)
    assert conv.last_output == 1 + 3 * 18 * 18 + LATENCY_DEPTH_CYCLES
    assert layers["enc1_conv0"].strategy == "resource"


def test_strategy_per_layer_in_the_configuration():
    cfg = FirmwareConfig(Strategy={"default": "Resource", "enc0_conv0": "Latency"})
    assert cfg.strategy("enc0_conv0") == "Latency" and cfg.strategy("shape_enc0_conv0") == "Latency"
    assert cfg.strategy("enc1_conv0") == "Resource" and FirmwareConfig().strategy("anything") == "Resource"
    with pytest.raises(CdinnError, match="Strategy"):
        FirmwareConfig(Strategy={"default": "Fast"})


def test_manifest_round_trip_and_model_mismatch(compiled, tmp_path):
    _, _, _, spec = compiled
    shutil.copy(spec.library, tmp_path / "lib.so")  # the library lies inside the project folder
    spec = EmulatorSpec(str(tmp_path / "lib.so"), spec.project, spec.input_size, spec.output_sizes)
    write_manifest(tmp_path, spec, ("phase",), {"phase": "a" * 64}, 9, [10], FirmwareConfig())
    manifest, spec2 = read_manifest(tmp_path)
    assert manifest["output_fraction_bits"] == [10] and manifest["input_bits"] == 9
    assert spec2.output_sizes == spec.output_sizes and Path(spec2.library).resolve() == Path(spec.library).resolve()
    with open(tmp_path / "lib.so", "ab") as fh:
        fh.write(b"\0")  # a library changed after it was built is refused before it is loaded
    with pytest.raises(CdinnError, match="does not match the sha256 its manifest records"):
        read_manifest(tmp_path)
    check_models_match(manifest, {"phase": {"sha256": "a" * 64}})
    with pytest.raises(CdinnError, match="does not match its firmware"):
        check_models_match(manifest, {"phase": {"sha256": "b" * 64}})
    with pytest.raises(CdinnError, match="firmware manifest not found"):
        read_manifest(tmp_path / "nowhere")


def test_emulator_errors(compiled):
    _, _, _, spec = compiled
    with pytest.raises(CdinnError, match="emulation library not found"):
        Emulator(EmulatorSpec("/nonexistent.so", "tiny", 256, (256,)))
    with pytest.raises(CdinnError, match="expects 256 values"):
        Emulator(spec).predict(np.zeros((1, 8, 8)))
    with pytest.raises(CdinnError, match="has no function"):
        Emulator(EmulatorSpec(spec.library, "other", 256, (256,)))


def test_yaml_config_round_trip(tmp_path):
    cfg = load_config("edge")
    assert cfg.IOType == "io_stream" and cfg.Backend == "Vitis" and cfg.reuse("dec1_conv0") == 13
    assert cfg.reuse("no_such_layer") == 1 and cfg.reuse("phase_dec1_conv0") == 13
    assert cfg.strategy("phase_enc0_conv0") == "Latency"
    save_config(cfg, tmp_path / "c.yml")
    assert load_config(tmp_path / "c.yml") == cfg
    (tmp_path / "bad.yml").write_text("Backend: Vitis\nFrobnicate: 3\n")
    with pytest.raises(CdinnError, match="unknown keys"):
        load_config(tmp_path / "bad.yml")
    with pytest.raises(CdinnError, match="not found"):
        load_config("nonexistent")


def test_synthesis_without_vendor_tools_fails_with_one_line(compiled, tmp_path):
    with pytest.raises(CdinnError, match="vendor HLS tool not found"):
        require_vendor_tool(tmp_path)
    assert read_synthesis_report(tmp_path) is None
    result = subprocess.run(
        ["make", "-s", "synth", f"SYNTH_PROJECT={tmp_path}"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("cdinn: error:")]
    assert len(lines) == 1 and "vitis_hls" in lines[0] and str(tmp_path) in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["paper", "edge"])
@pytest.mark.parametrize("net", ["shape", "phase"])
def test_every_shipped_float_network_converts_and_compiles(tmp_path, config, net):
    from cdinn.model.inference import load_network, network_folder

    model, _ = load_network(str(network_folder(config)), net)
    cfg = FirmwareConfig(ProjectName=f"{config}_{net}", ReuseFactor={"default": 16})
    hls_model = convert(model, cfg, tmp_path / "prj", None, None)
    library = compile_emulation(hls_model)
    assert library.is_file() and (tmp_path / "prj" / "build_prj.tcl").is_file()
    assert [layer.class_name for layer in hls_model.get_layers()].count("Resize") == 2


def test_c_simulation_of_the_projects_own_test_bench(tmp_path):
    from cdinn.firmware.csim import EXPECTED, run_csim
    from cdinn.quantize.qat import fraction_bits_of

    fw, x, hls_model, spec = _build(tmp_path, name="tinycsim")
    project = tmp_path / "tinycsim"
    write_manifest(
        project,
        spec,
        ("phase",),
        {"phase": "0" * 64},
        9,
        [fraction_bits_of(fw)],
        FirmwareConfig(ProjectName="tinycsim"),
    )
    result = run_csim(project)
    assert result["passed"] and result["patterns"] == 3 and result["values"] == 3 * 256
    assert result["max_abs_difference"] <= result["tolerance"]
    # a wrong expectation is caught: shift one expected value by a whole output step
    expected = np.loadtxt(project / EXPECTED, ndmin=2)
    expected[1, 7] += 2.0 ** -fraction_bits_of(fw)
    np.savetxt(project / EXPECTED, expected)
    assert not run_csim(project)["passed"]
    (project / "tinycsim_test.cpp").unlink()
    with pytest.raises(CdinnError, match="no C test bench"):
        run_csim(project)
