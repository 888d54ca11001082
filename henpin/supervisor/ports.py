"""Ports bound once and readiness waits: how a part gets its address and how its starter knows
it answers.

A server part gets a listening socket bound here (its descriptor passed with ``pass_fds``, the
command naming it, e.g. ``--fd N``), so no port is picked, released and bound again by the child:
on a loaded machine another process could take it in between. `free_port` is left for
third-party servers that bind their port themselves (Streamlit, `prefect server start`).
"""

from __future__ import annotations

import errno
import socket
import subprocess
import time

import httpx


def listening_socket(port: int, host: str = "127.0.0.1", *, retry_s: float = 0.0) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: any free port) and listening, for a child to serve
    on (its descriptor passed with ``pass_fds``): the port is bound once, here, and never free
    between a pick and a child's bind. `retry_s`: how long to keep trying while the port is in
    use (a server started again on the port a client already knows)."""
    deadline = time.monotonic() + retry_s
    while True:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            return sock
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def preferred_socket(preferred: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on the preferred port if it is free, else on any free one."""
    try:
        return listening_socket(preferred, host)
    except OSError:
        return listening_socket(0, host)


def free_port(preferred: int = 0) -> int:
    """The preferred port if nobody listens there, else any free one. Racy (the port is free
    again until the child binds it): the stack's own parts get a bound socket instead
    (`preferred_socket`); this is for third-party servers that bind their port themselves."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def wait_until_up(
    url: str, timeout: float = 90.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Until `url` answers below 500; fails early, naming the exit code, if `proc` ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url} did not start: its process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
