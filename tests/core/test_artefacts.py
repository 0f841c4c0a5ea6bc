"""Where a network set's artefacts live, and their verification (cdinn.artefacts)."""

import json
import shutil

import pytest

from cdinn.artefacts import (
    build_dir,
    firmware_build,
    firmware_project,
    quantized_folder,
    set_name,
    verified_firmware,
    verified_onnx,
)
from cdinn.errors import CdinnError
from cdinn.model.inference import DEFAULT_NET, WEIGHTS_DIR


def test_names_resolve_to_the_shipped_folders_and_the_build_folder(monkeypatch, tmp_path):
    assert set_name("default") == DEFAULT_NET and set_name(str(tmp_path / "mine")) == "mine"
    assert quantized_folder("default") == WEIGHTS_DIR / f"{DEFAULT_NET}-q" == quantized_folder(f"{DEFAULT_NET}-q")
    assert quantized_folder(str(WEIGHTS_DIR / "edge-q")) == WEIGHTS_DIR / "edge-q"  # a folder is used as it is
    monkeypatch.setenv("CDINN_BUILD_DIR", str(tmp_path))
    assert build_dir() == tmp_path and firmware_build("edge-q") == tmp_path / "firmware" / "edge"
    assert firmware_project("default", "shape") == tmp_path / "firmware" / DEFAULT_NET / "shape"
    monkeypatch.delenv("CDINN_BUILD_DIR")
    assert build_dir().name == "build" and "model" not in build_dir().parts  # outside the source packages


def test_an_onnx_export_must_come_from_the_sets_own_weights(tmp_path):
    path, sources = verified_onnx("edge")
    assert path.name == "cdinn.onnx" and set(sources) == {"shape", "phase"}
    copy = tmp_path / "edge"
    shutil.copytree(WEIGHTS_DIR / "edge", copy)
    shutil.copy(WEIGHTS_DIR / "paper" / "cdinn.onnx", copy / "cdinn.onnx")  # another set's export
    with pytest.raises(CdinnError, match="exported from other shape weights"):
        verified_onnx(str(copy))
    (copy / "cdinn.onnx").unlink()
    with pytest.raises(CdinnError, match="no ONNX export"):
        verified_onnx(str(copy))


def test_a_firmware_manifest_must_stream_both_networks(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"nets": ["shape"], "library": "x.so", "project": "p",
                                                        "input_size": 1024, "output_sizes": [1024]}))
    with pytest.raises(CdinnError, match="needs the project that streams both networks"):
        verified_firmware(tmp_path)
    with pytest.raises(CdinnError, match="firmware manifest"):
        verified_firmware(tmp_path / "nowhere")
