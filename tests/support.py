"""Helpers for tests that run real parts: a Prefect server, flow runs driven like a runner."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.processes import start_guarded

#: Simulated seconds per wall-clock second of the emulator in end-to-end tests: Amazon's
#: minute-long report and feed processing take a second, and Henpin's adapter (told through
#: HENPIN_EMULATOR_TIME_SCALE) paces its quotas and report polls to match.
E2E_TIME_SCALE = 60.0


class PrefectServer:
    """`prefect server start` on 127.0.0.1 as a subprocess; can be stopped and started again."""

    def __init__(self, port: int, home: Path) -> None:
        self.port = port
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = f"http://127.0.0.1:{port}/api"

    def start(self, timeout: float = 90) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "server.log").open("ab")
        self.proc = start_guarded(  # dies with the test session, however it ends
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited; see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("prefect server did not start in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def reset_process_caches() -> None:
    """Forget settings, adapter and policy of the previous test (they are per process)."""
    from tasks import orders, policy, store

    store.settings.cache_clear()
    orders.adapter.cache_clear()
    policy._holder.cache_clear()


def forget_flow_runs() -> None:
    """Delete every flow run on the (session-wide) Prefect server, so a test never drives a run
    another test left scheduled or suspended."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while runs := client.read_flow_runs(limit=200):
            for run in runs:
                client.delete_flow_run(run.id)


def drive_case_runs(max_rounds: int = 20) -> int:
    """Run every due run of Henpin's case deployments in this process, as the runner would.

    Returns how many runs were executed. A run that suspends stops there (raises Pause inside).
    """
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
            with contextlib.suppress(Pause):
                ran = run_flow(flow, flow_run=run, parameters=run.parameters, return_type="state")
                if inspect.isawaitable(ran):  # the case flows are async: run it to its end here
                    asyncio.run(ran)
            executed += 1
    return executed


def order_json(
    order_id: str,
    *,
    marketplace_id: str = "ATVPDKIKX0DER",
    status: str = "UNSHIPPED",
    price: str = "25.00",
    currency: str = "USD",
    sku: str = "MUG-001",
    cancel_reason: str | None = "Found a better price",
    created: datetime | None = None,
) -> dict[str, Any]:
    """A merchant-fulfilled order in the Orders API 2026-01-01 shape, for the emulator."""
    created = created or datetime.now(UTC) - timedelta(hours=3)
    item: dict[str, Any] = {
        "orderItemId": f"{order_id[-7:]}01",
        "quantityOrdered": 1,
        "product": {
            "asin": "B0HENPIN01",
            "title": "Test item",
            "sellerSku": sku,
            "price": {"unitPrice": {"amount": price, "currencyCode": currency}},
        },
    }
    if cancel_reason is not None:
        item["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": cancel_reason}
        }
    iso = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "orderId": order_id,
        "createdTime": iso,
        "lastUpdatedTime": iso,
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id},
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "orderItems": [item],
    }
