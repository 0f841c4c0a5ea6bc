import h5py
import numpy as np
import pytest

from cdinn.io import atomic_hdf5, split_spec, write_arrays, write_json_atomic


def test_spec_splitting():
    assert split_spec("a/b.h5:/entry/data/data") == (split_spec("a/b.h5")[0], "/entry/data/data")
    assert split_spec("frames.npy")[1] is None


def test_atomic_writes_keep_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.h5"
    write_arrays(path, {"kept": np.ones(4)})
    with pytest.raises(RuntimeError), atomic_hdf5(path) as fh:
        fh.create_dataset("new", data=np.zeros(4))
        raise RuntimeError("crash while writing")
    with h5py.File(path) as fh:
        assert list(fh) == ["kept"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]
    write_json_atomic(tmp_path / "r.json", {"a": 1})
    assert (tmp_path / "r.json").read_text().strip().startswith("{")


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "r.json", {"a": 1})
        write_arrays(tmp_path / "a.h5", {"x": np.zeros(2)})
    finally:
        os.umask(old)
    for name in ("r.json", "a.h5"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_an_output_that_is_an_input_a_folder_or_a_dangling_link_is_refused(tmp_path, patterns, capsys):
    from cdinn.cli import main

    frames = tmp_path / "a.npy"
    np.save(frames, patterns.diffraction[:3])
    before = frames.read_bytes()
    assert main(["reconstruct", str(frames), str(frames), "--net", "edge"]) == 2
    assert "is the input" in capsys.readouterr().err and frames.read_bytes() == before
    link = tmp_path / "link.npy"
    link.symlink_to(frames)
    assert main(["phase-retrieve", str(frames), str(link), "--iterations", "5"]) == 2  # resolves to the input
    assert frames.read_bytes() == before
    (tmp_path / "dangling.h5").symlink_to(tmp_path / "nowhere" / "x.h5")
    assert main(["reconstruct", str(frames), str(tmp_path / "dangling.h5"), "--net", "edge"]) == 2
    assert "symbolic link to nothing" in capsys.readouterr().err
    (tmp_path / "folder.h5").mkdir()
    assert main(["reconstruct", str(frames), str(tmp_path / "folder.h5"), "--net", "edge"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["reconstruct", str(frames), str(tmp_path / "ok.h5"), "--net", "edge"]) == 0
    ok = (tmp_path / "ok.h5").read_bytes()
    assert main(["merge", str(tmp_path / "ok.h5"), "--out", str(tmp_path / "ok.h5")]) == 2
    assert (tmp_path / "ok.h5").read_bytes() == ok
