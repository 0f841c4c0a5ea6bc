"""Archive reprocessing on Dask distributed: real LocalClusters of worker processes on loopback."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cdinn.host import output
from cdinn.host.distributed import plan, planned_preprocessing, reprocess
from cdinn.host.preprocess import PreprocessConfig, Preprocessor

pytestmark = pytest.mark.slow
CDINN = str(Path(sys.executable).with_name("cdinn"))


def _frames(patterns, n):
    return np.resize((patterns.diffraction.astype(np.float64) ** 2).astype(np.float32), (n, 32, 32))


def _datasets(path):
    with h5py.File(path) as fh:
        return {k: fh[k][()] for k in ("amplitude", "phase", "fit", "frame_number")}


def test_cluster_output_equals_the_single_process_command(tmp_path, patterns):
    """Two views of each pattern (--views) as well: the workers are given every inversion option."""
    frames = _frames(patterns, 90)
    frames[17] = np.nan  # bad frames are rejected with their reason, the others go on
    np.save(tmp_path / "in.npy", frames)
    good = np.delete(frames, 17, axis=0)
    np.save(tmp_path / "good.npy", good)
    single = subprocess.run(
        [
            CDINN,
            "reconstruct",
            str(tmp_path / "good.npy"),
            str(tmp_path / "single.h5"),
            "--input-kind",
            "intensity",
            "--net",
            "edge",
            "--views",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr
    run = subprocess.run(
        [
            CDINN,
            "reconstruct",
            str(tmp_path / "in.npy"),
            str(tmp_path / "dask.h5"),
            "--input-kind",
            "intensity",
            "--net",
            "edge",
            "--cluster",
            "local:2",
            "--chunk",
            "16",
            "--views",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "reconstructed 89 of 90 frame(s) in 6 chunks" in run.stdout
    one, many = _datasets(tmp_path / "single.h5"), _datasets(tmp_path / "dask.h5")
    assert many["frame_number"].tolist() == [i for i in range(90) if i != 17]
    for name in ("amplitude", "phase", "fit"):
        assert np.allclose(one[name], many[name], atol=1e-5), name
    with h5py.File(tmp_path / "dask.h5") as fh:
        assert fh["rejected/frame_number"][()].tolist() == [17]
        assert "NaN" in fh["rejected/reason"][0].decode()
        assert json.loads(fh.attrs["provenance"])["views"] == 2


def _discs(radii, size=128):
    """(n, size, size) intensities of discs of the given radii (px) with a phase ramp: oversampling ~size/(2r)."""
    yy, xx = np.mgrid[:size, :size] - size // 2
    objects = [(xx**2 + yy**2 <= r**2) * np.exp(0.3j * xx) for r in radii]
    return np.stack([np.abs(np.fft.fftshift(np.fft.fft2(o))) ** 2 for o in objects]).astype(np.float32)


def test_auto_binning_is_chosen_once_for_the_whole_input_as_in_one_process(tmp_path):
    """A scan whose object grows: chunks choosing their own binning would bin it two ways (and keep frames one
    process rejects as undersampled); the plan chooses once, on the first frames, as one process does."""
    frames = _discs([5] * 4 + [20] * 4)
    np.save(tmp_path / "scan.npy", frames)
    cfg = PreprocessConfig(input_kind="intensity")
    alone = [Preprocessor(cfg) for _ in range(2)]
    alone[0].prepare(frames[0])
    alone[1].prepare(frames[4])
    assert (alone[0].binning, alone[1].binning) == (4, 2)  # what each chunk would choose by itself
    planned = planned_preprocessing(plan(str(tmp_path / "scan.npy"), 4), cfg)
    assert planned.binning == 4 and cfg.binning == "auto"
    bad_first = frames.copy()
    bad_first[0] = np.nan  # rejected: the first good frame chooses, as in one process
    np.save(tmp_path / "bad.npy", bad_first)
    assert planned_preprocessing(plan(str(tmp_path / "bad.npy"), 4), cfg).binning == 4
    common = ["--input-kind", "intensity", "--net", "edge"]
    single = subprocess.run([CDINN, "reconstruct", str(tmp_path / "scan.npy"), str(tmp_path / "one.h5"), *common])
    assert single.returncode == 0
    reprocess(str(tmp_path / "scan.npy"), tmp_path / "dask.h5", "local:1", "edge", cfg, chunk=4, progress=False)
    one, dask = output.read(str(tmp_path / "one.h5")), output.read(str(tmp_path / "dask.h5"))
    assert one["attrs"]["preprocess"]["binning"] == dask["attrs"]["preprocess"]["binning"] == 4  # as applied
    assert list(one["frame_number"]) == list(dask["frame_number"]) == [0, 1, 2, 3]
    assert list(one["rejected"]["frame_number"]) == list(dask["rejected"]["frame_number"]) == [4, 5, 6, 7]
    assert "undersampled" in dask["rejected"]["reason"][0]
    np.testing.assert_allclose(one["amplitude"], dask["amplitude"], atol=1e-6)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, patterns):
    from dask.distributed import Client, LocalCluster

    frames = _frames(patterns, 240)
    np.save(tmp_path / "in.npy", frames)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    killed = []

    def kill_one(i):
        if not killed:
            pids = client.run(os.getpid)
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    try:
        counts = reprocess(
            str(tmp_path / "in.npy"),
            tmp_path / "out.h5",
            "local",
            net="edge",
            preprocess=PreprocessConfig(input_kind="intensity"),
            chunk=4,
            progress=False,
            client=client,
            on_result=kill_one,
        )
    finally:
        client.close()
        cluster.close()
    assert killed and counts == {"frames": 240, "written": 240, "rejected": 0, "chunks": 60}
    out = _datasets(tmp_path / "out.h5")
    assert out["frame_number"].tolist() == list(range(240))
    single = subprocess.run(
        [
            CDINN,
            "reconstruct",
            str(tmp_path / "in.npy"),
            str(tmp_path / "single.h5"),
            "--input-kind",
            "intensity",
            "--net",
            "edge",
        ],
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0
    assert np.allclose(_datasets(tmp_path / "single.h5")["amplitude"], out["amplitude"], atol=1e-5)


def test_plan_follows_nxmx_masters_and_frame_numbers(tmp_path, patterns):
    from tests.host.test_hdf5_frames import _detector_frames, write_eiger

    master = write_eiger(tmp_path / "eiger", _detector_frames(patterns), per_file=10)
    chunks = plan(str(master), 4)
    assert [(c.first, c.stop - c.start) for c in chunks][:4] == [(1, 4), (5, 4), (9, 2), (11, 4)]
    assert sum(c.stop - c.start for c in chunks) == 24


@pytest.mark.parametrize("cluster", ["local:1", "local:2"])
def test_a_local_cluster_serves_no_http(tmp_path, cluster):
    """A LocalCluster opens HTTP servers on the scheduler (8787) and every worker although the dashboard is
    off; the Dask path closes them, so only Dask's own comm ports stay open, on loopback (worker processes) or
    none at all (local:1's one worker in this process talks inproc://)."""
    import socket

    from cdinn.host.distributed import _client

    client, local = _client(cluster)
    try:

        def listening(server) -> int:
            return sum(sock.fileno() != -1 for sock in server._sockets.values())

        assert listening(local.scheduler.http_server) == 0
        assert set(client.run(lambda dask_worker: listening(dask_worker.http_server)).values()) == {0}
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", 8787)) != 0
        address = local.scheduler_address
        assert address.startswith("inproc://" if cluster == "local:1" else "tcp://127.0.0.1:"), address
    finally:
        client.close()
        local.close()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([{"a": 1}], dtype=object), "not a readable .npy file of numbers"),
        (np.float32(3.0), "expected frames (N, rows, cols)"),
        (np.array("hello"), "frames must be real numbers"),
    ],
)
def test_an_npy_that_holds_no_frames_is_one_line_before_any_cluster_starts(tmp_path, capsys, array, message):
    from cdinn.cli import main

    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    code = main(["reconstruct", str(tmp_path / "bad.npy"), str(tmp_path / "out.h5"), "--cluster", "local:1"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and not (tmp_path / "out.h5").exists()
