"""Inference latency of every backend that runs here, at batch 1 and 64, for both configurations."""

from pathlib import Path

import pytest

from cdinn.host.backends import get_backend

BUILD = Path(__file__).resolve().parents[1] / "firmware" / "build"


@pytest.fixture(scope="session")
def edge_firmware(tmp_path_factory):
    """The combined edge firmware project: the one `make firmware` built, else built here (compile only)."""
    project = BUILD / "edge" / "both"
    if not (project / "manifest.json").is_file():
        from cdinn.firmware.build import FirmwareBuildConfig, build
        from cdinn.model.inference import WEIGHTS_DIR

        out = tmp_path_factory.mktemp("firmware") / "edge"
        build(FirmwareBuildConfig(source=str(WEIGHTS_DIR / "edge-q"), out_dir=str(out), validate_patterns=8),
              stop_after="compile", progress=lambda _: None)
        project = out / "both"
    return project


def _backend(name, config, edge_firmware):
    if name == "emulator":
        if config != "edge":
            pytest.skip("only the edge networks are quantized and built as firmware (the FPGA design)")
        from cdinn.model.inference import WEIGHTS_DIR

        return get_backend("emulator", project=str(edge_firmware), quantized=str(WEIGHTS_DIR / "edge-q"))
    return get_backend(name, net=config)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("config", ["paper", "edge"])
@pytest.mark.parametrize("backend", ["keras", "onnx", "emulator"])
def test_inference(benchmark, bench_patterns, edge_firmware, backend, config, batch):
    """Both networks (shape and phase) on ``batch`` patterns, host normalisation included."""
    b = _backend(backend, config, edge_firmware)
    frames = bench_patterns.diffraction[:batch]
    benchmark.extra_info.update(patterns_per_call=batch, backend=backend, config=config, batch=batch)
    rounds = 3 if backend == "emulator" else (20 if batch == 64 else 200)
    amplitude, phase = benchmark.pedantic(b.infer, args=(frames,), rounds=rounds, warmup_rounds=2)
    assert amplitude.shape == phase.shape == (batch, 32, 32)
