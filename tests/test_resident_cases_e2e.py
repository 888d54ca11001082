"""Henpin's case flows on the resident executor (henpin/resident.py), end to end: a decision
resumes its run at once and Amazon's result wakes it (the executor polls only at its start), and
a run cancelled from the Prefect API while the executor runs it shows on its case with nothing
sent to Amazon.

The executor serves in a thread of the test process; the case deployments are applied without
a work pool, as the former runner served them, so it claims their runs as queue-less runs of
Henpin's deployments (the path an upgraded installation takes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from tests.support import ResidentExecutor, order_json, wait_for
from tests.test_cancel_request_e2e import (  # noqa: F401 - fixtures
    case_by_order,
    control,
    emulator,
    henpin,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def executor(henpin: str) -> Iterator[ResidentExecutor]:  # noqa: F811
    from henpin.runner import case_flows

    # Its one poll is at its start: every later run must come by Prefect's events.
    one = ResidentExecutor(case_flows(), "henpin-test-resident", query_s=600)
    yield one
    one.stop()


def run_state(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id)).state


def housekeeping_rounds(emulator: Any, rounds: int) -> None:  # noqa: F811
    from flows.housekeeping import housekeeping_round

    for _ in range(rounds):
        housekeeping_round()
        control(emulator, "POST", "clock/advance", json={"seconds": 120})
        time.sleep(0.5)


def waiting_case(henpin: str, emulator: Any, order_id: str) -> Any:  # noqa: F811
    from flows.ingest import ingest

    control(emulator, "POST", "orders", json=[order_json(order_id, price="480.00")])
    ingest()
    return wait_for(
        lambda: (c := case_by_order(henpin, order_id)) is not None and c.state == "waiting" and c,
        "the case waits for an operator",
    )


def test_a_decision_acts_and_amazons_result_closes_the_case(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
    executor: ResidentExecutor,
) -> None:
    from henpin.app.decide import decide

    case = waiting_case(henpin, emulator, "111-0000021-0000021")
    decided = decide(henpin, case.id, choice="cancel", operator="alice", source="inbox")
    assert decided.accepted and decided.resumed
    wait_for(lambda: case_by_order(henpin, case.order_id).state == "acting", "the run acted")

    def closed() -> bool:
        housekeeping_rounds(emulator, 1)
        return bool(case_by_order(henpin, case.order_id).state == "closed")

    wait_for(closed, "Amazon's result closed the case", timeout=90)
    done = case_by_order(henpin, case.order_id)
    assert done.outcome == "cancelled-buyer-canceled"
    order = control(emulator, "GET", f"orders/{case.order_id}")
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    # Opened, resumed by the decision, woken by Amazon's result: three runs of one case.
    wait_for(lambda: executor.worker.runs_done >= 3, "the executor counted the case's runs")
    assert executor.exits == []


def test_a_run_cancelled_from_the_prefect_api_while_running_sends_nothing(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
    executor: ResidentExecutor,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelling

    from henpin.app.cases import show_case
    from henpin.app.decide import decide

    case = waiting_case(henpin, emulator, "111-0000022-0000022")
    # The safety read before acting takes 6 s: the run is cancelled meanwhile.
    control(
        emulator,
        "PUT",
        "faults",
        json={
            "seed": 1,
            "rules": [
                {"operations": ["getOrder"], "rate": 1.0, "fault": "slow", "delaySeconds": 6}
            ],
        },
    )
    before = len(control(emulator, "GET", "calls"))
    decide(henpin, case.id, choice="cancel", operator="alice", source="inbox")
    wait_for(
        lambda: (
            any(c["operation"] == "getOrder" for c in control(emulator, "GET", "calls")[before:])
            or run_state(case.flow_run_id).type == StateType.RUNNING
        ),
        "the resumed run is running",
    )
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(
            UUID(case.flow_run_id), Cancelling(message="stopped by the owner"), force=True
        )

    wait_for(
        lambda: run_state(case.flow_run_id).type == StateType.CANCELLED,
        "the run ended Cancelled",
    )
    control(emulator, "PUT", "faults", json={"seed": 1, "rules": []})
    housekeeping_rounds(emulator, 4)

    detail = show_case(henpin, case.id)
    assert detail is not None
    assert detail.state != "closed" and detail.needs_attention
    assert "cancel" in detail.needs_attention.lower()
    assert all(a.status != "submitted" and a.status != "done" for a in detail.actions)
    calls = control(emulator, "GET", "calls")[before:]
    assert not [c for c in calls if c["operation"] in ("createFeedDocument", "createFeed")]
    assert control(emulator, "GET", "feeds") == []  # nothing was sent to Amazon
    order = control(emulator, "GET", f"orders/{case.order_id}")
    assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
