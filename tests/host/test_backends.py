"""The backend contract (:mod:`cdinn.host.backends.base`), asserted for every registered backend that runs on
this machine (the emulator on the session's firmware build of the edge networks): shapes, dtypes, ranges, the
mask channel, agreement with the float networks within the backend's stated tolerance, provenance, one loaded
instance reused; without a build or a board the firmware backends refuse with one line. Options come from each
backend's dataclass."""

import argparse
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from cdinn.cli.options import add_backend_options, backend_options
from cdinn.errors import CdinnError
from cdinn.host.backends import OPTIONS, REGISTRY, cached_backend, get_backend, takes_threads
from cdinn.host.backends.openvino_backend import bf16_available
from cdinn.model.architectures import input_channels
from cdinn.model.inference import WEIGHTS_DIR, load_network, network_folder

CASES = [
    ("onnx", "default"),
    ("onnx", "edge"),
    ("openvino", "default"),
    ("openvino", "edge"),
    ("openvino-bf16", "default"),
    ("openvino-bf16", "edge"),
    ("keras", "default"),
    ("keras", "edge"),
    ("emulator", "edge"),
]
"""(backend, network set): every registered backend that runs here; the fpga backend needs a board."""


@pytest.fixture(scope="module")
def masked(patterns):
    amplitudes = patterns.diffraction[:6].astype(np.float32)
    mask = np.zeros(amplitudes.shape, bool)
    mask[:, 15:18, 15:18] = True  # a beamstop
    return amplitudes, mask


@pytest.mark.parametrize(("name", "net"), CASES)
def test_backend_contract(name, net, masked, request):
    amplitudes, mask = masked
    options = {}
    if name == "openvino-bf16" and not bf16_available():
        pytest.skip("this CPU has no bfloat16 arithmetic (test_bf16_backend_refuses_or_computes_in_bf16)")
    if name == "emulator":
        build = request.getfixturevalue("edge_firmware")
        options = {"project": str(build / "both"), "quantized": str(WEIGHTS_DIR / f"{net}-q")}
    backend = cached_backend(name, net, tuple(sorted(options.items())))
    assert cached_backend(name, net, tuple(sorted(options.items()))) is backend  # loaded once, then reused
    assert backend.channels == input_channels(load_network(str(network_folder(net)), "shape")[0])
    amplitude, phase = backend.infer(amplitudes, mask)
    assert amplitude.shape == phase.shape == amplitudes.shape
    assert amplitude.dtype == phase.dtype == np.float32
    assert amplitude.min() >= 0 and amplitude.max() <= 1 and np.abs(phase).max() <= np.pi + 1e-6
    reference = get_backend("keras", net=net).infer(amplitudes, mask)  # the float networks
    assert np.abs(amplitude - reference[0]).mean() <= backend.tolerance
    if name != "emulator":  # float runtimes: the phase too, where the object is (bfloat16: ~1e-2 rad)
        error = np.abs(np.angle(np.exp(1j * (phase - reference[1]))))[reference[0] > 0.2]
        assert error.max() < 1e-3 if backend.tolerance <= 1e-5 else error.mean() < 0.02
    provenance = backend.provenance()
    assert provenance["backend"] == name and len(provenance["shape_sha256"]) == 64
    if backend.channels == 2:  # the mask reaches the networks: unmeasured pixels' values do not matter
        spoiled = np.where(mask, np.float32(1e6), amplitudes)
        assert np.array_equal(backend.infer(spoiled, mask)[0], amplitude)


@pytest.mark.parametrize("net", ["default", "edge"])
def test_onnx_layouts_compute_the_same_numbers(net, masked):
    """onnxruntime's two layouts: the combined graph on one thread, and the two networks' own graphs as two
    sessions run concurrently (the default with two or more threads): the same maps, to the bit; the
    provenance says which layout ran."""
    amplitudes, mask = masked
    one = get_backend("onnx", net=net, threads=1)
    two = get_backend("onnx", net=net, threads=2)
    assert (one.layout, len(one.sessions), two.layout, len(two.sessions)) == ("one graph", 1, "two sessions", 2)
    assert two.provenance()["layout"] == "two sessions" and two.provenance()["threads"] == 2
    for got, expected in zip(two.infer(amplitudes, mask), one.infer(amplitudes, mask), strict=True):
        assert np.array_equal(got, expected)
    x = np.random.default_rng(1).random((64, 32, 32, one.channels)).astype(np.float32)
    for got, expected in zip(two.run_graphs(x), one.run_graphs(x), strict=True):
        assert got.shape == (64, 32, 32, 1) and np.array_equal(got, expected)


def test_bf16_backend_refuses_or_computes_in_bf16():
    """OpenVINO silently computes in float32 where the CPU has no bfloat16: the backend says so instead."""
    if bf16_available():
        assert get_backend("openvino-bf16", threads=1).provenance()["precision"] == "bf16"  # as compiled
        assert get_backend("openvino", threads=1).provenance()["precision"] == "f32"
    else:
        with pytest.raises(CdinnError, match="needs a CPU with bfloat16 arithmetic") as info:
            get_backend("openvino-bf16")
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["emulator", "fpga"])
def test_backends_that_need_firmware_or_a_board_refuse_in_one_line(name, tmp_path, monkeypatch):
    monkeypatch.setenv("CDINN_BUILD_DIR", str(tmp_path))  # no firmware built here
    with pytest.raises(CdinnError) as info:
        get_backend(name)
    assert "\n" not in str(info.value) and str(info.value)


def test_every_backend_option_comes_from_its_dataclass_once_on_the_command_line():
    parser = argparse.ArgumentParser()
    add_backend_options(parser)  # an option two backends share (--project) would raise here if added twice
    fields = {f.name for cls in OPTIONS.values() for f in dataclasses.fields(cls)}
    assert set(REGISTRY) == set(OPTIONS) and fields == {"threads", "project", "quantized", "bitstream"}
    assert {name for name, _ in CASES} | {"fpga"} == set(REGISTRY)  # the contract test covers every backend
    # run and Dask set these
    assert [name for name in REGISTRY if takes_threads(name)] == ["onnx", "openvino", "openvino-bf16"]
    args = parser.parse_args(["--backend", "emulator", "--project", "p", "--quantized", "q"])
    assert backend_options(args) == {"project": "p", "quantized": "q"}
    assert backend_options(parser.parse_args([])) == {}  # untyped options keep the dataclasses' defaults
    with pytest.raises(CdinnError, match="the keras backend takes no option threads"):
        get_backend("keras", threads=2)


def test_the_onnx_path_never_imports_tensorflow():
    """The default path (the API, the runner, the batch and Dask paths with the onnx backend) starts without
    TensorFlow's ~5 s import: it matters for every command's start-up and every Dask worker's first task."""
    code = (
        "import sys; import cdinn.host.runner, cdinn.host.distributed, cdinn.host.batch_input; "
        "from cdinn.model.simulate import simulate; from cdinn.api import reconstruct; "
        "r = reconstruct(simulate(2, seed=1).diffraction); float(r.fit[0]); "
        "print('tensorflow' in sys.modules or 'tf_keras' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "False"
