"""Unit tests need no server: the guard in tests/conftest.py refuses, in an unmarked test, to
listen on a socket or start a subprocess, so `pytest -m "not e2e"` (`make unit`) starts none."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from tests.processes import ServerInUnitTest


def test_an_unmarked_test_cannot_listen_on_a_socket() -> None:
    with socket.socket() as s, pytest.raises(ServerInUnitTest, match="mark it"):
        s.bind(("127.0.0.1", 0))
        s.listen()


def test_an_unmarked_test_cannot_start_a_subprocess() -> None:
    with pytest.raises(ServerInUnitTest, match="starts a subprocess"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_a_server_started_on_a_thread_is_refused_too() -> None:
    from emulator.server import EmulatorServer

    failures: list[BaseException] = []

    def serve() -> None:
        try:
            with EmulatorServer(port=0):
                pass
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(timeout=60)
    assert failures and isinstance(failures[0], ServerInUnitTest)


@pytest.mark.e2e
def test_a_marked_test_may_listen_and_start_subprocesses() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert s.getsockname()[1] > 0
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0


def test_the_e2e_marker_is_registered_and_markers_are_strict(pytestconfig: pytest.Config) -> None:
    assert any(m.startswith("e2e:") for m in pytestconfig.getini("markers"))
    assert "--strict-markers" in pytestconfig.getini("addopts")
