"""A buyer's cancel request end to end on real parts.

Real Prefect server (subprocess), the SP-API emulator over HTTP, python-amazon-sp-api unmodified,
a real SQLite case store; flow runs are executed in this process the way the runner executes
them (suspended runs hold nothing; resumed runs start again and reuse finished tasks).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from tests.support import (
    E2E_TIME_SCALE,
    drive_case_runs,
    forget_flow_runs,
    order_json,
    reset_process_caches,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator() -> Iterator[Any]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as server:
        yield server


@pytest.fixture
def henpin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Any, prefect_server: Any
) -> Iterator[str]:
    """A fresh Henpin home against the emulator and the session's Prefect server."""
    from flows.cancel_request import cancel_request
    from henpin.store.db import migrate

    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    forget_flow_runs()
    reset_process_caches()
    from henpin.context import store_url

    url = store_url()
    migrate(url)
    cancel_request.to_deployment(name="henpin").apply()
    yield url
    reset_process_caches()


def control(emulator: Any, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{emulator.url}/_emulator/{path}", timeout=10, **kw)
    r.raise_for_status()
    return r.json()


def settle_amazon(emulator: Any, rounds: int = 6, *, allow_restarts: bool = False) -> None:
    """Let housekeeping send feeds and collect Amazon's results, moving the emulator's clock."""
    from flows.housekeeping import housekeeping

    for _ in range(rounds):
        housekeeping()
        control(emulator, "POST", "clock/advance", json={"seconds": 120})
        drive_case_runs(allow_restarts=allow_restarts)


def case_by_order(url: str, order_id: str) -> Any:
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        return s.scalar(select(Case).where(Case.order_id == order_id))


def seed(emulator: Any) -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    control(
        emulator,
        "POST",
        "orders",
        json=[
            order_json("111-0000001-0000001", price="19.99"),  # cheap: policy cancels
            order_json("111-0000002-0000002", price="480.00"),  # high value: operator
            order_json("111-0000003-0000003", status="PENDING", created=recent),  # pending
            order_json("111-0000004-0000004", cancel_reason=None),  # no request: no case
            order_json(
                "302-0000005-0000005",
                marketplace_id="A1F83G8C2ARO7P",
                price="12.50",
                currency="GBP",
                sku="HANDMADE-SCARF",
            ),  # handmade: operator
        ],
    )


def test_cancel_requests_end_to_end(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import list_cases, show_case
    from henpin.app.decide import decide

    seed(emulator)
    first = ingest()
    second = ingest()
    assert sorted(o.order_id for o in first) == [
        "111-0000001-0000001",
        "111-0000002-0000002",
        "111-0000003-0000003",
        "302-0000005-0000005",
    ]
    assert all(o.new for o in first) and not any(o.new for o in second)
    assert len(list_cases(henpin)) == 4  # one case per order, never two

    drive_case_runs()
    pending = case_by_order(henpin, "111-0000003-0000003")
    assert (pending.state, pending.outcome) == ("closed", "nothing-to-do-pending")
    waiting = {c.order_id: c for c in list_cases(henpin, state="waiting")}
    assert set(waiting) == {"111-0000002-0000002", "302-0000005-0000005"}
    assert waiting["111-0000002-0000002"].recommendation["rule"] == "high-value"
    assert waiting["302-0000005-0000005"].recommendation["rule"] == "handmade"
    assert waiting["111-0000002-0000002"].choices == ["cancel", "keep_order", "escalate"]
    assert case_by_order(henpin, "111-0000001-0000001").state == "acting"

    # The operator decides through the inbox's code path.
    high = waiting["111-0000002-0000002"]
    result = decide(
        henpin, high.id, choice="cancel", note="buyer confirmed", operator="alice", source="inbox"
    )
    assert result.accepted and result.resumed
    again = decide(
        henpin,
        waiting["302-0000005-0000005"].id,
        choice="keep_order",
        operator="bob",
        source="inbox",
    )
    assert again.accepted
    drive_case_runs()
    settle_amazon(emulator)

    cheap = case_by_order(henpin, "111-0000001-0000001")
    assert (cheap.state, cheap.outcome) == ("closed", "cancelled-buyer-canceled")
    detail = show_case(henpin, high.id)
    assert detail is not None
    assert (detail.state, detail.outcome) == ("closed", "cancelled-buyer-canceled")
    assert [(d.operator, d.choice, d.source) for d in detail.decisions] == [
        ("alice", "cancel", "inbox")
    ]
    assert detail.actions[0].status == "done" and detail.actions[0].amazon_feed_id
    # The Prefect UI shows a summary of the case on its run.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    # Filtered by this case's run too: other tests' stores on the same Prefect server have a
    # case with the same id.
    assert high.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"case-{high.id}"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(high.flow_run_id)]),
            )
        )
    assert artifacts and "cancelled-buyer-canceled" in str(artifacts[0].data)
    assert "alice" in str(artifacts[0].data)
    kept = case_by_order(henpin, "302-0000005-0000005")
    assert (kept.state, kept.outcome) == ("closed", "kept-order")

    # Amazon's side: both orders cancelled as BuyerCanceled, the kept one untouched, one feed.
    for order_id in ("111-0000001-0000001", "111-0000002-0000002"):
        order = control(emulator, "GET", f"orders/{order_id}")
        assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert (
        control(emulator, "GET", "orders/302-0000005-0000005")["fulfillment"]["fulfillmentStatus"]
        == "UNSHIPPED"
    )
    feeds = control(emulator, "GET", "feeds")
    ack = [f for f in feeds if f["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"]
    assert sum(f["document"].count("<CancelReason>BuyerCanceled</CancelReason>") for f in ack) == 2
    assert all(f["processingStatus"] == "DONE" for f in ack)


def test_order_shipped_before_acting_stops_safely(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from henpin.app.decide import decide

    control(emulator, "POST", "orders", json=[order_json("111-0000009-0000009", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000009-0000009")
    assert case.state == "waiting"
    # The seller's warehouse shipped it while the case waited.
    control(
        emulator,
        "PATCH",
        "orders/111-0000009-0000009",
        json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}},
    )
    decide(henpin, case.id, choice="cancel", operator="alice")
    drive_case_runs()
    case = case_by_order(henpin, "111-0000009-0000009")
    assert (case.state, case.outcome) == ("closed", "order-changed")
    assert control(emulator, "GET", "feeds") == []  # nothing was sent to Amazon


def test_deadline_takes_the_named_timeout_path_and_one_winner(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from henpin.app.decide import decide
    from tasks.sweep import apply_passed_deadlines

    control(emulator, "POST", "orders", json=[order_json("111-0000010-0000010", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000010-0000010")
    assert case.state == "waiting" and case.timeout_choice == "cancel"
    later = datetime.now(UTC) + timedelta(hours=25)
    assert apply_passed_deadlines.fn(now=later) == [case.id]
    late = decide(henpin, case.id, choice="keep_order", operator="carol")
    assert not late.accepted and "already decided by the deadline" in late.message
    drive_case_runs()
    settle_amazon(emulator)
    case = case_by_order(henpin, "111-0000010-0000010")
    assert (case.state, case.outcome) == ("closed", "cancelled-buyer-canceled")


def test_restart_of_prefect_server_while_waiting_loses_nothing(
    henpin: str, emulator: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide

    control(emulator, "POST", "orders", json=[order_json("111-0000011-0000011", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000011-0000011")
    assert case.state == "waiting"
    events_before = len(show_case(henpin, case.id).timeline)  # type: ignore[union-attr]

    prefect_server.stop()
    prefect_server.start()

    assert decide(henpin, case.id, choice="cancel", operator="dave").resumed
    drive_case_runs()
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "cancelled-buyer-canceled"
    kinds = [e.kind for e in detail.timeline]
    # Nothing before the wait happened twice after the restart and resume.
    assert kinds.count("recommendation") == 1 and kinds.count("waiting") == 1
    assert len(detail.timeline) > events_before
    feeds = control(emulator, "GET", "feeds")
    assert sum(f["document"].count("111-0000011-0000011") for f in feeds) == 1


def test_decision_in_prefect_ui_resume_form_is_recorded(henpin: str, emulator: Any) -> None:
    from uuid import UUID

    from prefect.flow_runs import resume_flow_run

    from flows.ingest import ingest
    from henpin.app.cases import show_case

    control(emulator, "POST", "orders", json=[order_json("111-0000012-0000012", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000012-0000012")
    assert case.state == "waiting" and case.flow_run_id
    # The Resume form is generated from the RunInput's schema: a choice outside it is refused.
    with pytest.raises(RuntimeError):
        resume_flow_run(UUID(case.flow_run_id), run_input={"choice": "refund", "operator": "x"})
    resume_flow_run(
        UUID(case.flow_run_id), run_input={"choice": "keep_order", "note": "asked by phone"}
    )
    drive_case_runs()
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "kept-order"
    assert [(d.operator, d.source, d.note) for d in detail.decisions] == [
        ("prefect-ui", "prefect-ui", "asked by phone")
    ]


def test_an_unreadable_order_is_flagged_and_ingestion_goes_on(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import list_cases

    bad = order_json("111-0000013-0000013")
    bad["orderItems"][0]["product"]["price"]["unitPrice"]["amount"] = "twelve dollars"
    control(emulator, "POST", "orders", json=[bad, order_json("111-0000014-0000014")])
    opened = ingest()
    assert [o.order_id for o in opened] == ["111-0000014-0000014"]
    flagged = [c for c in list_cases(henpin) if c.needs_attention]
    assert [c.order_id for c in flagged] == ["111-0000013-0000013"]
    assert flagged[0].details["raw_payload"]["orderId"] == "111-0000013-0000013"
    assert "cannot read" in (flagged[0].needs_attention or "")


def force_state(flow_run_id: str, state: Any) -> None:
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), state, force=True)


def test_a_run_suspended_without_its_answers_schema_is_started_again_and_acts_once(
    henpin: str, emulator: Any
) -> None:
    """Prefect suspends a run by setting its state, then saving the answer's schema
    (prefect/flow_runs.py); a runner killed in between (seen in the soak) left a run that no
    answer could resume ("Run input schema not found."), so the case waited for ever. Deciding
    starts it again; it finds the decision in the case store and cancels once."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide

    control(emulator, "POST", "orders", json=[order_json("111-0000015-0000015", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000015-0000015")
    assert case.state == "waiting"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(case.flow_run_id))
        assert run.state is not None and run.state.is_paused()
        keyset = run.state.state_details.run_input_keyset
        assert keyset is not None
        client.delete_flow_run_input(UUID(case.flow_run_id), keyset["schema"])  # the kill

    result = decide(henpin, case.id, choice="cancel", operator="dave")
    assert result.accepted and result.resumed
    drive_case_runs()
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "cancelled-buyer-canceled"
    assert [(d.choice, d.operator) for d in detail.decisions] == [("cancel", "dave")]
    feeds = control(emulator, "GET", "feeds")
    assert sum(f["document"].count("111-0000015-0000015") for f in feeds) == 1


def test_a_decision_resuming_at_the_same_moment_as_the_sweep_counts_as_resumed(
    henpin: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect's server checks "is it paused?" without a lock: when a decision and the
    housekeeper's sweep resume one run at once (seen on PostgreSQL in the scaled layout), the
    loser's answer hits the winner's unique key and gets 409 "Data integrity conflict". The run
    was resumed, by the other door, with the same decision: the decision says so, and the case
    cancels once."""
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide

    control(emulator, "POST", "orders", json=[order_json("111-0000016-0000016", price="999.00")])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, "111-0000016-0000016")
    assert case.state == "waiting"

    from prefect.client.orchestration import SyncPrefectClient

    real_resume = SyncPrefectClient.resume_flow_run

    def the_other_door_wins(
        client: SyncPrefectClient, flow_run_id: Any, run_input: Any = None
    ) -> None:
        real_resume(client, flow_run_id, run_input=run_input)  # the sweep's resume lands first
        request = httpx.Request("POST", f"http://prefect/api/flow_runs/{flow_run_id}/resume")
        conflict = httpx.Response(409, request=request, json={"detail": "Data integrity conflict."})
        raise httpx.HTTPStatusError("409 Conflict", request=request, response=conflict)

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", the_other_door_wins)
    result = decide(henpin, case.id, choice="cancel", operator="dave")
    assert result.accepted and result.resumed
    monkeypatch.undo()
    drive_case_runs()
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "cancelled-buyer-canceled"
    feeds = control(emulator, "GET", "feeds")
    assert sum(f["document"].count("111-0000016-0000016") for f in feeds) == 1


def test_a_decision_the_sweep_resumed_first_says_the_case_continues_now(
    henpin: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The housekeeper's sweep of decided cases can resume the run between the decision being
    recorded and the decision's own resume: Prefect's server then answers the decision "not
    paused" (ABORT). The run is queued to run ("Resuming") and finds the decision: the operator
    is told the case continues now, and it cancels once. A run still Running, which may be
    about to suspend, is not counted so: the sweep resumes it within a minute."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Paused, Running

    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide

    orders = ("111-0000017-0000017", "111-0000018-0000018")
    control(emulator, "POST", "orders", json=[order_json(o, price="999.00") for o in orders])
    ingest()
    drive_case_runs()
    first, second = (case_by_order(henpin, o) for o in orders)
    assert first.state == second.state == "waiting"

    real_resume = SyncPrefectClient.resume_flow_run

    def the_sweep_first(client: SyncPrefectClient, flow_run_id: Any, run_input: Any = None) -> Any:
        real_resume(client, flow_run_id, run_input=run_input)  # the sweep's resume
        return real_resume(client, flow_run_id, run_input=run_input)  # the decision's: ABORT

    monkeypatch.setattr(SyncPrefectClient, "resume_flow_run", the_sweep_first)
    result = decide(henpin, first.id, choice="cancel", operator="dave")
    monkeypatch.undo()
    assert result.accepted and result.resumed
    assert result.message.endswith("the case continues now.")

    force_state(second.flow_run_id, Running())  # as if it had not suspended yet
    result = decide(henpin, second.id, choice="keep_order", operator="dave")
    assert result.accepted and not result.resumed
    assert result.message.endswith("the case will continue within a minute.")
    force_state(second.flow_run_id, Paused(reschedule=True))  # it suspended after all

    drive_case_runs()
    settle_amazon(emulator)
    detail = show_case(henpin, first.id)
    assert detail is not None and detail.outcome == "cancelled-buyer-canceled"
    kept = show_case(henpin, second.id)  # the housekeeper's sweep resumed it
    assert kept is not None and kept.outcome == "kept-order"
    feeds = control(emulator, "GET", "feeds")
    assert sum(f["document"].count(orders[0]) for f in feeds) == 1
    assert not any(orders[1] in f["document"] for f in feeds)


def test_runs_left_behind_by_a_killed_runner_are_started_again_once(
    henpin: str, emulator: Any
) -> None:
    """A runner killed while starting a run leaves it PENDING; a flow process killed mid-run
    leaves it CRASHED. Housekeeping starts both again; the cancellation reaches Amazon once."""
    from prefect.states import Crashed, Pending

    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide
    from henpin.housekeeping import MAX_RESTARTS
    from henpin.runs import CRASH_SETTLE
    from tasks.sweep import restart_stranded_runs

    control(
        emulator,
        "POST",
        "orders",
        json=[
            order_json("111-0000012-0000012", price="999.00"),  # to an operator
            order_json("111-0000013-0000013", price="9.99"),  # policy cancels
            order_json("111-0000014-0000014", price="999.00"),  # its run keeps dying
        ],
    )
    ingest()
    high = case_by_order(henpin, "111-0000012-0000012")
    cheap = case_by_order(henpin, "111-0000013-0000013")
    force_state(high.flow_run_id, Pending())  # the runner died right after claiming it
    drive_case_runs()  # only the cheap one runs: it stores its cancellation and waits
    assert case_by_order(henpin, "111-0000013-0000013").state == "acting"
    force_state(cheap.flow_run_id, Crashed())  # its process died after storing the action

    assert restart_stranded_runs.fn() == []  # crashed a moment ago: maybe being cancelled

    def crash_settled() -> datetime:
        return datetime.now(UTC) + CRASH_SETTLE + timedelta(seconds=1)

    assert restart_stranded_runs.fn(now=crash_settled()) == [cheap.id]  # PENDING: not yet
    minutes_later = datetime.now(UTC) + timedelta(minutes=2)
    assert restart_stranded_runs.fn(now=minutes_later) == [high.id]
    drive_case_runs(allow_restarts=True)
    assert case_by_order(henpin, "111-0000012-0000012").state == "waiting"
    assert decide(henpin, high.id, choice="cancel", operator="erin").accepted
    drive_case_runs(allow_restarts=True)
    settle_amazon(emulator, allow_restarts=True)
    for case in (high, cheap):
        detail = show_case(henpin, case.id)
        assert detail is not None and detail.outcome == "cancelled-buyer-canceled"
        assert [e.kind for e in detail.timeline].count("run-restarted") == 1
    documents = "".join(f["document"] for f in control(emulator, "GET", "feeds"))
    assert documents.count("111-0000012-0000012") == 1
    assert documents.count("111-0000013-0000013") == 1

    # A run that keeps dying is handed to a person instead of being restarted for ever.
    doomed = case_by_order(henpin, "111-0000014-0000014")
    for _ in range(MAX_RESTARTS):
        force_state(doomed.flow_run_id, Crashed())
        assert restart_stranded_runs.fn(now=crash_settled()) == [doomed.id]
    force_state(doomed.flow_run_id, Crashed())
    assert restart_stranded_runs.fn(now=crash_settled()) == []
    flagged = case_by_order(henpin, "111-0000014-0000014")
    assert "stopped restarting" in flagged.needs_attention


def test_the_runners_housekeeper_does_the_steps_of_the_housekeeping_flow(
    henpin: str, emulator: Any
) -> None:
    from flows.housekeeping import housekeeping, housekeeping_round

    assert list(housekeeping_round()) == list(housekeeping())


def test_a_report_without_summary_waits_for_a_person_then_the_case_goes_on(
    henpin: str, emulator: Any
) -> None:
    """Amazon's report has no summary to account for the cancellation: nothing is marked done,
    the case is flagged, and only a person's answer (here: Amazon did apply it) lets it close."""
    from flows.ingest import ingest
    from henpin.accounts import add_operator
    from henpin.app.cases import list_cases
    from henpin.app.feeds import feeds_in_attention, settle_feed

    add_operator(henpin, "alice", "correct horse battery", role="operator")
    control(emulator, "POST", "orders", json=[order_json("111-0000021-0000021", price="19.99")])
    control(emulator, "PUT", "faults", json={"seed": 1, "feeds": {"noSummaryRate": 1}})
    ingest()
    drive_case_runs()
    settle_amazon(emulator)
    [case] = list_cases(henpin)
    assert case.state == "acting"  # not done: the report did not account for the action
    assert "no ProcessingSummary" in (case.needs_attention or "")
    [feed] = feeds_in_attention(henpin, case.id)
    assert (
        control(emulator, "GET", "orders/111-0000021-0000021")["fulfillment"]["fulfillmentStatus"]
        == "CANCELLED"
    )  # Amazon applied it; its report just did not say so
    assert settle_feed(henpin, feed.id, "done", operator="alice").value == "feed-marked-done"
    settle_amazon(emulator, rounds=2)
    closed = case_by_order(henpin, "111-0000021-0000021")
    assert (closed.state, closed.outcome, closed.needs_attention) == (
        "closed",
        "cancelled-buyer-canceled",
        None,
    )


def test_a_request_for_some_items_cancels_them_the_way_amazon_documents(
    henpin: str, emulator: Any
) -> None:
    """The buyer asks to cancel the spoons of a mug-and-spoons order. Amazon cancels part of an
    order only by an order adjustment once the rest has shipped (help 200198080): Henpin sends
    no acknowledgement, asks the operator to ship the mug first, asks again while nothing has
    shipped, then refunds the spoons with QuantityCancelled (CustomerCancel)."""
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.decide import decide
    from tests.test_emulator_feed_checks import two_item_order

    order_id = "111-0000010-0000010"
    spoons = f"{order_id[-7:]}02"
    control(emulator, "POST", "orders", json=[two_item_order(order_id, "UNSHIPPED", False)])
    ingest()
    drive_case_runs()
    case = case_by_order(henpin, order_id)
    assert (case.state, case.waiting_step) == ("waiting", "part-cancel")
    assert case.choices == ["others_shipped", "keep_order", "escalate"]
    assert "order adjustment" in case.question["prompt"]

    # Answered before the mug shipped: nothing is sent, the question comes again.
    assert decide(henpin, case.id, choice="others_shipped", operator="alice").accepted
    drive_case_runs()
    case = case_by_order(henpin, order_id)
    assert (case.state, case.waiting_step) == ("waiting", "part-cancel-round2")
    assert control(emulator, "GET", "feeds") == []

    # The warehouse ships the mug and confirms it; the spoons stay unshipped.
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={
            "fulfillment": {"fulfillmentStatus": "PARTIALLY_SHIPPED"},
            "orderItems": [
                {
                    "orderItemId": f"{order_id[-7:]}01",
                    "fulfillment": {"quantityFulfilled": 1, "quantityUnfulfilled": 0},
                }
            ],
        },
    )
    assert decide(henpin, case.id, choice="others_shipped", operator="alice").accepted
    drive_case_runs()
    settle_amazon(emulator)

    detail = show_case(henpin, case.id)
    assert detail is not None
    assert (detail.state, detail.outcome) == ("closed", "part-cancelled")
    feeds = control(emulator, "GET", "feeds")
    assert [f["feedType"] for f in feeds] == ["POST_PAYMENT_ADJUSTMENT_DATA"]
    document = feeds[0]["document"]
    assert f"<AmazonOrderItemCode>{spoons}</AmazonOrderItemCode>" in document
    assert "<AdjustmentReason>CustomerCancel</AdjustmentReason>" in document
    assert "<QuantityCancelled>2</QuantityCancelled>" in document
    assert '<Amount currency="USD">8.00</Amount>' in document
    order = control(emulator, "GET", f"orders/{order_id}")
    assert order["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert order["orderItems"][1]["cancellation"]["cancellationExecution"] == {
        "cancelledBy": "MERCHANT"
    }


def test_amazons_confirmation_closes_the_case_at_once_and_its_run_ends_it(
    henpin: str, emulator: Any
) -> None:
    """The outbox closes a case when it records Amazon's confirmation, before the case's run is
    resumed (a finished feed's cases close in that transaction, however busy Prefect is); the
    housekeeper then resumes the run, which ends with the same outcome and one "closed" line on
    the timeline. A run that ended otherwise meanwhile (cancelled) is not asked for again."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    from flows.ingest import ingest
    from henpin.store.db import session_scope
    from henpin.store.models import Event
    from tasks.sweep import send_amazon_actions, wake_cases_with_amazon_results

    cheap, other = "111-0000021-0000021", "111-0000022-0000022"
    control(
        emulator,
        "POST",
        "orders",
        json=[order_json(cheap, price="19.99"), order_json(other, price="18.00")],
    )
    ingest()
    drive_case_runs()
    assert {case_by_order(henpin, o).state for o in (cheap, other)} == {"acting"}

    send_amazon_actions.fn()
    control(emulator, "POST", "clock/advance", json={"seconds": 120})
    send_amazon_actions.fn()  # Amazon's report recorded: no run resumed yet
    case, cancelled = case_by_order(henpin, cheap), case_by_order(henpin, other)
    assert (case.state, case.outcome, case.run_to_finish) == (
        "closed",
        "cancelled-buyer-canceled",
        True,
    )
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(case.flow_run_id))
        assert run.state is not None and run.state.is_paused()
        # Someone cancels the other case's run in the Prefect UI before it is resumed.
        client.set_flow_run_state(UUID(cancelled.flow_run_id), Cancelled(), force=True)
    [feed] = [
        f
        for f in control(emulator, "GET", "feeds")
        if f["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"
    ]
    assert feed["processingStatus"] == "DONE"

    assert wake_cases_with_amazon_results.fn() == [case.id]
    drive_case_runs()
    ended = case_by_order(henpin, cheap)
    assert (ended.state, ended.outcome, ended.run_to_finish) == (
        "closed",
        "cancelled-buyer-canceled",
        False,
    )
    assert ended.closed_at == case.closed_at  # closed once, when Amazon's report came
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(case.flow_run_id))
        assert run.state is not None and run.state.is_completed()
    with session_scope(henpin) as s:
        closed = s.scalars(
            select(Event.message).where(Event.case_id == case.id, Event.kind == "closed")
        ).all()
    assert closed == [f"Amazon cancelled the order (feed {feed['feedId']})."]
    assert not case_by_order(henpin, other).run_to_finish  # its run ended: not woken again
    assert wake_cases_with_amazon_results.fn() == []
    assert control(emulator, "GET", f"orders/{cheap}")["fulfillment"]["fulfillmentStatus"] == (
        "CANCELLED"
    )
