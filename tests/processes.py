"""Processes the tests start, and proof that none is left behind (Linux: read from /proc).

Tests start long-lived processes through `start_guarded`: the process gets SIGTERM when the
test session dies (parent-death signal, henpin/lifeline.py), lives in a process group of its
own, and `stop_group` ends that group (SIGTERM, then SIGKILL after a grace). The session makes
itself a "child subreaper", so a process orphaned by a test (its parent killed) is re-parented
to the session and still counts as the session's: `pytest_sessionfinish` (tests/conftest.py)
fails the run if any descendant is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from henpin.supervisor import with_lifeline

PR_SET_CHILD_SUBREAPER = 36


class ServerInUnitTest(RuntimeError):
    """An unmarked test (a unit test) listened on a socket or started a subprocess: mark it
    `e2e` (tests/conftest.py refuses both outside e2e tests)."""


def become_subreaper() -> None:
    """Orphans of this process's descendants are re-parented here, not to init (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running (a zombie, dead and not yet collected, is not)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != b"Z"


def descendants(pid: int) -> list[int]:
    """Live descendants of `pid`, children first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]


def collect_zombies() -> None:
    """Collect exited orphans re-parented to this process (it is their subreaper)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_all(pids: list[int]) -> None:
    """SIGKILL each process and its process group (never this process's own group)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if (group := os.getpgid(pid)) != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def start_guarded(command: list[str], **popen: Any) -> subprocess.Popen[Any]:
    """Start a long-lived process for a test: own process group, dies with the session."""
    return subprocess.Popen(with_lifeline(command), start_new_session=True, **popen)


def stop_group(proc: subprocess.Popen[Any], grace: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """End a process started by `start_guarded`: `sig` to its group, SIGKILL after `grace`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # what is left of its group
        os.killpg(proc.pid, signal.SIGKILL)
