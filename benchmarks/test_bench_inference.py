"""Inference latency of every backend that runs here, at batch 1 and 64 (the C++ emulation, which runs frame by
frame, at 1 and 8), for every network set."""

from pathlib import Path

import pytest

from cdinn.host.backends import get_backend


@pytest.fixture(scope="session")
def firmware_projects(tmp_path_factory, request):
    """The combined firmware project per configuration: the one `make firmware` built, else the test suite's
    edge build (``edge_firmware``), else built here from the shipped quantized networks (conversion and
    compilation only)."""
    from cdinn.artefacts import firmware_project
    from cdinn.firmware.build import FirmwareBuildConfig, build

    projects = {}

    def project(config: str) -> Path:
        if config not in projects:
            built = firmware_project(config)
            if not (built / "manifest.json").is_file() and config == "edge":
                built = request.getfixturevalue("edge_firmware") / "both"
            if not (built / "manifest.json").is_file():
                out = tmp_path_factory.mktemp("firmware") / config
                build(
                    FirmwareBuildConfig(net=config, out_dir=str(out), validate_patterns=8, stop_step="compile"),
                    progress=lambda _: None,
                )
                built = out / "both"
            projects[config] = built
        return projects[config]

    return project


def _backend(name, config, firmware_projects):
    if name == "emulator":
        return get_backend("emulator", net=config, project=str(firmware_projects(config)))
    return get_backend(name, net=config)


CASES = [(b, config, batch) for b in ("keras", "onnx") for config in ("robust", "paper", "edge") for batch in (1, 64)]
CASES += [("emulator", config, batch) for config in ("paper", "edge") for batch in (1, 8)]  # quantized, firmware


@pytest.mark.parametrize(("backend", "config", "batch"), CASES)
def test_inference(benchmark, bench_patterns, firmware_projects, backend, config, batch):
    """Both networks (shape and phase) on ``batch`` patterns, host normalisation included."""
    b = _backend(backend, config, firmware_projects)
    frames = bench_patterns.diffraction[:batch]
    benchmark.extra_info.update(patterns_per_call=batch, backend=backend, config=config, batch=batch)
    rounds = 3 if backend == "emulator" else (20 if batch == 64 else 200)
    warmup = 0 if backend == "emulator" else 2
    amplitude, phase = benchmark.pedantic(b.infer, args=(frames,), rounds=rounds, warmup_rounds=warmup)
    assert amplitude.shape == phase.shape == (batch, 32, 32)
