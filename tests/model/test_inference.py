"""The reconstruct API with the shipped, trained default networks."""

import shutil
from pathlib import Path

import numpy as np
import pytest

import cdinn
from cdinn.errors import CdinnError
from cdinn.model.conventions import complex_object
from cdinn.model.inference import WEIGHTS_DIR, network_folder
from cdinn.model.metrics import reconstruction_metrics


@pytest.mark.parametrize("net", ["paper", "edge"])
def test_shipped_networks_reconstruct_simulated_objects(patterns, net):
    amplitude, phase = cdinn.reconstruct(patterns.diffraction, net=net)
    assert amplitude.shape == phase.shape == patterns.diffraction.shape
    assert amplitude.dtype == np.float32 and 0 <= amplitude.min() and amplitude.max() <= 1
    assert np.abs(phase).max() <= np.pi
    m = reconstruction_metrics(complex_object(amplitude, phase), patterns.amplitude, patterns.phase)
    # trained networks find the object's shape (an untrained one scores IoU ~0.2 here)
    assert np.median(m["support_iou"]) > 0.7
    assert np.median(m["chi2"]) < 2.0


def test_single_frames_scale_and_intensities(patterns):
    amp, phase = cdinn.reconstruct(patterns.diffraction[:3], net="edge")
    one_amp, one_phase = cdinn.reconstruct(patterns.diffraction[0], net="edge")
    assert one_amp.shape == (32, 32) and np.allclose(one_amp, amp[0], atol=1e-5)
    scaled, _ = cdinn.reconstruct(patterns.diffraction[:3] * 1234.5, net="edge")
    assert np.allclose(scaled, amp, atol=1e-5)
    from_intensity, _ = cdinn.reconstruct(patterns.diffraction[:3].astype(np.float64) ** 2, net="edge", intensity=True)
    assert np.allclose(from_intensity, amp, atol=1e-4)


def test_phase_is_zero_outside_the_predicted_support(patterns):
    amplitude, phase = cdinn.reconstruct(patterns.diffraction, net="edge")
    outside = amplitude < 0.1 * amplitude.max(axis=(1, 2), keepdims=True)
    assert outside.any() and np.all(phase[outside] == 0)


def _bad(kind):
    frames = np.ones((3, 32, 32), np.float32)
    if kind == "nan":
        frames[1, 4, 4] = np.nan
    elif kind == "inf":
        frames[2, 0, 0] = np.inf
    elif kind == "negative":
        frames[1, 3, 3] = -1
    elif kind == "empty":
        frames[2] = 0
    elif kind == "shape":
        frames = np.ones((3, 64, 64))
    elif kind == "dtype":
        frames = frames.astype(np.complex64)
    elif kind == "none":
        frames = np.ones((0, 32, 32))
    return frames


@pytest.mark.parametrize(
    "kind,message",
    [
        ("nan", "frame 1 contains NaN or Inf"),
        ("inf", "frame 2 contains NaN or Inf"),
        ("negative", "frame 1 has negative"),
        ("empty", "frame 2 is all zero"),
        ("shape", "must have shape"),
        ("dtype", "must be real numbers"),
        ("none", "holds no frames"),
    ],
)
def test_bad_input_gets_a_one_line_error(kind, message):
    with pytest.raises(CdinnError, match=message) as info:
        cdinn.reconstruct(_bad(kind), net="edge")
    assert "\n" not in str(info.value)


def test_unknown_network_and_tampered_weights(tmp_path):
    with pytest.raises(CdinnError, match="no shipped network set"):
        cdinn.reconstruct(np.ones((32, 32)), net="nonexistent")
    copy = tmp_path / "edge"
    shutil.copytree(WEIGHTS_DIR / "edge", copy)
    data = bytearray((copy / "phase.keras").read_bytes())
    data[-100] ^= 0xFF
    (copy / "phase.keras").write_bytes(bytes(data))
    with pytest.raises(CdinnError, match="do not match their model card"):
        cdinn.reconstruct(np.ones((32, 32)), net=str(copy))
    assert network_folder("default") == WEIGHTS_DIR / "robust"


def test_network_set_names_mean_shipped_sets_and_paths_must_look_like_paths(tmp_path, monkeypatch):
    assert network_folder("edge") == WEIGHTS_DIR / "edge"
    (tmp_path / "host").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CdinnError, match="no shipped network set 'host'"):
        network_folder("host")  # a folder of that name in the working directory is not taken for a set
    with pytest.raises(CdinnError, match="folder not found"):
        network_folder("../../host")  # a path is taken from the working directory, never from model/weights
    assert network_folder("./host") == Path("./host")
    with pytest.raises(CdinnError, match="folder not found"):
        network_folder("./nowhere")
