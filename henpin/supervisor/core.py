"""The supervisor of every Henpin stack (`henpin up` in both layouts, the benchmarks, the tests'
Prefect server): starts the stack's parts, keeps them running, stops them.

- **Children die with it.** Each part is started through `lifeline.py exec`, which asks Linux to
  send it SIGTERM when the supervisor dies (parent-death signal), in a process group of its
  own. A small reaper process, started first, holds a pipe from the supervisor: when the pipe
  closes (the supervisor ended, even by `kill -9`) it stops every part's process group and every
  process marked with this stack's HENPIN_STACK value, SIGKILL after a short grace. That also
  works where there is no parent-death signal (macOS, BSD): the pipe closes on every system.
- **Restarts.** A part that dies is started again after a backoff (restart_backoff_s, doubled
  for each recent death, at most 30 s); each restart is logged and counted (`henpin status
  --json`, `restarts`). A part that died `restart_limit` times within `restart_window_s` stops
  the stack, naming the part and its log. When the Prefect server dies, the parts that need it
  are stopped first, and started again only once the server answers again.
- **Recycles are not deaths.** A part that exits with `RECYCLE_EXIT` (75, EX_TEMPFAIL: the
  resident executor after a hung run or too much memory) asked to be started again: it is,
  after `restart_backoff_s` (never doubled), counted as a restart but not towards
  `restart_limit`.
- **Stops that finish.** SIGTERM to every part's group (the parts that need the Prefect server
  first), then SIGKILL after `stop_grace_s`.
- **One part by hand.** `stop_part` stops one (a benchmark's runner started again with other
  settings), `kill_part` SIGKILLs one and every process under it (a soak's crash), and
  `start_again` starts it on the sockets it had, so its clients find it where it was.
- **Logs that stay small.** Each part's stdout and stderr come through a pipe into
  `logs/<part>.log`, rotated by size (`log_max_bytes`, `log_backups` older files kept).

Parts are started from the thread that calls `start` and `check` (the main thread in `henpin
up`): Linux sends the parent-death signal when that *thread* ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from henpin.lifeline import MARKER_VARIABLE, marked_processes
from henpin.supervisor.ports import wait_until_up

if TYPE_CHECKING:
    from henpin.settings import Settings

LIFELINE = Path(__file__).resolve().parent.parent / "lifeline.py"
ROOT = Path(__file__).resolve().parents[2]
MAX_BACKOFF_S = 30.0
#: The exit code of a part that stops to be started again (EX_TEMPFAIL): henpin/resident.py's
#: RECYCLE_EXIT (not imported from there: that module imports Prefect, the supervisor must not).
RECYCLE_EXIT = 75
REAPER_GRACE_S = 2.0  # the supervisor is gone: stop quickly


def with_lifeline(command: list[str], sig: int = signal.SIGTERM) -> list[str]:
    """`command`, started so that it gets `sig` when this process dies (Linux)."""
    return [
        *(sys.executable, "-I", "-S", str(LIFELINE), "exec"),
        *(str(os.getpid()), str(int(sig)), "--"),
        *command,
    ]


class RotatingLog:
    """A log file that is rotated when it would pass `max_bytes` (part.log → part.log.1 → ...)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: IO[bytes] = path.open("ab")
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("wb")
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _pump(stream: IO[bytes], log: RotatingLog) -> None:
    """Copy a child's output into its log until the child closes it."""
    fd = stream.fileno()
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(fd, 65536):
            log.write(chunk)
    stream.close()


@dataclass
class Part:
    """One child of the stack: how to start it and what it needs."""

    name: str
    command: list[str]
    env: dict[str, str]
    health_url: str | None = None  # answers once the part is up
    needs_prefect: bool = False  # stopped while the Prefect server is down
    # Listening sockets the supervisor bound for the part and hands to each of its starts (the
    # command names their descriptors, e.g. `--fd N`): a part started again serves on the same
    # socket, and no port is ever picked, released and bound again.
    sockets: tuple[socket.socket, ...] = ()
    log: str = ""  # its log's name under the supervisor's folder (default: the part's name)

    @property
    def log_name(self) -> str:
        return self.log or self.name


@dataclass
class Limits:
    """From Settings: how hard the supervisor tries, how long a stop may take, log sizes."""

    stop_grace_s: float = 5.0
    restart_limit: int = 5
    restart_window_s: float = 300.0
    restart_backoff_s: float = 1.0
    log_max_bytes: int = 10_000_000
    log_backups: int = 3

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            stop_grace_s=settings.stop_grace_s,
            restart_limit=settings.restart_limit,
            restart_window_s=settings.restart_window_s,
            restart_backoff_s=settings.restart_backoff_s,
            log_max_bytes=settings.log_max_bytes,
            log_backups=settings.log_backups,
        )


@dataclass
class Supervisor:
    """Starts parts, restarts the ones that die, stops them all."""

    logs: Path
    limits: Limits = field(default_factory=Limits)
    say: Callable[[str], None] = print
    lock_fd: int | None = None  # the stack's lock: the reaper holds it until its sweep is done
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    parts: dict[str, Part] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)
    on_change: Callable[[], None] = lambda: None
    _deaths: dict[str, deque[float]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # part → when to start it again
    _held: set[str] = field(default_factory=set)  # stopped until the Prefect server is back
    _files: dict[str, RotatingLog] = field(default_factory=dict)
    _reaper: subprocess.Popen[bytes] | None = None
    _reaper_pipe: IO[str] | None = None  # closes when this process ends, however it ends

    # --- starting ---------------------------------------------------------------------------

    def start(self, part: Part, *, wait: bool = True, timeout: float = 90.0) -> None:
        """Start `part` (and wait until its health URL answers, if it has one)."""
        self.parts[part.name] = part
        self._spawn(part)
        if wait and part.health_url:
            wait_until_up(part.health_url, timeout=timeout, proc=self.procs[part.name])

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _log(self, name: str) -> RotatingLog:
        if name not in self._files:
            self.logs.mkdir(parents=True, exist_ok=True)
            self._files[name] = RotatingLog(
                self.log_path(name), self.limits.log_max_bytes, self.limits.log_backups
            )
        return self._files[name]

    def note(self, line: str) -> None:
        """Say something to the terminal and keep it in logs/supervisor.log."""
        self.say(f"henpin up: {line}")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log("supervisor").write(f"{stamp} {line}\n".encode())

    def _start_reaper(self) -> None:
        read, write = os.pipe()
        fds = (read, self.lock_fd) if self.lock_fd is not None else (read,)
        self._reaper = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LIFELINE), "reaper", self.marker, f"{REAPER_GRACE_S}"],
            stdin=read,
            pass_fds=fds,
            start_new_session=True,  # a signal to `henpin up`'s terminal group spares it
        )
        os.close(read)
        self._reaper_pipe = os.fdopen(write, "w", buffering=1)
        for proc in self.procs.values():  # a reaper started again learns the running parts
            if proc.poll() is None:
                self._reaper_pipe.write(f"+{proc.pid}\n")

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is None or self._reaper.poll() is not None:
            self._start_reaper()
        assert self._reaper_pipe is not None
        with contextlib.suppress(OSError):
            self._reaper_pipe.write(line + "\n")

    def _spawn(self, part: Part) -> None:
        env = {**part.env, MARKER_VARIABLE: self.marker, "PYTHONUNBUFFERED": "1"}
        if self._reaper is None:
            self._start_reaper()
        proc = subprocess.Popen(
            with_lifeline(part.command),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            pass_fds=tuple(sock.fileno() for sock in part.sockets),
        )
        self.procs[part.name] = proc
        self._tell_reaper(f"+{proc.pid}")
        assert proc.stdout is not None
        threading.Thread(
            target=_pump, args=(proc.stdout, self._log(part.log_name)), daemon=True
        ).start()

    def start_again(self, name: str, *, wait: bool = True, timeout: float = 90.0) -> None:
        """Start a part stopped or killed by hand (`stop_part(forget=False)`, `kill_part`) on
        the same sockets, so its clients find it where it was."""
        self.start(self.parts[name], wait=wait, timeout=timeout)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    # --- watching ---------------------------------------------------------------------------

    def dead_part(self) -> str | None:
        return next(
            (n for n, p in self.procs.items() if p.poll() is not None and n not in self._held),
            None,
        )

    def check(self) -> str | None:
        """One round: note deaths, start again what is due. Returns why the stack must stop."""
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            if name in self._held or name in self._due or proc.poll() is None:
                continue
            log = self.log_path(name)
            if proc.returncode == RECYCLE_EXIT:  # it asked to be started again: not a death
                backoff = self.limits.restart_backoff_s
                self.note(
                    f"{name} stopped to be started again (exit code {RECYCLE_EXIT}); starting "
                    f"it again in {backoff:g} s. Its log: {log}"
                )
                self._tell_reaper(f"-{proc.pid}")
                self._due[name] = now + backoff
                continue
            deaths = self._deaths.setdefault(name, deque())
            deaths.append(now)
            while deaths and deaths[0] < now - self.limits.restart_window_s:
                deaths.popleft()
            if len(deaths) >= self.limits.restart_limit:
                return (
                    f"{name} stopped {len(deaths)} times within "
                    f"{self.limits.restart_window_s:.0f} s (last exit code {proc.returncode}); "
                    f"stopping Henpin. See its log: {log}"
                )
            backoff = min(self.limits.restart_backoff_s * 2 ** (len(deaths) - 1), MAX_BACKOFF_S)
            self.note(
                f"{name} stopped (exit code {proc.returncode}); starting it again in "
                f"{backoff:g} s. Its log: {log}"
            )
            self._tell_reaper(f"-{proc.pid}")
            self._due[name] = now + backoff
            if name == "prefect":
                self._hold_prefect_dependents()
        for name, due in sorted(self._due.items(), key=lambda item: item[1]):
            if due <= time.monotonic():
                problem = self._restart(name)
                if problem:
                    return problem
        return None

    def _hold_prefect_dependents(self) -> None:
        dependents = [n for n, p in self.parts.items() if p.needs_prefect and n not in self._held]
        if not dependents:
            return
        self.note(f"the Prefect server is down: stopping {', '.join(dependents)} until it is back")
        self._held.update(dependents)
        for name in dependents:
            self._due.pop(name, None)
        self._stop_parts(dependents, grace=self.limits.stop_grace_s)

    def _restart(self, name: str) -> str | None:
        del self._due[name]
        part = self.parts[name]
        self._spawn(part)
        self.restarts[name] += 1
        self.note(f"{name} started again (restart {self.restarts[name]})")
        if name == "prefect":
            try:
                wait_until_up(str(part.health_url), timeout=180, proc=self.procs[name])
            except RuntimeError:
                return None  # it died again: the next round counts it
            for dependent in sorted(self._held):
                self._held.discard(dependent)
                self._spawn(self.parts[dependent])
                self.note(f"{dependent} started again: the Prefect server answers")
        self.on_change()
        return None

    def supervise(self, tick: float = 0.5) -> str:
        """Watch the parts until one keeps dying; returns why the stack must stop.
        Ctrl-C (KeyboardInterrupt) ends it too."""
        while (problem := self.check()) is None:
            time.sleep(tick)
        return problem

    # --- stopping ---------------------------------------------------------------------------

    def _stop_parts(self, names: list[str], grace: float) -> None:
        procs = [self.procs[n] for n in names if n in self.procs]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            _signal_group(proc, signal.SIGKILL)  # what is left of the group, flow runs included
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            self._tell_reaper(f"-{proc.pid}")

    def stop_part(self, name: str, grace: float | None = None, *, forget: bool = True) -> None:
        """Stop one part: SIGTERM to its group, SIGKILL after `grace` (default stop_grace_s).
        `forget`: it is no part of the stack any more (its sockets closed); otherwise
        `start_again` starts it on the same sockets."""
        if name in self.procs:
            self._stop_parts([name], grace=self.limits.stop_grace_s if grace is None else grace)
            del self.procs[name]
        self._due.pop(name, None)
        self._held.discard(name)
        part = self.parts.pop(name, None) if forget else None
        for sock in part.sockets if part else ():
            sock.close()

    def kill_part(self, name: str) -> int:
        """SIGKILL a part and every process under it, flow runs in sessions of their own too
        (a crash, not a stop); returns how many processes died. `start_again` restarts it."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return 0
        pids = process_tree(proc.pid)
        _signal_group(proc, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        self._tell_reaper(f"-{proc.pid}")
        return len(pids)

    def stop(self) -> None:
        """Stop every part within `stop_grace_s` (plus a moment for SIGKILL): the parts that
        need the Prefect server first, then the rest."""
        grace = self.limits.stop_grace_s
        first = [n for n, p in self.parts.items() if n != "prefect"]
        started = time.monotonic()
        self._stop_parts(first, grace=grace * 0.6)
        self._stop_parts(
            [n for n in self.parts if n not in first],
            grace=max(0.5, grace - (time.monotonic() - started)),
        )
        for pid in marked_processes(self.marker):  # e.g. a worker's flow runs (own sessions)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for part in self.parts.values():  # the ports are free again once the parts are gone
            for sock in part.sockets:
                sock.close()
        self._due.clear()
        if self._reaper is not None:
            if self._reaper_pipe is not None:
                with contextlib.suppress(OSError):
                    self._reaper_pipe.close()
                self._reaper_pipe = None
            try:
                self._reaper.wait(timeout=REAPER_GRACE_S + 2)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait()
            self._reaper = None
        for log in self._files.values():
            log.close()
        self._files.clear()


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants, read from /proc (Linux; elsewhere: the process)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    todo += [int(k) for k in (task / "children").read_text().split()]
    return tree


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
