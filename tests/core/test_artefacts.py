"""Where a network set's artefacts live (cdinn.artefacts), and their verification beside the code that owns
them (cdinn.host.onnx_export.verified_onnx, cdinn.firmware.manifest.verified_firmware)."""

import json
import shutil

import pytest

from cdinn.artefacts import (
    build_dir,
    firmware_build,
    firmware_project,
    quantized_folder,
    set_name,
)
from cdinn.errors import CdinnError
from cdinn.firmware.manifest import verified_firmware
from cdinn.host.onnx_export import onnx_sources, verified_onnx
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
    with pytest.raises(CdinnError, match="does not match the sha256 its export recorded"):
        verified_onnx(str(copy))
    shutil.copy(WEIGHTS_DIR / "paper" / "onnx.sha256.json", copy / "onnx.sha256.json")  # with its record
    with pytest.raises(CdinnError, match="exported from other shape weights"):
        verified_onnx(str(copy))
    (copy / "cdinn.onnx").unlink()
    with pytest.raises(CdinnError, match="no ONNX export"):
        verified_onnx(str(copy))


def test_a_tampered_onnx_graph_is_refused_before_a_session_is_made(tmp_path):
    import onnx

    copy = tmp_path / "edge"
    shutil.copytree(WEIGHTS_DIR / "edge", copy)
    model = onnx.load(str(copy / "cdinn.onnx"))
    kernel = next(t for t in model.graph.initializer if len(t.raw_data) > 64)
    kernel.raw_data = bytes(b ^ 0x80 if i % 4 == 3 else b for i, b in enumerate(kernel.raw_data))  # negated floats
    onnx.save(model, str(copy / "cdinn.onnx"))  # metadata (the Keras networks' sha256) kept
    assert onnx_sources(copy / "cdinn.onnx") == onnx_sources(WEIGHTS_DIR / "edge" / "cdinn.onnx")
    with pytest.raises(CdinnError, match="changed or corrupt"):
        verified_onnx(str(copy))
    (copy / "onnx.sha256.json").unlink()
    with pytest.raises(CdinnError, match="ONNX record not found"):
        verified_onnx(str(copy))


def test_an_emulation_library_outside_its_project_is_refused_before_it_is_loaded(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "evil.so").write_bytes(b"not loaded")
    (project / "manifest.json").write_text(
        json.dumps(
            {
                "roles": ["phase", "shape"],
                "library": "../evil.so",
                "project": "p",
                "input_size": 1024,
                "output_sizes": [1024, 1024],
            }
        )
    )
    with pytest.raises(CdinnError, match="lies outside the project folder"):
        verified_firmware(project)
    (project / "lib.so").symlink_to(tmp_path / "evil.so")  # a link out of the project counts as outside
    (project / "manifest.json").write_text(
        json.dumps(
            {
                "roles": ["phase", "shape"],
                "library": "lib.so",
                "project": "p",
                "input_size": 1024,
                "output_sizes": [1024, 1024],
            }
        )
    )
    with pytest.raises(CdinnError, match="lies outside the project folder"):
        verified_firmware(project)


def test_a_firmware_manifest_must_stream_both_networks(tmp_path):
    (tmp_path / "manifest.json").write_text(
        json.dumps({"roles": ["shape"], "library": "x.so", "project": "p", "input_size": 1024, "output_sizes": [1024]})
    )
    with pytest.raises(CdinnError, match="needs the project that streams both networks"):
        verified_firmware(tmp_path)
    with pytest.raises(CdinnError, match="firmware manifest"):
        verified_firmware(tmp_path / "nowhere")
    (tmp_path / "manifest.json").write_text(  # written by an older cdinn ("nets"): one line, rebuild
        json.dumps({"nets": ["shape", "phase"], "library": "x.so", "project": "p", "input_size": 4, "output_sizes": []})
    )
    with pytest.raises(CdinnError, match="lacks roles .* rebuild with `cdinn firmware`"):
        verified_firmware(tmp_path)
