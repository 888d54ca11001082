"""The default layout (`henpin up`): Prefect server on SQLite, one `henpin runner`, the emulator.

Started part by part with `henpin up`'s own parts (henpin/supervisor/parts.py), not through
`henpin up`, so the benchmark can swap the runner (the resident executor as `henpin up` runs it,
or the former process-per-run runner at a given poll) and the emulator (Amazon's usage plans, or
lifted for P4 engine capacity) while the server and the cases stay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, Children, Emulator, clean_env, start_emulator

from henpin.supervisor import (
    Part,
    listening_socket,
    port_of,
    prefect_env,
    prefect_server_part,
    runner_part,
    wait_until_up,
)


@dataclass
class SingleStack:
    home: Path
    children: Children
    time_scale: float
    outbox_interval_s: float = 2.0
    # Runs at once of the process-per-run runner (each a process), as each worker of the scaled
    # layout; the resident runner runs as `henpin up` runs it (HENPIN_RUNNER_LIMIT's default).
    runner_limit: int = 4
    port: int = 0
    emulator: Emulator | None = None
    runner_env: dict[str, str] = field(default_factory=dict)
    _runner: Part | None = field(default=None, repr=False)  # the runner last started

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def store(self) -> str:
        return f"sqlite:///{(self.home / 'henpin.db').resolve()}"

    def prefect_env(self) -> dict[str, str]:
        """Prefect's settings of `henpin up` for this home (no API URL: `henpin_env` adds it)."""
        return prefect_env(self.home, None)

    def start(self) -> None:
        self.begin()
        self.wait_up()

    def begin(self) -> None:
        """Start Prefect's server and the emulator without waiting for the server to answer:
        the benchmark runs P2, which needs no Prefect, meanwhile (`wait_up` waits)."""
        from henpin.store.db import migrate

        self.home.mkdir(parents=True, exist_ok=True)
        migrate(self.store)
        sock = listening_socket(0)
        self.port = port_of(sock)
        self.children.start(prefect_server_part(sock, clean_env(**self.prefect_env())), wait=False)
        self.emulator = start_emulator(self.children, "emulator", self.time_scale)

    def wait_up(self) -> None:
        wait_until_up(f"{self.api}/health", timeout=180, proc=self.children.procs["prefect"])

    def henpin_env(self, **extra: str) -> dict[str, str]:
        assert self.emulator is not None
        stack = {
            # With the API URL, as `henpin up` gives it (its plain-HTTP CA file among them).
            **prefect_env(self.home, self.api),
            "HENPIN_HOME": str(self.home.resolve()),
            "HENPIN_EMULATOR_URL": self.emulator.url,
            "HENPIN_POLICIES": str(ROOT / "policies.yaml"),
            "HENPIN_OUTBOX_INTERVAL_S": f"{self.outbox_interval_s:g}",
            "HENPIN_POLL_INTERVAL_S": "3600",  # the benchmark starts ingestion itself
        }
        return clean_env(**{**stack, **extra})

    def start_runner(self, poll_s: int | None = None, **env: str) -> int:
        """`henpin runner` (the resident executor) as `henpin up` runs it; with `poll_s`, the
        former runner instead (`henpin runner --process-per-run --limit`, a process per flow
        run) at PREFECT_RUNNER_POLL_FREQUENCY=poll_s; `env`: more settings (e.g. a longer
        HENPIN_OUTBOX_INTERVAL_S). Returns its pid once it executes runs. The same runner with
        the same settings still running is kept, not started again.
        Without --limit, prefect 3.9.1's `serve(limit=None)` runs every due run at once: 200
        new cases meant 60+ processes on 2 cores (load average 69)."""
        if poll_s is None:
            part = runner_part(self.henpin_env(**env))
        else:
            served = self.henpin_env(PREFECT_RUNNER_POLL_FREQUENCY=str(poll_s), **env)
            command = [*runner_part(served).command, "--process-per-run"]
            command += ["--limit", str(self.runner_limit)]
            part = Part("runner", command, served, needs_prefect=True)
        running = self.children.procs.get("runner")
        if running is not None and running.poll() is None and self._runner == part:
            return running.pid  # already this runner: a restart would only cost time
        self.stop_runner()
        self.children.start(part, wait=False)
        self._runner = part
        self.wait_served()
        return self.children.procs["runner"].pid

    def stop_runner(self) -> None:
        """Stop the runner once no run is in flight: a run it is executing when it stops is
        left to housekeeping (marked Crashed, started again), which would slow the next
        measure."""
        if "runner" in self.children.procs:
            self.wait_idle()
        self.children.stop("runner")

    def wait_idle(self, timeout: float = 180) -> None:
        """Until no run is running, pending, or scheduled and due."""
        from datetime import UTC, datetime, timedelta

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterNextScheduledStartTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        def of(*types: StateType) -> FlowRunFilterState:
            return FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types)))

        deadline = time.monotonic() + timeout
        with self.settings(), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                due = FlowRunFilter(
                    state=of(StateType.SCHEDULED),
                    next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                        before_=datetime.now(UTC) + timedelta(seconds=5)
                    ),
                )
                busy = FlowRunFilter(state=of(StateType.RUNNING, StateType.PENDING))
                if not (
                    client.count_flow_runs(flow_run_filter=busy)
                    or client.count_flow_runs(flow_run_filter=due)
                ):
                    return
                time.sleep(0.5)

    def wait_served(self, timeout: float = 120) -> None:
        """Until the runner's deployments exist and it has picked up a first run."""
        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment

        with self.settings():
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    with get_client(sync_client=True) as client:
                        client.read_deployment_by_name("housekeeping/henpin")
                    break
                except Exception:
                    time.sleep(0.5)
            # A housekeeping run proves the runner polls (it is cheap and idempotent).
            # Asked every 0.2 s whether it finished (Prefect's default, every 5 s, added up to
            # 5 s to every runner swap).
            run = run_deployment(
                "housekeeping/henpin", timeout=timeout, poll_interval=0.2, as_subflow=False
            )
            state: Any = run.state
            if state is None or not state.is_final():
                raise RuntimeError("the runner did not pick up a run")

    @contextmanager
    def settings(self) -> Iterator[None]:
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_LOCAL_STORAGE_PATH,
            PREFECT_RESULTS_PERSIST_BY_DEFAULT,
            temporary_settings,
        )

        with temporary_settings(
            updates={
                PREFECT_API_URL: self.api,
                PREFECT_LOCAL_STORAGE_PATH: self.prefect_env()["PREFECT_LOCAL_STORAGE_PATH"],
                PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
            }
        ):
            yield

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.children.procs.items() if p.poll() is None}
