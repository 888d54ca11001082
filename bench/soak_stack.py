"""The soak's own Henpin stack: Prefect server, SP-API emulator and runner, parts of Henpin's
supervisor (henpin/supervisor/) started as `henpin up` starts them, that can be SIGKILLed and
started again on the same sockets (bound once, here) and the same HENPIN_HOME.

The runner is `henpin runner`, the resident executor (henpin/resident.py): one long-lived
process that executes the flow runs it claims as threads, under the same name (`RUNNER_NAME`)
at every start, so a runner started after a kill marks the runs it left running Crashed.

Everything listens on 127.0.0.1 only. The CLI (`henpin poll`, `henpin decide`) is run as a
subprocess with the same environment, exactly as an operator's shell would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from henpin.supervisor import (  # noqa: E402 - needs ROOT on sys.path
    Limits,
    Part,
    Supervisor,
    emulator_part,
    listening_socket,
    port_of,
    prefect_env,
    prefect_server_part,
    runner_part,
)

RUNNER_NAME = "henpin-runner"  # `henpin runner`'s default --name, as `henpin up` starts it


@dataclass
class SoakStack:
    """The soak's parts under one supervisor, logged under `home/logs`."""

    home: Path
    time_scale: float
    outbox_interval_s: float
    marketplaces: list[str]
    runner_limit: int = 4
    settle_s: float = 600.0  # HENPIN_OUTBOX_SETTLE_S
    stale_run_s: float = 900.0  # HENPIN_STALE_RUN_S
    policies: Path = ROOT / "policies.yaml"
    sockets: dict[str, socket.socket] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(self.home / "logs", Limits(stop_grace_s=20.0), say=print)
        # Bound once for the whole soak: a part killed and started again serves on the same
        # socket, so its port is never free for someone else in between.
        self.sockets = {"prefect": listening_socket(0), "emulator": listening_socket(0)}
        self.ports = {name: port_of(sock) for name, sock in self.sockets.items()}

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.supervisor.procs

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['prefect']}/api"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['emulator']}"

    @property
    def store_path(self) -> Path:
        return self.home / "henpin.db"

    def env(self) -> dict[str, str]:
        """This environment without Prefect or Henpin settings, plus the stack's."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "HENPIN_", "SOAK_", "LWA_", "SP_API_"))
        }
        models = os.environ.get("HENPIN_SPAPI_MODELS")
        if models:  # Amazon's models the emulator validates against (default: ../shared)
            env["HENPIN_SPAPI_MODELS"] = models
        env.update(prefect_env(self.home, self.api))
        env.update(
            {
                "PREFECT_UI_ENABLED": "false",
                "HENPIN_HOME": str(self.home),
                "HENPIN_POLICIES": str(self.policies),
                "HENPIN_MARKETPLACES": json.dumps(self.marketplaces),
                "HENPIN_EMULATOR_URL": self.emulator_url,
                "HENPIN_EMULATOR_TIME_SCALE": f"{self.time_scale:g}",
                "HENPIN_OUTBOX_INTERVAL_S": f"{self.outbox_interval_s:g}",
                "HENPIN_POLL_INTERVAL_S": "300",
                "HENPIN_OUTBOX_SETTLE_S": f"{self.settle_s:g}",
                "HENPIN_STALE_RUN_S": f"{self.stale_run_s:g}",
                "PYTHONUNBUFFERED": "1",
                # This checkout, also in the flow-run processes the runner starts.
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    # -- children

    def _part(self, name: str) -> Part:
        if name == "prefect":
            return prefect_server_part(self.sockets["prefect"], self.env())
        if name == "emulator":
            state = self.home / "emulator-state.json"
            return emulator_part(
                self.sockets["emulator"], self.env(), state=state, time_scale=self.time_scale
            )
        if name == "runner":
            return runner_part(self.env(), limit=self.runner_limit or None)
        raise ValueError(name)

    def start(self, name: str) -> None:
        """Start a part (again, after a kill: on the same socket and the same home); returns
        once it answers (the runner: once started)."""
        log = self.supervisor.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(
                f"\n===== soak: starting {name} at {time.strftime('%H:%M:%S')} =====\n".encode()
            )
        timeout = 180 if name == "prefect" else 120
        self.supervisor.start(self._part(name), timeout=timeout)

    def alive(self, name: str) -> bool:
        return self.supervisor.alive(name)

    def executing(self) -> list[str]:
        """Flow runs the runner is executing now, as Prefect has them: RUNNING and claimed by
        the resident executor of this name (its label). Empty if the API does not answer."""
        body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 200}
        try:
            response = httpx.post(f"{self.api}/flow_runs/filter", json=body, timeout=5)
            response.raise_for_status()
            runs = response.json()
        except (httpx.HTTPError, ValueError):
            return []
        return [
            str(run["id"])
            for run in runs
            if (run.get("labels") or {}).get("prefect.worker.name") == RUNNER_NAME
        ]

    def crashed_by_restart(self, flow_run_id: str) -> bool:
        """Whether the run's history has the Crashed state a runner started again gives the runs
        its name left running (henpin/resident.py `mark_runs_left_behind`)."""
        try:
            response = httpx.get(
                f"{self.api}/flow_run_states/", params={"flow_run_id": flow_run_id}, timeout=10
            )
            response.raise_for_status()
            states = response.json()
        except (httpx.HTTPError, ValueError):
            return False
        return any(
            state.get("type") == "CRASHED"
            and f"({RUNNER_NAME}) stopped" in (state.get("message") or "")
            for state in states
        )

    def kill(self, name: str) -> int:
        """SIGKILL the child and every process under it (a crash, not a shutdown); returns how
        many processes died."""
        return self.supervisor.kill_part(name)

    def stop_all(self) -> None:
        """The runner first, then the emulator and the Prefect server; flow-run processes in
        sessions of their own too (the stack's marker)."""
        self.supervisor.stop()
        for sock in self.sockets.values():
            sock.close()

    # -- the CLI, as an operator's shell runs it

    def henpin(self, *args: str, timeout: float = 180) -> tuple[int, str, str]:
        try:
            out = subprocess.run(
                [sys.executable, "-m", "henpin.cli", *args],
                env=self.env(),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            return -1, _text(exc.stdout), _text(exc.stderr) + f"\n(timed out after {timeout} s)"
        return out.returncode, out.stdout, out.stderr

    def henpin_start(self, *args: str) -> subprocess.Popen[str]:
        """Start a CLI command without waiting (two operators deciding at the same moment)."""
        return subprocess.Popen(
            [sys.executable, "-m", "henpin.cli", *args],
            env=self.env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # -- the emulator's control API

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, f"{self.emulator_url}/_emulator{path}", timeout=60, **kwargs
        )
        response.raise_for_status()
        return response.json()


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data
