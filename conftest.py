"""Fixtures shared by the tests and the benchmarks."""

import os
from unittest import mock

import pytest


@pytest.fixture(autouse=True)
def _process_environment_restored():
    """Each test leaves os.environ as it found it: ``cdinn.cli.main`` run in-process sets its command's
    environment defaults (``Command.environment``), which must not reach later tests or their subprocesses."""
    with mock.patch.dict(os.environ):
        yield


@pytest.fixture
def free_tcp_endpoint():
    """A tcp://127.0.0.1:PORT endpoint on a port that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def edge_firmware(tmp_path_factory):
    """``cdinn firmware --net edge`` built once per session (hls4ml projects, compiled emulation, C simulation):
    the build folder."""
    from cdinn.cli import main

    out = tmp_path_factory.mktemp("firmware") / "edge"
    code = main(
        ["firmware", "--net", "edge", "--out", str(out), "--validate", "40", "--test-n", "40", "--workers", "2"]
    )
    assert code == 0
    return out
