"""Helpers for tests that run real parts: a Prefect server, flow runs driven like a runner."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
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
    """The Prefect server (`prefect server start`'s app, henpin/prefect_serve.py) on 127.0.0.1 as
    a subprocess, serving on a socket this process bound; can be stopped and started again.

    `sock`: the socket of the first start (tests/conftest.py binds it before Prefect is
    imported, as PREFECT_API_URL must name the port; it listens from this start on). A start after a stop binds the same port
    again: every client already knows it. It was free since the stop, when connections had to be
    refused, so someone may hold it for a moment: that bind retries (`RESTART_BIND_S`)."""

    RESTART_BIND_S = 30.0

    def __init__(self, port: int, home: Path, sock: socket.socket | None = None) -> None:
        self.port = port
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = f"http://127.0.0.1:{port}/api"
        self._sock = sock

    def start(self, timeout: float = 90) -> None:
        from henpin.supervisor import listening_socket

        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "server.log").open("ab")
        sock = self._sock or listening_socket(self.port, retry_s=self.RESTART_BIND_S)
        self._sock = None
        sock.listen(128)  # the first start's socket is only bound (tests/conftest.py)
        try:
            self.proc = start_guarded(  # dies with the test session, however it ends
                [sys.executable, "-m", "henpin.prefect_serve", "--fd", str(sock.fileno())],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
                pass_fds=(sock.fileno(),),
            )
        finally:
            sock.close()  # the server holds it now: once it stops, the port refuses connections
            log.close()  # the server has its own copy (a leaked one is a ResourceWarning)
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
    if orders.adapter.cache_info().currsize:  # close its connections (else a ResourceWarning)
        orders.adapter().close()
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

    from henpin.store.db import session_scope
    from henpin.store.models import Event
    from tasks.store import store_url
    from tasks.sweep import RESTART_EVENT

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
    shipping: str | None = None,
    promotion: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """A merchant-fulfilled order in the Orders API 2026-01-01 shape, for the emulator. With
    `shipping` (what the buyer paid for it) or `promotion` (its id, the discount off the price,
    the discount off shipping) the item carries Amazon's proceeds breakdown and promotion."""
    from decimal import Decimal

    from emulator.demo import item_proceeds

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
    if shipping is not None or promotion is not None:
        item["proceeds"] = item_proceeds(
            currency,
            Decimal(price),
            shipping=Decimal(shipping) if shipping is not None else None,
            item_discount=Decimal(promotion[1]) if promotion else Decimal(0),
            shipping_discount=Decimal(promotion[2]) if promotion else Decimal(0),
        )
    if promotion is not None:
        item["promotion"] = {"breakdowns": [{"promotionId": promotion[0]}]}
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
