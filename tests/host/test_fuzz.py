"""The readers of untrusted input under coverage-guided fuzzing (atheris/libFuzzer, ``fuzz_decoders.py``), a
bounded run per target: no crash, no exception out of a reader, no hang over 5 s, no more than 2 GB of memory.
``CDINN_FUZZ_SECONDS`` sets each target's time (default 15 s; CI runs the default), ``CDINN_FUZZ_SEED``
libFuzzer's seed (default 1: CI explores the same inputs each time; set another for new ground)."""

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("fuzz_decoders.py")
SECONDS = int(os.environ.get("CDINN_FUZZ_SECONDS", "15"))
SEED = int(os.environ.get("CDINN_FUZZ_SEED", "1"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(HARNESS), "seeds", str(folder)], check=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("target", ["v2", "v1", "cdinn", "hdf5"])
def test_fuzzing_finds_nothing(target, corpus, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            target,
            str(corpus / target),
            f"-max_total_time={SECONDS}",
            f"-seed={SEED}",
            "-timeout=5",
            "-rss_limit_mb=2048",
            "-max_len=65536",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    findings = sorted(tmp_path.iterdir())
    reproducer = base64.b64encode(findings[0].read_bytes()[:4096]).decode() if findings else ""
    assert run.returncode == 0 and not findings, f"{findings} input (base64): {reproducer}\n{run.stderr[-3000:]}"
    assert "Done" in run.stderr and "runs in" in run.stderr  # libFuzzer's own closing line: it ran
