"""`henpin up`: the whole stack on one machine, as child processes of one supervisor.

Prefect server (SQLite in HENPIN_HOME by default), the SP-API emulator with demo data when no
Amazon credentials are configured, the runner serving Henpin's flows, and the Streamlit inbox.
State lives in HENPIN_HOME, so `henpin up` again continues where it stopped.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from henpin.settings import Settings
from henpin.store.db import migrate

DEFAULT_PORTS = {"prefect": 4200, "emulator": 8500, "inbox": 8501, "mail": 8525}
DEMO_OPERATOR = "demo"
ROOT = Path(__file__).resolve().parent.parent


def free_port(preferred: int) -> int:
    """The preferred port if nobody listens there, else any free one."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def wait_until_up(
    url: str, timeout: float = 90.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
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


def prefect_env(home: Path, api_url: str | None, database_url: str | None = None) -> dict[str, str]:
    prefect_home = home / "prefect"
    env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_LOCAL_STORAGE_PATH": str(prefect_home / "storage"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{(prefect_home / 'prefect.db').resolve()}",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class Stack:
    """The running children and their addresses."""

    home: Path
    settings: Settings
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    urls: dict[str, str | None] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    seeded_demo: bool = False  # this start filled a fresh emulator with the demo data

    @property
    def status_file(self) -> Path:
        return self.home / "status.json"

    def plan(self) -> dict[str, str]:
        """Pick the ports; returns the Prefect settings this process and its children use.

        Called before anything imports Prefect: Prefect reads its settings once, at import.
        """
        self.ports = {name: free_port(port) for name, port in DEFAULT_PORTS.items()}
        api = f"http://127.0.0.1:{self.ports['prefect']}/api"
        self.urls["prefect_ui"] = f"http://127.0.0.1:{self.ports['prefect']}"
        self.urls["prefect_api"] = api
        return prefect_env(self.home, api)

    def start(self, *, demo_data: bool, policies: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        logs = self.home / "logs"
        logs.mkdir(exist_ok=True)
        migrate(self.settings.store_url)
        env = dict(os.environ)
        env.update({"HENPIN_HOME": str(self.home), "HENPIN_POLICIES": str(policies.resolve())})
        env["HENPIN_INBOX_URL"] = f"http://127.0.0.1:{self.ports['inbox']}"
        env.update(
            self.plan() if not self.ports else prefect_env(self.home, self.urls["prefect_api"])
        )
        prefect_port = self.ports["prefect"]
        api = str(self.urls["prefect_api"])
        self._spawn(
            "prefect",
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(prefect_port),
            ],
            env,
            logs,
        )

        if self.settings.demo_mode:
            port = self.ports["emulator"]
            state = self.home / "emulator-state.json"
            fresh = not state.exists()
            self._spawn(
                "emulator",
                [
                    sys.executable,
                    "-m",
                    "henpin.cli",
                    "emulator",
                    "--port",
                    str(port),
                    "--state-file",
                    str(state),
                    "--time-scale",
                    str(self.settings.emulator_time_scale),
                ],
                env,
                logs,
            )
            emulator_url = f"http://127.0.0.1:{port}"
            wait_until_up(f"{emulator_url}/_emulator/clock", proc=self.procs["emulator"])
            if fresh and demo_data:
                httpx.post(f"{emulator_url}/_emulator/seed-demo", timeout=10).raise_for_status()
                self.seeded_demo = True
            env["HENPIN_EMULATOR_URL"] = emulator_url
            self.urls["emulator"] = emulator_url
            if not os.environ.get("HENPIN_SMTP_HOST"):
                # Demo replies to buyers are caught locally (one .eml file each), never sent.
                self._spawn(
                    "mail",
                    [
                        sys.executable,
                        "-m",
                        "henpin.cli",
                        "mailcatcher",
                        "--port",
                        str(self.ports["mail"]),
                        "--folder",
                        str(self.home / "mail"),
                    ],
                    env,
                    logs,
                )
                env["HENPIN_SMTP_HOST"] = "127.0.0.1"
                env["HENPIN_SMTP_PORT"] = str(self.ports["mail"])
                self.urls["mail"] = str(self.home / "mail")
        else:
            self.urls["emulator"] = None

        wait_until_up(f"{api}/health", proc=self.procs["prefect"])
        self._spawn("runner", [sys.executable, "-m", "henpin.cli", "runner"], env, logs)

        inbox_port = self.ports["inbox"]
        env["HENPIN_PREFECT_UI_URL"] = self.urls["prefect_ui"] or ""
        self._spawn(
            "inbox",
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "ui" / "inbox.py"),
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(inbox_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            env,
            logs,
        )
        self.urls["inbox"] = f"http://127.0.0.1:{inbox_port}"
        wait_until_up(f"{self.urls['inbox']}/_stcore/health", proc=self.procs["inbox"])
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
                [
                    *(sys.executable, "-m", "henpin.cli", "cases", "open-message"),
                    *(message["orderId"], "--message", message["text"]),
                    *("--operator", DEMO_OPERATOR, "--json"),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if opened.returncode != 0:
                problems.append(f"{message['orderId']}: {opened.stderr.strip()[-300:]}")
        return problems

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        out = (logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
        )

    def write_status(self, *, ready: bool) -> None:
        status = {"ready": ready, "pid": os.getpid(), **self.urls}
        self.status_file.write_text(json.dumps(status, indent=2))

    def stop(self) -> None:
        for name in ("inbox", "runner", "mail", "emulator", "prefect"):
            proc = self.procs.get(name)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if self.status_file.exists():
            self.write_status(ready=False)

    def dead_child(self) -> str | None:
        return next((n for n, p in self.procs.items() if p.poll() is not None), None)


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
    """What `henpin status --json` prints: the contract is ready, emulator, prefect_api, inbox."""
    path = home / "status.json"
    if not path.exists():
        return {"ready": False, "emulator": None, "prefect_api": None, "inbox": None}
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
    }
