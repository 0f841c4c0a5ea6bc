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
