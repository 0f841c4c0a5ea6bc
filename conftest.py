"""Fixtures shared by the tests and the benchmarks."""

import pytest


@pytest.fixture
def free_tcp_endpoint():
    """A tcp://127.0.0.1:PORT endpoint on a port that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"
