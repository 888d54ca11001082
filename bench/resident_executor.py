"""A resident executor for P1: one long-lived process that runs resumed case runs in-process.

It asks the Prefect API every 0.2 s for due runs of `cancel-request/henpin` and runs each with
`prefect.flow_engine.run_flow` on a small thread pool, as `tests/support.drive_case_runs` does.
No poll of 10 s and no new Python process per run: what is left is Prefect's own state
handling and Henpin's tasks. Not part of Henpin: it shows what would reach the P1 target.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any


def main() -> None:
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

    from flows.cancel_request import cancel_request

    running: set[str] = set()

    def execute(run: Any) -> None:
        try:
            with contextlib.suppress(Pause):
                ran = run_flow(
                    cancel_request, flow_run=run, parameters=run.parameters, return_type="state"
                )
                if inspect.isawaitable(ran):  # an async flow: run it to its end here
                    asyncio.run(ran)
        finally:
            running.discard(str(run.id))

    pool = ThreadPoolExecutor(max_workers=4)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("cancel-request/henpin")
        print("ready", flush=True)
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])
                    )
                ),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["henpin"])),
                limit=50,
            )
            soon = datetime.now(UTC) + timedelta(seconds=1)
            for run in runs:
                due = run.next_scheduled_start_time is None or run.next_scheduled_start_time <= soon
                if run.deployment_id == deployment.id and due and str(run.id) not in running:
                    running.add(str(run.id))
                    pool.submit(execute, run)
            time.sleep(0.2)


if __name__ == "__main__":
    main()
