"""A case's flow run cancelled in Prefect (the UI's Cancel, or the API) shows on its case, and
nothing it queued reaches Amazon. Real Prefect server, the SP-API emulator over HTTP, a real
case store; runs driven in this process as the runner would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from tests.support import drive_case_runs, order_json
from tests.test_cancel_request_e2e import (  # noqa: F401 - fixtures
    case_by_order,
    control,
    emulator,
    force_state,
    henpin,
)

pytestmark = [pytest.mark.e2e]

CHEAP = "111-0000201-0000201"  # policy cancels: the run stores the cancellation and waits
HIGH = "111-0000202-0000202"  # high value: the run waits for an operator


def cancel_in_prefect(flow_run_id: str) -> str:
    """What the Prefect UI's Cancel does: it asks for Cancelling; for a suspended run, which no
    process holds, Prefect's server refuses that and sets Cancelled at once (core_policy.py
    `HandleCancellingScheduledFlows`); a run with a process goes Cancelled once its worker
    stopped it (set here by hand). The run's state name in the end."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled, Cancelling

    with get_client(sync_client=True) as client:
        asked = client.set_flow_run_state(UUID(flow_run_id), Cancelling())
        if asked.status == SetStateStatus.ACCEPT:
            done = client.set_flow_run_state(UUID(flow_run_id), Cancelled())
            assert done.status == SetStateStatus.ACCEPT, done.details
        state = client.read_flow_run(UUID(flow_run_id)).state
    assert state is not None and state.is_cancelled()
    return str(state.name)


def amazon_calls(amazon: Any, operation: str) -> list[dict[str, Any]]:
    return [c for c in control(amazon, "GET", "calls") if c["operation"] == operation]


def test_a_cancelled_run_withdraws_what_it_queued_and_flags_its_case(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
) -> None:
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.housekeeping import CANCELLED_EVENT
    from henpin.runs import read_cancelled_runs

    control(
        emulator,
        "POST",
        "orders",
        json=[order_json(CHEAP, price="9.99"), order_json(HIGH, price="480.00")],
    )
    ingest()
    drive_case_runs()
    cheap, high = case_by_order(henpin, CHEAP), case_by_order(henpin, HIGH)
    assert (cheap.state, high.state) == ("acting", "waiting")
    detail = show_case(henpin, cheap.id)
    assert detail is not None and [a.status for a in detail.actions] == ["pending"]

    assert cancel_in_prefect(cheap.flow_run_id) == "Cancelled"
    assert cancel_in_prefect(high.flow_run_id) == "Cancelled"
    asked = [cheap.flow_run_id, high.flow_run_id]
    for ids_per_call, page in [(1_000, 200), (1, 1), (2, 1)]:  # a page of ids, of answers
        found = read_cancelled_runs(asked, ids_per_call=ids_per_call, page=page)
        assert {run_id: state.type for run_id, state in found.items()} == dict.fromkeys(
            asked, "CANCELLED"
        )
    report = housekeeping()
    assert report["runs_cancelled"] == 2
    assert report["feeds_sent"] == 0

    detail = show_case(henpin, cheap.id)
    assert detail is not None
    assert detail.needs_attention_reason is not None
    assert detail.needs_attention_reason["code"] == "run-cancelled"
    assert detail.needs_attention_reason["values"]["withdrawn"] == 1
    assert detail.needs_attention == (
        "Its flow run was cancelled in Prefect (Cancelled: no description). Henpin withdrew 1 Amazon action(s) it had not sent yet; none of them goes to"
        " Amazon. Look at the order in Seller Central and do by hand what is still due."
    )
    [action] = detail.actions
    assert (action.status, action.result_code) == ("failed", "HENPIN_WITHDRAWN")
    assert action.amazon_feed_id is None
    [line] = [e for e in detail.timeline if e.kind == CANCELLED_EVENT]
    assert line.message == detail.needs_attention
    assert line.data["withdrawn"] == [action.key]

    waiting = show_case(henpin, high.id)
    assert waiting is not None and waiting.needs_attention_reason is not None
    assert waiting.needs_attention_reason["values"] == {
        "state": "Cancelled",
        "message": {"kind": "attention", "code": "no-description", "values": {}},
        "withdrawn": 0,
    }
    assert "(Cancelled: no description)" in (waiting.needs_attention or "")

    # Later rounds: nothing more to record, and nothing of the case goes to Amazon.
    for _ in range(3):
        assert housekeeping()["runs_cancelled"] == 0
        control(emulator, "POST", "clock/advance", json={"seconds": 120})
    for case in (cheap, high):
        detail = show_case(henpin, case.id)
        assert detail is not None
        assert [e.kind for e in detail.timeline].count(CANCELLED_EVENT) == 1
        assert detail.state != "closed"
    assert amazon_calls(emulator, "createFeed") == []
    assert control(emulator, "GET", "feeds") == []
    order = control(emulator, "GET", f"orders/{CHEAP}")
    assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"


def test_an_action_stored_as_its_run_was_cancelled_is_withdrawn_too(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
) -> None:
    """A case already flagged for its cancelled run still has an action stored afterwards (a
    process that did not ask Prefect): the next round withdraws it, the flag stays as it was."""
    from henpin import housekeeping as rounds
    from henpin.app.cases import show_case
    from henpin.domain import ActionKind, CancelOrder
    from henpin.outbox import enqueue
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    control(emulator, "POST", "orders", json=[order_json(HIGH, price="480.00")])
    from flows.ingest import ingest

    ingest()
    drive_case_runs()
    high = case_by_order(henpin, HIGH)
    cancel_in_prefect(high.flow_run_id)
    assert rounds.record_cancelled_runs(henpin) == [high.id]
    assert rounds.record_cancelled_runs(henpin) == []  # done once
    enqueue(
        henpin,
        key=f"case-{high.id}:cancel:{HIGH}",
        case_id=high.id,
        kind=ActionKind.CANCEL_ORDER,
        marketplace_id=high.marketplace_id,
        payload=CancelOrder(order_id=HIGH, order_item_ids=[f"{HIGH[-7:]}01"]),
    )
    with session_scope(henpin) as s:
        case = s.get(Case, high.id)
        assert case is not None
        flag = case.needs_attention
    assert rounds.record_cancelled_runs(henpin) == [high.id]
    detail = show_case(henpin, high.id)
    assert detail is not None and detail.needs_attention == flag
    assert [a.result_code for a in detail.actions] == ["HENPIN_WITHDRAWN"]
    events = [e for e in detail.timeline if e.kind == rounds.CANCELLED_EVENT]
    assert [e.data["attention"]["values"]["withdrawn"] for e in events] == [0, 1]


def test_the_outbox_door_refuses_a_run_being_cancelled(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelled from the Prefect UI while it read the order from Amazon, the run stores no
    cancellation: the door into the outbox asks Prefect first."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling
    from sqlalchemy import func, select

    from flows.ingest import ingest
    from henpin.context import adapter
    from henpin.housekeeping import record_cancelled_runs
    from henpin.store.db import session_scope
    from henpin.store.models import Action
    from tasks.actions import queue_cancellation_if_unchanged

    control(emulator, "POST", "orders", json=[order_json(CHEAP, price="9.99")])
    ingest()
    cheap = case_by_order(henpin, CHEAP)
    amazon = adapter()
    read_order = amazon.get_order
    cancelled_during: list[str] = []

    def slow_read_cancelled_meanwhile(order_id: str, **kw: Any) -> Any:
        order = read_order(order_id, **kw)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(cheap.flow_run_id), Cancelling(), force=True)
        cancelled_during.append(order_id)
        return order

    monkeypatch.setattr(amazon, "get_order", slow_read_cancelled_meanwhile)
    drive_case_runs()
    assert cancelled_during == [CHEAP]
    # One read of the order, so the refusal was not tried again; the run stays Cancelling (the
    # executor's to finish) and nothing was stored. (The refused task run itself reaches the
    # server only as a background event: two clean CI runs read the task runs without it.)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(cheap.flow_run_id)).state
    assert state is not None and state.name == "Cancelling"
    with session_scope(henpin) as s:
        assert s.scalar(select(func.count()).select_from(Action)) == 0

    # Outside a flow run nothing is asked: the door stores. The housekeeper withdraws it.
    monkeypatch.setattr(amazon, "get_order", read_order)
    assert queue_cancellation_if_unchanged.fn(cheap.id, CHEAP, cheap.marketplace_id).queued
    assert record_cancelled_runs(henpin) == [cheap.id]
    flagged = case_by_order(henpin, CHEAP)
    assert flagged.needs_attention_reason["values"]["state"] == "Cancelling"
    assert flagged.needs_attention_reason["values"]["withdrawn"] == 1


def test_a_crash_is_a_stranded_run_only_once_it_has_lasted(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
) -> None:
    """A resident worker cancelling a run sees Prefect's engine report it CRASHED for a moment
    before it sets CANCELLED: the housekeeper starts a CRASHED run again only after
    CRASH_SETTLE, and a run that went on to CANCELLED is the cancelled-runs step's."""
    from prefect.states import Cancelled, Crashed

    from flows.ingest import ingest
    from henpin.housekeeping import record_cancelled_runs
    from henpin.runs import CRASH_SETTLE
    from tasks.sweep import restart_stranded_runs

    orders = [order_json(CHEAP, price="9.99"), order_json(HIGH, price="480.00")]
    control(emulator, "POST", "orders", json=orders)
    ingest()
    drive_case_runs()
    cheap, high = case_by_order(henpin, CHEAP), case_by_order(henpin, HIGH)
    force_state(cheap.flow_run_id, Crashed())
    force_state(high.flow_run_id, Crashed())
    assert restart_stranded_runs.fn() == []  # crashed a moment ago: maybe being cancelled
    # It was: the worker finished the cancellation, and says so.
    force_state(high.flow_run_id, Cancelled(message="Cancelled by the resident worker"))
    later = datetime.now(UTC) + CRASH_SETTLE + timedelta(seconds=1)
    assert restart_stranded_runs.fn(now=later) == [cheap.id]  # a real crash: started again
    assert record_cancelled_runs(henpin) == [high.id]
    flagged = case_by_order(henpin, HIGH)
    assert flagged.needs_attention.startswith(
        "Its flow run was cancelled in Prefect (Cancelled: Cancelled by the resident worker)."
    )
