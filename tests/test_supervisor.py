"""The supervisor of `henpin up` with small real child processes: restarts with backoff and
their count, a part that keeps dying stops the stack naming its log, the Prefect server's
dependents wait for it, stops are bounded even for a part that ignores SIGTERM, logs rotate.

(tests/test_stack.py checks the same supervisor with the whole stack.)
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from henpin.supervisor import (
    RECYCLE_EXIT,
    Limits,
    Part,
    RotatingLog,
    Supervisor,
    listening_socket,
    preferred_socket,
)
from tests.processes import alive, descendants

PY = sys.executable
QUICK = Limits(stop_grace_s=1.0, restart_limit=3, restart_window_s=60, restart_backoff_s=0.1)


def supervisor(tmp_path: Path, **limits: float) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    limits_used = Limits(**{**QUICK.__dict__, **limits})
    return Supervisor(tmp_path / "logs", limits_used, say=said.append), said


def sleeper(name: str, *, needs_prefect: bool = False, ignore_term: bool = False) -> Part:
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += f"print('{name} up', flush=True)\ntime.sleep(600)\n"
    return Part(name, [PY, "-c", code], {}, needs_prefect=needs_prefect)


def until(probe: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(probe) and probe():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.e2e
def test_a_part_that_dies_is_started_again_and_counted(tmp_path: Path) -> None:
    run, said = supervisor(tmp_path)
    try:
        run.start(sleeper("mail"))
        until(lambda: "mail up" in (tmp_path / "logs" / "mail.log").read_text())
        first = run.procs["mail"].pid
        run.procs["mail"].kill()
        run.procs["mail"].wait()

        def restarted() -> bool:
            assert run.check() is None
            return run.restarts["mail"] == 1

        until(restarted)
        assert run.procs["mail"].pid != first and run.procs["mail"].poll() is None
        assert said[0].startswith("henpin up: mail stopped (exit code -9); starting it again")
        assert str(tmp_path / "logs" / "mail.log") in said[0]
        until(lambda: (tmp_path / "logs" / "mail.log").read_text().count("mail up") == 2)
        assert (
            "mail started again (restart 1)" in (tmp_path / "logs" / "supervisor.log").read_text()
        )
    finally:
        run.stop()


@pytest.mark.e2e
def test_a_part_that_keeps_dying_stops_the_stack_naming_its_log(tmp_path: Path) -> None:
    run, _ = supervisor(tmp_path)
    crash = Part("runner", [PY, "-c", "print('no database', flush=True); raise SystemExit(1)"], {})
    try:
        run.start(crash)
        started = time.monotonic()
        problem = run.supervise(tick=0.05)
    finally:
        run.stop()
    assert problem == (
        "runner stopped 3 times within 60 s (last exit code 1); stopping Henpin. "
        f"See its log: {tmp_path / 'logs' / 'runner.log'}"
    )
    assert run.restarts["runner"] == 2
    assert time.monotonic() - started >= 0.1 + 0.2  # backoff: 0.1 s, then doubled
    assert (tmp_path / "logs" / "runner.log").read_text().count("no database") == 3


@pytest.mark.e2e
def test_a_part_that_exits_to_be_started_again_is_restarted_every_time(tmp_path: Path) -> None:
    """Exit code 75 (the resident executor after a hung run or too much memory) asks for a new
    start: restarted after the plain backoff each time, never counted towards restart_limit."""
    run, said = supervisor(tmp_path)
    recycles = Part(
        "runner", [PY, "-c", "print('recycling', flush=True); raise SystemExit(75)"], {}
    )
    try:
        run.start(recycles)
        deadline = time.monotonic() + 30
        while run.restarts["runner"] < QUICK.restart_limit + 2 and time.monotonic() < deadline:
            assert run.check() is None  # never "stopped N times ...; stopping Henpin"
            time.sleep(0.05)
    finally:
        run.stop()
    assert RECYCLE_EXIT == 75
    assert run.restarts["runner"] >= QUICK.restart_limit + 2
    assert said[0].startswith(
        "henpin up: runner stopped to be started again (exit code 75); starting it again in 0.1 s"
    )
    assert all("in 0.1 s" in line for line in said if "to be started again" in line)
    assert (tmp_path / "logs" / "runner.log").read_text().count("recycling") >= 5


#: An HTTP server on the listening socket whose descriptor it is given (as the stack's parts are).
SERVE_ON_FD = (
    "import http.server, socket, sys\n"
    "server = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler,"
    " bind_and_activate=False)\n"
    "server.socket.close()\n"
    "server.socket = socket.socket(fileno=int(sys.argv[1]))\n"
    "server.serve_forever()\n"
)


@pytest.mark.e2e
def test_the_prefect_servers_dependents_stop_and_start_again_after_it(tmp_path: Path) -> None:
    run, said = supervisor(tmp_path)
    # bound once here and handed to each start of the part: the restart serves on it again
    sock = listening_socket(0)
    port = sock.getsockname()[1]
    server = Part(
        "prefect",
        [PY, "-c", SERVE_ON_FD, str(sock.fileno())],
        {},
        health_url=f"http://127.0.0.1:{port}/",
        sockets=(sock,),
    )
    try:
        run.start(server)
        run.start(sleeper("runner", needs_prefect=True))
        run.start(sleeper("inbox"))
        runner, inbox = run.procs["runner"].pid, run.procs["inbox"].pid
        run.procs["prefect"].kill()
        run.procs["prefect"].wait()

        def back() -> bool:
            assert run.check() is None
            return run.procs["runner"].pid != runner and run.procs["runner"].poll() is None

        until(back)
        assert not alive(runner)  # stopped while the server was down
        assert run.procs["inbox"].pid == inbox  # the inbox does not need the server
        lines = [line.removeprefix("henpin up: ") for line in said]
        assert lines[0].startswith("prefect stopped (exit code -9)")
        assert lines[1] == "the Prefect server is down: stopping runner until it is back"
        assert lines[2] == "prefect started again (restart 1)"
        assert lines[3] == "runner started again: the Prefect server answers"
        assert dict(run.restarts) == {"prefect": 1}
    finally:
        run.stop()


@pytest.mark.e2e
def test_a_stop_is_bounded_even_for_a_part_that_ignores_sigterm(tmp_path: Path) -> None:
    run, _ = supervisor(tmp_path)
    run.start(sleeper("emulator", ignore_term=True))
    run.start(sleeper("runner"))
    until(lambda: "emulator up" in (tmp_path / "logs" / "emulator.log").read_text())
    pids = [p.pid for p in run.procs.values()]
    started = time.monotonic()
    run.stop()
    took = time.monotonic() - started
    assert not [p for p in pids if alive(p)]
    assert run.procs["emulator"].returncode == -9  # SIGKILL after the grace
    # Generous: 1 s of grace, then SIGKILL; the bound is what matters, not the speed.
    assert took < 1.0 + 5.0


@pytest.mark.e2e
def test_the_children_of_a_dead_supervisor_are_reaped(tmp_path: Path) -> None:
    """The reaper's half of "children die with it": the supervisor's pipe closes, and every part
    is stopped, even one that ignores SIGTERM (SIGKILL after the reaper's grace)."""
    run, _ = supervisor(tmp_path)
    run.start(sleeper("mail", ignore_term=True))
    until(lambda: "mail up" in (tmp_path / "logs" / "mail.log").read_text())
    reaper = run._reaper
    assert reaper is not None and reaper.pid in descendants(os.getpid())
    part = run.procs["mail"]
    assert run._reaper_pipe is not None
    run._reaper_pipe.close()  # what the supervisor's death does
    reaper.wait(timeout=10)
    part.wait(timeout=5)
    assert part.returncode == -9
    run.stop()


def test_logs_rotate_by_size(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "runner.log", max_bytes=100, backups=2)
    for n in range(10):
        log.write(f"line {n} ".encode() + b"x" * 40 + b"\n")  # 48 bytes a line
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["runner.log", "runner.log.1", "runner.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert (tmp_path / "runner.log").read_text().startswith("line 8 ")
    assert (tmp_path / "runner.log.1").read_text().startswith("line 6 ")


# --- ports bound once and handed over -------------------------------------------------------


@pytest.mark.e2e
def test_a_taken_preferred_port_gives_a_listening_socket_on_another() -> None:
    with listening_socket(0) as taken, preferred_socket(taken.getsockname()[1]) as other:
        assert other.getsockname()[1] not in (0, taken.getsockname()[1])
        with socket.create_connection(other.getsockname()[:2], timeout=5):
            pass  # listening already: a client may connect before the child serves


@pytest.mark.e2e
def test_a_port_in_use_is_bound_once_its_holder_lets_go_within_the_retry() -> None:
    holder = listening_socket(0)
    port = holder.getsockname()[1]
    with pytest.raises(OSError):
        listening_socket(port)  # no retry: in use is an error at once
    threading.Timer(0.5, holder.close).start()
    with listening_socket(port, retry_s=30) as again:
        assert again.getsockname()[1] == port


@pytest.mark.e2e
def test_henpin_emulator_and_mailcatcher_serve_on_a_handed_over_socket(tmp_path: Path) -> None:
    from henpin.mailcatcher import MailCatcher
    from henpin.outbox.mail import MailSettings, send_mail

    run, _ = supervisor(tmp_path)
    emulator_socket, mail_socket = listening_socket(0), listening_socket(0)
    emulator_port, mail_port = emulator_socket.getsockname()[1], mail_socket.getsockname()[1]
    fd = str(emulator_socket.fileno())
    emulator = Part(
        "emulator",
        [PY, "-m", "henpin.cli", "emulator", "--fd", fd, "--port", "1"],  # --fd wins
        dict(os.environ),
        health_url=f"http://127.0.0.1:{emulator_port}/_emulator/clock",
        sockets=(emulator_socket,),
    )
    try:
        run.start(emulator)
        assert httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/clock").status_code == 200
    finally:
        run.stop()
    assert emulator_socket.fileno() == -1  # closed with the stack: the port is free again
    with MailCatcher(sock=mail_socket, folder=tmp_path / "mail") as catcher:
        assert catcher.port == mail_port
        settings = MailSettings(
            _env_file=None,  # type: ignore[call-arg]
            host="127.0.0.1",
            port=mail_port,
            sender="shop@example.com",
            timeout_s=5,
        )
        send_mail("buyer@example.com", "Handed over", "Hello", settings=settings)
        (mail,) = catcher.wait_for(1)
        assert mail.subject == "Handed over"


@pytest.mark.e2e
def test_a_runner_stops_once_its_prefect_server_has_not_answered_for_a_while() -> None:
    """The runner's watch on its Prefect server: quiet while the server answers (over one
    kept-alive connection, not a new client and connection per look), then, once the server
    has not answered for `gone_after`, it stops the runner (here: records it)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from henpin.runner import ServerWatch

    connections: set[int] = set()
    down = threading.Event()

    class Health(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_GET(self) -> None:
            if down.is_set():  # a server gone closes its connections
                self.close_connection = True
                return
            connections.add(self.client_address[1])
            status = 200 if self.path == "/api/health" else 404
            self.send_response(status)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    stopped = threading.Event()
    watch = ServerWatch(
        f"http://127.0.0.1:{server.server_address[1]}/api",
        gone_after=1.0,
        every=0.1,
        on_gone=stopped.set,
    )
    watch.start()
    try:
        time.sleep(1.5)
        assert not stopped.is_set()
        assert len(connections) == 1  # every look over the same connection
    finally:
        down.set()
        server.shutdown()
        server.server_close()
    assert stopped.wait(10), "the runner was not stopped after its server went away"
    assert watch.gone.is_set()
