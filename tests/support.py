"""Helpers for tests that run real parts: a Prefect server, flow runs driven like a runner."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
from datetime import UTC, datetime, timedelta
from typing import Any

# The demo-order builder lives with the emulator's demo data; the restartable Prefect server with
# the supervisor (henpin/supervisor/parts.py). Both are named here for the tests that import them.
from emulator.demo import order_json
from henpin.supervisor import PrefectServer

__all__ = [
    "E2E_TIME_SCALE",
    "CaseRunFailed",
    "PrefectServer",
    "drive_case_runs",
    "forget_flow_runs",
    "order_json",
    "reset_process_caches",
    "unexpected_restarts",
]

#: Simulated seconds per wall-clock second of the emulator in end-to-end tests: Amazon's
#: minute-long report and feed processing take a second, and Henpin's adapter (told through
#: HENPIN_EMULATOR_TIME_SCALE) paces its quotas and report polls to match.
E2E_TIME_SCALE = 60.0


def reset_process_caches() -> None:
    """Install a fresh process context (henpin/context.py): settings, adapter and policy are
    built anew, from the environment as it is at their first use."""
    from henpin.context import Context, current, install

    current().close()  # its adapter's connections (else a ResourceWarning)
    install(Context())


def forget_flow_runs() -> None:
    """Delete every flow run on the (session-wide) Prefect server, so a test never drives a run
    another test left scheduled or suspended."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while runs := client.read_flow_runs(limit=200):
            for run in runs:
                client.delete_flow_run(run.id)


class CaseRunFailed(AssertionError):
    """A case run ended FAILED or CRASHED: a test must not pass over it (housekeeping would
    quietly restart it, and the outcome checked afterwards could come from the second try)."""


def unexpected_restarts() -> list[int]:
    """Cases of this test's store (HENPIN_HOME / HENPIN_DATABASE_URL) that housekeeping started
    again (`run-restarted` on their timeline); [] when no store is set up."""
    if not (os.environ.get("HENPIN_HOME") or os.environ.get("HENPIN_DATABASE_URL")):
        return []
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from henpin.context import store_url
    from henpin.housekeeping import RESTART_EVENT
    from henpin.store.db import session_scope
    from henpin.store.models import Event

    try:
        with session_scope(store_url()) as s:
            found = s.scalars(select(Event.case_id).where(Event.kind == RESTART_EVENT)).all()
    except OperationalError:  # no case store made in this test: nothing was restarted
        return []
    return sorted(set(found))


def drive_case_runs(max_rounds: int = 20, *, allow_restarts: bool = False) -> int:
    """Run every due run of Henpin's case deployments in this process, as the runner would.

    Returns how many runs were executed. A run that suspends stops there (raises Pause inside).
    A run that ends FAILED or CRASHED raises `CaseRunFailed` with its state message, and so does
    a case that housekeeping had to start again, unless the test makes that happen on purpose
    (`allow_restarts`): an end-to-end test must not pass on a second try it did not ask for.
    """
    executed = _drive(max_rounds)
    restarted = [] if allow_restarts else unexpected_restarts()
    if restarted:
        raise CaseRunFailed(f"housekeeping restarted the runs of cases {restarted}")
    return executed


def _drive(max_rounds: int) -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from henpin.runner import case_flows

    flows = case_flows()
    executed = 0
    for _ in range(max_rounds):
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["henpin"])),
                limit=200,
            )
            flow_names = {r.id: client.read_flow(r.flow_id).name for r in runs}
        due = [
            r
            for r in runs
            if r.next_scheduled_start_time is None
            or r.next_scheduled_start_time <= datetime.now(UTC) + timedelta(seconds=1)
        ]
        if not due:
            return executed
        for run in due:
            flow = flows[flow_names[run.id]]
            # A run that suspends raises Pause: it now waits for a person or for Amazon.
            state: Any = None
            with contextlib.suppress(Pause):
                ran: Any = run_flow(
                    flow, flow_run=run, parameters=run.parameters, return_type="state"
                )
                # the case flows are async: run it to its end here
                state = asyncio.run(ran) if inspect.isawaitable(ran) else ran
            executed += 1
            if state is not None and (state.is_failed() or state.is_crashed()):
                raise CaseRunFailed(
                    f"case run {run.name} ({flow_names[run.id]}) ended {state.type.value}: "
                    f"{state.message}"
                )
    return executed


class ResidentExecutor:
    """A resident executor (henpin/resident.py) serving in a thread of the test process, with
    its exits (a recycle) recorded instead of ending the process."""

    def __init__(self, flows: dict[str, Any], name: str, **options: Any) -> None:
        import threading

        from henpin.resident import ResidentWorker

        self.exits: list[int] = []
        self.worker = ResidentWorker(flows, name=name, exit=self.exits.append, **options)
        ready = threading.Event()
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.worker.serve(ready)), name=name, daemon=True
        )
        self.thread.start()
        assert ready.wait(60), "the resident executor did not start"

    def stop(self) -> None:
        self.worker.stopping.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the resident executor did not stop"


def wait_for(check: Any, what: str, timeout: float = 60.0, every: float = 0.2) -> Any:
    """Poll `check()` every `every` seconds until it returns something true, and return that;
    fail naming `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")
