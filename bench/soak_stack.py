"""The soak's own Henpin stack: Prefect server, SP-API emulator and runner as child processes
that can be SIGKILLed and started again on the same ports and the same HENPIN_HOME.

Everything listens on 127.0.0.1 only. The CLI (`henpin poll`, `henpin decide`) is run as a
subprocess with the same environment, exactly as an operator's shell would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
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

from henpin.stack import free_port, prefect_env  # noqa: E402 - needs ROOT on sys.path


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (flow-run processes of the runner, uvicorn of the
    Prefect server), read from /proc."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError, ValueError):
                    todo += [int(k) for k in (task / "children").read_text().split()]
    return tree


@dataclass
class SoakStack:
    """Child processes in their own sessions, logged under `home/logs`."""

    home: Path
    time_scale: float
    outbox_interval_s: float
    marketplaces: list[str]
    runner_limit: int = 4
    settle_s: float = 600.0  # HENPIN_OUTBOX_SETTLE_S
    stale_run_s: float = 900.0  # HENPIN_STALE_RUN_S
    policies: Path = ROOT / "policies.yaml"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.ports = {"prefect": free_port(0), "emulator": free_port(0)}

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

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        out = (self.home / "logs" / f"{name}.log").open("ab")
        out.write(f"\n===== soak: starting {name} at {time.strftime('%H:%M:%S')} =====\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            env=self.env(),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start(self, name: str) -> None:
        if name == "prefect":
            port = str(self.ports["prefect"])
            cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            proc = self._spawn("prefect", [*cmd, "--port", port])
            wait_http(f"{self.api}/health", proc, timeout=180)
        elif name == "emulator":
            state = str(self.home / "emulator-state.json")
            cmd = [sys.executable, "-m", "henpin.cli", "emulator", "--host", "127.0.0.1"]
            cmd += ["--port", str(self.ports["emulator"]), "--state-file", state]
            proc = self._spawn("emulator", [*cmd, "--time-scale", f"{self.time_scale:g}"])
            wait_http(f"{self.emulator_url}/_emulator/health", proc, timeout=120)
        elif name == "runner":
            limit = ["--limit", str(self.runner_limit)] if self.runner_limit else []
            self._spawn("runner", [sys.executable, "-m", "henpin.cli", "runner", *limit])
        else:
            raise ValueError(name)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str) -> int:
        """SIGKILL the child and every process under it (a crash, not a shutdown); returns how
        many processes died."""
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return 0
        pids = process_tree(proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        return len(pids)

    def stop_all(self) -> None:
        for name in ("runner", "emulator", "prefect"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            pids = process_tree(proc.pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            for pid in pids:  # flow-run processes may sit in sessions of their own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

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


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: its process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
