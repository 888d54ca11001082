"""`henpin up`: the whole stack on one machine, as child processes of one supervisor.

Prefect server (SQLite in HENPIN_HOME by default), the SP-API emulator with demo data when no
Amazon credentials are configured, the runner serving Henpin's flows, and the Streamlit inbox.
State lives in HENPIN_HOME, so `henpin up` again continues where it stopped. The supervisor
(henpin/supervisor/) restarts a part that dies and takes every part down with it; the data
folder's lock (`StackLock`) keeps a second `henpin up` off a folder that has a stack.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from henpin.settings import Settings
from henpin.store.db import migrate
from henpin.supervisor import (
    ROOT,
    Limits,
    Supervisor,
    emulator_part,
    free_port,
    inbox_part,
    mail_part,
    prefect_env,
    prefect_server_part,
    preferred_socket,
    runner_part,
    wait_until_up,
    with_lifeline,
)

__all__ = [
    "DEFAULT_PORTS",
    "ROOT",
    "Stack",
    "StackLock",
    "free_port",
    "prefect_env",
    "wait_until_up",
]

DEFAULT_PORTS = {"prefect": 4200, "emulator": 8500, "inbox": 8501, "mail": 8525}
DEMO_OPERATOR = "demo"
LOCK_FILE = "stack.lock"
STOPPING_WAIT_S = 15.0  # a dead stack's reaper may hold the lock this long while it sweeps


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead: its parent has not collected it yet
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return stat.rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class StackRunning(Exception):
    """Another `henpin up` holds the data folder's lock."""

    def __init__(self, home: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(
            f"a Henpin stack is already running on {home.resolve()}: "
            f"pid {holder.get('pid', '?')}, inbox {holder.get('inbox') or '(starting)'}, "
            f"Prefect UI {holder.get('prefect_ui') or '(starting)'}. "
            "Use that one, or stop it first (Ctrl-C in its terminal, or "
            f"kill {holder.get('pid', '<pid>')})."
        )


class StackLock:
    """One stack per data folder: an flock on HENPIN_HOME/stack.lock, held by `henpin up` (and
    by its reaper, until its children are gone) for as long as it runs. The file holds JSON
    naming the holder: pid, inbox URL, Prefect UI URL, since when."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.path = home / LOCK_FILE
        self.fd: int | None = None

    def acquire(self, say: Any = print) -> None:
        """Take the lock, or raise StackRunning naming the running stack. A lock left by a
        stack that is gone is taken over, with a line saying so."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + STOPPING_WAIT_S
        said_waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_lock_file(self.path)
                pid = holder.get("pid")
                if (isinstance(pid, int) and pid_alive(pid)) or time.monotonic() > deadline:
                    os.close(fd)
                    raise StackRunning(self.home, holder) from None
                if isinstance(pid, int) and not said_waiting:
                    say(f"henpin up: waiting for the stack of pid {pid} to finish stopping ...")
                    said_waiting = True
                time.sleep(0.2)
        previous = read_lock_file(self.path)
        if isinstance(previous.get("pid"), int) and previous["pid"] != os.getpid():
            say(
                f"henpin up: taking over the lock of a stack that is no longer running "
                f"(pid {previous['pid']}, since {previous.get('since', '?')})"
            )
        self.fd = fd
        self.record()

    def record(self, **urls: str | None) -> None:
        """Write who holds the lock (and, once known, where its inbox and Prefect UI are)."""
        if self.fd is None:
            return
        holder = {
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "home": str(self.home.resolve()),
            "inbox": None,
            "prefect_ui": None,
            **read_lock_file(self.path, pid=os.getpid()),
            **urls,
        }
        data = json.dumps(holder, indent=2).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def read_lock_file(path: Path, pid: int | None = None) -> dict[str, Any]:
    """The lock file's JSON ({} if none or unreadable); with `pid`, only if that pid wrote it."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or (pid is not None and data.get("pid") != pid):
        return {}
    return data


def lock_holder(home: Path) -> dict[str, Any] | None:
    """Who holds the data folder's lock (pid, inbox, prefect_ui, since, home), or None."""
    path = home / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_lock_file(path)
        return {k: holder.get(k) for k in ("pid", "inbox", "prefect_ui", "since", "home")}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def supervisor_for(
    home: Path, settings: Settings, lock: StackLock | None, on_change: Callable[[], None]
) -> Supervisor:
    """The supervisor of a stack in `home` (either layout), with the limits of `settings`;
    its reaper inherits the folder's lock."""
    lock_fd = lock.fd if lock else None
    return Supervisor(home / "logs", Limits.of(settings), lock_fd=lock_fd, on_change=on_change)


@dataclass
class Stack:
    """The running children and their addresses."""

    home: Path
    settings: Settings
    lock: StackLock | None = None  # held by `henpin up`; its reaper keeps it until the end
    urls: dict[str, str | None] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    # Listening sockets bound by `plan` (prefect, emulator, mail; inbox only held until Streamlit
    # starts): the supervisor hands each to its part, so no port is picked and released.
    sockets: dict[str, socket.socket] = field(default_factory=dict)
    seeded_demo: bool = False  # this start filled a fresh emulator with the demo data
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = supervisor_for(
            self.home, self.settings, self.lock, lambda: self.write_status(ready=True)
        )

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.supervisor.procs

    @property
    def status_file(self) -> Path:
        return self.home / "status.json"

    def plan(self) -> dict[str, str]:
        """Pick the ports; returns the Prefect settings this process and its children use.

        Called before anything imports Prefect: Prefect reads its settings once, at import.
        """
        self.sockets = {name: preferred_socket(port) for name, port in DEFAULT_PORTS.items()}
        self.ports = {name: int(sock.getsockname()[1]) for name, sock in self.sockets.items()}
        api = f"http://127.0.0.1:{self.ports['prefect']}/api"
        self.urls["prefect_ui"] = f"http://127.0.0.1:{self.ports['prefect']}"
        self.urls["prefect_api"] = api
        return prefect_env(self.home, api)

    def start(self, *, demo_data: bool, policies: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        migrate(self.settings.store_url)
        env = dict(os.environ)
        env.update({"HENPIN_HOME": str(self.home), "HENPIN_POLICIES": str(policies.resolve())})
        env["HENPIN_INBOX_URL"] = f"http://127.0.0.1:{self.ports['inbox']}"
        env.update(
            self.plan() if not self.ports else prefect_env(self.home, self.urls["prefect_api"])
        )
        if self.lock:
            self.lock.record(prefect_ui=self.urls["prefect_ui"], inbox=env["HENPIN_INBOX_URL"])
        run = self.supervisor
        prefect = prefect_server_part(self.sockets["prefect"], dict(env))
        run.start(prefect, wait=False)

        if self.settings.demo_mode:
            state = self.home / "emulator-state.json"
            fresh = not state.exists()
            emulator = emulator_part(
                self.sockets["emulator"],
                dict(env),
                state=state,
                time_scale=self.settings.emulator_time_scale,
            )
            run.start(emulator)
            emulator_url = f"http://127.0.0.1:{self.ports['emulator']}"
            if fresh and demo_data:
                httpx.post(f"{emulator_url}/_emulator/seed-demo", timeout=10).raise_for_status()
                self.seeded_demo = True
            env["HENPIN_EMULATOR_URL"] = emulator_url
            self.urls["emulator"] = emulator_url
            if not os.environ.get("HENPIN_SMTP_HOST"):
                # Demo replies to buyers are caught locally (one .eml file each), never sent.
                run.start(mail_part(self.sockets["mail"], self.home / "mail", dict(env)))
                env["HENPIN_SMTP_HOST"] = "127.0.0.1"
                env["HENPIN_SMTP_PORT"] = str(self.ports["mail"])
                env["HENPIN_NOTIFY_DEMO_CATCHER"] = "true"  # notifications land there too
                self.urls["mail"] = str(self.home / "mail")
        else:
            self.urls["emulator"] = None

        wait_until_up(str(prefect.health_url), proc=self.procs["prefect"])
        run.start(runner_part(dict(env)))

        env["HENPIN_PREFECT_UI_URL"] = self.urls["prefect_ui"] or ""
        # Streamlit binds its port itself and takes no socket (server.port only), so the port
        # bound in `plan` is held until this moment and released just before Streamlit starts;
        # should another process take it in between, Streamlit exits and the supervisor starts
        # it again (restart_limit), then stops the stack naming the inbox's log.
        if (held := self.sockets.pop("inbox", None)) is not None:
            held.close()
        run.start(inbox_part(self.ports["inbox"], dict(env)))
        self.urls["inbox"] = f"http://127.0.0.1:{self.ports['inbox']}"
        self.write_status(ready=True)

    def open_demo_message_cases(self) -> list[str]:
        """Demo: open a "cancel asked by message" case from each e-mail a demo buyer sent the
        seller (the emulator keeps them, `GET /_emulator/buyer-messages`), as an operator does
        with `henpin cases open-message`, so the demo shows all five case types. Only after this
        start seeded the demo (the flows must be served). Returns problems, if any."""
        emulator = self.urls.get("emulator")
        if not self.seeded_demo or not emulator:
            return []
        messages = httpx.get(f"{emulator}/_emulator/buyer-messages", timeout=10).json()
        env = dict(os.environ, HENPIN_HOME=str(self.home), HENPIN_EMULATOR_URL=emulator)
        problems = []
        for message in messages:
            opened = subprocess.run(
                with_lifeline(
                    [
                        *(sys.executable, "-m", "henpin.cli", "cases", "open-message"),
                        *(message["orderId"], "--message", message["text"]),
                        *("--operator", DEMO_OPERATOR, "--json"),
                    ]
                ),
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if opened.returncode != 0:
                problems.append(f"{message['orderId']}: {opened.stderr.strip()[-300:]}")
        return problems

    def supervise(self) -> str:
        """Keep the parts running until one keeps dying (returns why) or Ctrl-C."""
        return self.supervisor.supervise()

    def write_status(self, *, ready: bool) -> None:
        status = {
            "ready": ready,
            "pid": os.getpid(),
            **self.urls,
            "restarts": dict(self.supervisor.restarts),
        }
        self.status_file.write_text(json.dumps(status, indent=2))

    def stop(self) -> None:
        self.supervisor.stop()
        for sock in self.sockets.values():  # those no part took (no demo, an SMTP server set)
            sock.close()
        if self.status_file.exists():
            self.write_status(ready=False)

    def dead_child(self) -> str | None:
        return self.supervisor.dead_part()


def demo_operator_password(home: Path) -> str:
    """The demo operator's password: made once, kept in HENPIN_HOME (mode 600)."""
    path = home / "demo-operator-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(9)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def read_status(home: Path) -> dict[str, Any]:
    """What `henpin status --json` prints: the contract is ready, emulator, prefect_api, inbox;
    added: prefect_ui, `lock` (who holds the data folder: pid, inbox, prefect_ui, since, home;
    null when no stack runs there) and `restarts` (part → times the supervisor started it
    again, for the stack that wrote the status)."""
    path = home / "status.json"
    holder = lock_holder(home)
    if not path.exists():
        return {
            "ready": False,
            "emulator": None,
            "prefect_api": None,
            "inbox": None,
            "lock": holder,
            "restarts": {},
        }
    status = json.loads(path.read_text())
    ready = bool(status.get("ready"))
    if ready:
        try:
            ready = (
                httpx.get(f"{status['prefect_api']}/health", timeout=3).status_code == 200
                and httpx.get(f"{status['inbox']}/_stcore/health", timeout=3).status_code == 200
            )
        except (httpx.HTTPError, KeyError):
            ready = False
    return {
        "ready": ready,
        "emulator": status.get("emulator"),
        "prefect_api": status.get("prefect_api"),
        "inbox": status.get("inbox"),
        "prefect_ui": status.get("prefect_ui"),
        "lock": holder,
        "restarts": status.get("restarts", {}),
    }
