"""Multi-worker training with tf.distribute: two CPU worker processes on loopback (TF_CONFIG) against one
process that sees the same global batches."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cdinn.errors import CdinnError
from cdinn.model.distribute import Worker, worker

pytestmark = pytest.mark.slow
CDINN = str(Path(sys.executable).with_name("cdinn"))
TRAIN = [
    "train",
    "--config",
    "edge",
    "--examples",
    "256",
    "--val",
    "64",
    "--epochs",
    "2",
    "--batch",
    "32",
    "--seed",
    "3",
    "--lr",
    "0.003",
]


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _weights(folder):
    import tf_keras as keras

    return [
        w
        for role in ("shape", "phase")
        for w in keras.models.load_model(folder / f"{role}.keras", compile=False).get_weights()
    ]


def test_two_workers_reach_the_weights_of_one_process_with_the_global_batch(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(
            subprocess.Popen(
                [CDINN, *TRAIN, "--out", str(tmp_path / "multi")],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    single = subprocess.run(
        [CDINN, *TRAIN, "--data-shards", "2", "--out", str(tmp_path / "single")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    card = json.loads((tmp_path / "multi" / "shape.card.json").read_text())
    assert card["workers"] == 2 and card["training"]["data_shards"] == 2
    multi, one = _weights(tmp_path / "multi"), _weights(tmp_path / "single")
    assert len(multi) == len(one)
    for a, b in zip(multi, one, strict=True):
        assert np.allclose(a, b, rtol=1e-3, atol=1e-5)
    # and the run really trained: the weights moved from their initial values by far more than that tolerance
    import tf_keras as keras

    from cdinn.model.architectures import build_network, get_architecture

    keras.utils.set_random_seed(3)
    start = build_network(get_architecture("edge"), "shape").get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(multi, start, strict=False)) > 1e-3


def test_worker_place_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker() == Worker(0, 1) and worker().chief
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2}})
    )
    assert worker() == Worker(2, 3) and not worker().chief
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(CdinnError, match="TF_CONFIG"):
        worker()
