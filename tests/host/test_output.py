"""The one output schema: the same frames through every writer (``cdinn run``, ``cdinn reconstruct`` in one
process and on a Dask LocalCluster, ``cdinn merge`` of two runs) give the same datasets and attributes."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from cdinn.cli import main
from cdinn.errors import CdinnError
from cdinn.host import output

TIMES = ("arrival_time", "completion_time", "latency")
"""Per-frame fields that depend on when the frames were read and written."""
NOT_SHARED = {
    "provenance": ("command", "cluster", "source", "threads", "layout"),
    "root": ("merged_from", "merge_report"),
}
"""What one invocation legitimately records differently: the command line, the Dask cluster, the input named,
onnxruntime's thread setting (run: 1 by default) and the layout it implies (one graph on one thread, the two
networks' sessions otherwise); merge's own report."""


def _data_files(tmp_path, patterns):
    """Two Eiger-style data files of 20 intensity frames each (image_nr_low 1 and 21), a NaN in frame 8."""
    frames = np.resize((patterns.diffraction.astype(np.float64) ** 2).astype(np.float32), (40, 32, 32))
    frames[7, 4, 4] = np.nan
    paths = []
    for part, low in ((0, 1), (1, 21)):
        path = tmp_path / f"series_data_{part + 1:06d}.h5"
        with h5py.File(path, "w") as fh:
            dset = fh.create_dataset(
                "entry/data/data", data=frames[20 * part : 20 * part + 20], chunks=(1, 32, 32), compression="gzip"
            )
            dset.attrs["image_nr_low"] = low
        paths.append(str(path))
    return paths


def _layout(path):
    """Every dataset's (shape[1:], dtype, attributes) and every group's attributes, by path; the root's."""
    items = {}
    with h5py.File(path) as fh:

        def visit(name, node):
            attrs = {k: np.asarray(v).tolist() for k, v in node.attrs.items()}
            items[name] = (node.shape[1:], str(node.dtype), attrs) if isinstance(node, h5py.Dataset) else attrs

        fh.visititems(visit)
    return items


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, patterns):
    tmp_path = tmp_path_factory.mktemp("writers")
    first, second = _data_files(tmp_path, patterns)
    spec = str(tmp_path / "series_data_*.h5")
    beamstop = np.zeros((32, 32), np.uint8)
    beamstop[15:18, 15:18] = 1  # every frame's 3x3 centre unmeasured: the mask-dependent fields are not all 0
    np.save(tmp_path / "beamstop.npy", beamstop)
    mask = ["--mask", str(tmp_path / "beamstop.npy")]
    out = {name: str(tmp_path / f"{name}.h5") for name in ("run", "reconstruct", "cluster", "merge")}
    assert main(["run", "--source", spec, "--out", out["run"], "--backend", "onnx", "--quiet", *mask]) == 0
    assert main(["reconstruct", spec, out["reconstruct"], *mask]) == 0  # the data files declare counts
    assert main(["reconstruct", spec, out["cluster"], "--cluster", "local:2", "--chunk", "8", *mask]) == 0
    halves = [str(tmp_path / "half1.h5"), str(tmp_path / "half2.h5")]
    for source, half in zip((second, first), halves, strict=True):  # merge puts them back in frame order
        assert main(["run", "--source", source, "--out", half, "--backend", "onnx", "--quiet", *mask]) == 0
    assert main(["merge", *halves, "--out", out["merge"]]) == 0
    return out


def test_every_writer_writes_the_same_datasets_and_attributes(outputs):
    layouts = {name: _layout(path) for name, path in outputs.items()}
    for name, layout in layouts.items():
        assert layout == layouts["run"], name  # every dataset and group, their dtypes, units and NeXus attributes
    reference = output.read(outputs["run"])
    assert reference["frame_number"].tolist() == [n for n in range(1, 41) if n != 8]
    assert np.allclose(reference["masked_fraction"], 9 / 1024) and (reference["unconstrained"] > 0.1).all()
    assert reference["rejected"]["frame_number"].tolist() == [8] and "NaN" in reference["rejected"]["reason"][0]
    for name, path in outputs.items():
        data = output.read(path)
        for field in output.PER_FRAME:
            if field in TIMES:
                assert np.all(data["latency"] >= 0) and np.all(data["arrival_time"] > 1.7e9), name
            elif data[field].dtype.kind == "f":
                assert np.allclose(data[field], reference[field], atol=1e-4), (name, field)
            else:
                assert np.array_equal(data[field], reference[field]), (name, field)
        assert data["rejected"]["frame_number"].tolist() == [8]
        assert list(data["rejected"]["reason"]) == list(reference["rejected"]["reason"]), name
        attrs, ref = data["attrs"], reference["attrs"]
        assert set(attrs) - set(NOT_SHARED["root"]) == set(ref), name
        assert set(output.ROOT_ATTRS) <= set(attrs) and {"shape_sha256", "phase_sha256"} <= set(attrs)
        assert attrs["counts"] == {"received": 40, "written": 39, "rejected": 1, "missed": 0, "refined": 0}, name
        assert attrs["complete"] and attrs["preprocess"] == ref["preprocess"], name
        mine, theirs = (
            {k: v for k, v in p.items() if k not in NOT_SHARED["provenance"]}
            for p in (attrs["provenance"], ref["provenance"])
        )
        assert mine == theirs and mine["backend"] == "onnx" and mine["net"] == "default", name
        assert "tensorflow" in mine["versions"] and len(mine["shape_sha256"]) == 64
    with h5py.File(outputs["merge"]) as fh:
        report = json.loads(fh.attrs["merge_report"])
    assert report["missing"] == [] and report["duplicates"] == [] and report["frames"] == 39


def test_outputs_are_nexus_with_the_amplitude_as_default_signal(outputs):
    for name, path in outputs.items():
        with h5py.File(path) as fh:
            assert fh.attrs["NX_class"] == "NXroot" and fh.attrs["default"] == "entry", name
            data = fh[output.NXDATA]
            assert data.attrs["NX_class"] == "NXdata" and data.attrs["signal"] == "amplitude"
            assert data["amplitude"].shape == fh["amplitude"].shape and fh["phase"].attrs["units"] == "rad"
            assert fh["coherence_sigma"].attrs["units"] == "pixel" and fh["latency"].attrs["units"] == "s"


def test_the_schema_refuses_a_batch_without_every_field(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as fh:
        output.create(fh)
        fields = {
            name: np.zeros((1, 32, 32) if f.image else 1, f.dtype)
            for name, f in output.PER_FRAME.items()
            if name != "source"
        }
        fields["source"] = np.array(["file.h5:/entry/data/data"], object)
        output.append(fh, fields)
        with pytest.raises(ValueError, match="missing \\['fit'\\]"):
            output.append(fh, {k: v for k, v in fields.items() if k != "fit"})
        with pytest.raises(ValueError, match="different lengths"):
            output.append(fh, dict(fields, fit=np.zeros(2)))
        assert len(fh["amplitude"]) == 1


@pytest.mark.parametrize("change", [{"shape_sha256": "0" * 64}, {"views": 8}])
def test_merge_refuses_outputs_of_different_networks_or_inversion(outputs, tmp_path, change):
    from cdinn.host.merge import merge

    other = tmp_path / "other.h5"
    with h5py.File(outputs["run"]) as src, h5py.File(other, "w") as fh:
        for name in src:
            src.copy(name, fh)
        fh.attrs.update(src.attrs)
        provenance = json.loads(src.attrs["provenance"])
        assert provenance["views"] == 1
        fh.attrs["provenance"] = json.dumps(dict(provenance, **change))
    with pytest.raises(CdinnError, match="was not made like"):
        merge([outputs["run"], str(other)], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_an_output_of_an_older_cdinn_is_refused_by_name(outputs, tmp_path):
    older = tmp_path / "older.h5"
    with h5py.File(outputs["run"]) as src, h5py.File(older, "w") as fh:
        for name in src:
            if name != "centre_offset":  # a field this version added
                src.copy(name, fh)
        fh.attrs.update(src.attrs)
    with pytest.raises(CdinnError, match="written by an older cdinn \\(it lacks centre_offset\\)"):
        output.read(str(older))


def test_reconstruct_says_how_much_is_unchecked_only_when_pixels_are_unmeasured(outputs, tmp_path, capsys):
    """`cdinn reconstruct` ends with the median fit, and the median unconstrained-mode figure when some pixels
    had no measurement (the fixture's 3x3 beamstop)."""
    folder = Path(outputs["run"]).parent  # the fixture's data files and mask
    spec, beamstop = str(folder / "series_data_*.h5"), str(folder / "beamstop.npy")
    written = output.read(outputs["reconstruct"])
    capsys.readouterr()
    assert main(["reconstruct", spec, str(tmp_path / "masked.h5"), "--mask", beamstop]) == 0
    said = capsys.readouterr().out
    assert f"median unconstrained {np.median(written['unconstrained']):.2f}" in said
    assert main(["reconstruct", spec, str(tmp_path / "plain.h5")]) == 0
    assert "unconstrained" not in capsys.readouterr().out
