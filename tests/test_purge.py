"""Buyers' personal data is purged from closed cases after the policy's retention period."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from henpin.domain import CaseType, FulfillmentStatus, Order
from henpin.store.db import migrate, session_scope
from henpin.store.models import Case
from tests.support import reset_process_caches

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated case store in tmp_path, with the shipped policy in force."""
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    reset_process_caches()
    from henpin.context import store_url

    migrate(store_url())
    yield store_url()
    reset_process_caches()


def shipped(order_id: str, name: str, email: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        created_time=now,
        last_updated_time=now,
        fulfillment_status=FulfillmentStatus.SHIPPED,
        buyer_name=name,
        buyer_email=email,
    )


def test_closed_cases_lose_buyer_data_after_retention(store: str) -> None:
    from henpin.context import policy_in_force
    from tasks.cases import open_case
    from tasks.sweep import purge_buyer_data

    url = store
    now = datetime.now(UTC)
    order = shipped("111-P", "Hanako Test", "hanako-test@marketplace.amazon.com")
    old_id, _ = open_case(
        CaseType.ADDRESS_ERROR, order, url=url, details={"confirmed_address": "1-2-3 Test"}
    )
    new_id, _ = open_case(CaseType.CANCEL_REQUEST, order, url=url)
    days = policy_in_force().retention.buyer_data_days
    with session_scope(url) as s:
        for case_id, age in ((old_id, days + 1), (new_id, 1)):
            case = s.get(Case, case_id)
            assert case is not None
            case.state, case.closed_at = "closed", now - timedelta(days=age)

    assert purge_buyer_data.fn(now=now) == [old_id]
    assert purge_buyer_data.fn(now=now) == []  # once
    with session_scope(url) as s:
        old, new = s.get(Case, old_id), s.get(Case, new_id)
        assert old is not None and new is not None
        assert "Hanako" not in repr(old.order_snapshot) + repr(old.details)
        assert "hanako-test" not in repr(old.order_snapshot)
        assert old.details["confirmed_address"] == "(purged)"
        assert old.personal_data_purged_at is not None
        assert new.order_snapshot["buyer_name"] == "Hanako Test"  # still within retention


def test_purge_reaches_free_text_notes_and_messages_and_dry_run_says_what_would_go(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from henpin.cli import main
    from henpin.context import policy_in_force
    from henpin.decisions import record_decision
    from henpin.store.models import Action, AuditEntry, Decision, Event, UnreadablePayload
    from tasks.cases import open_case
    from tasks.ingest import flag_unreadable_order
    from tasks.orders import UnreadableOrder
    from tasks.sweep import purge_buyer_data

    url = store
    now = datetime.now(UTC)
    order = shipped("111-Q", "Zyxwv Qutsr", "zyxwv@marketplace.amazon.com")
    case_id, _ = open_case(
        CaseType.CANCEL_BY_MESSAGE,
        order,
        url=url,
        details={"buyer_message": "Cancel please. Zyxwv, 7 Qqqq Street", "opened_by": "alice"},
    )
    record_decision(
        url,
        case_id,
        "no-request-0",
        choice="cancel_as_seller",
        note="Buyer rang from 090-1234-5678, asked again on +81 90 1234 5678",
        operator="alice",
        source="inbox",
        data={"amount": "12.50", "reason": "see 7 Qqqq Street"},
    )
    with session_scope(url) as s:
        s.add(
            Action(
                key="email:111-Q:0",
                case_id=case_id,
                kind="send-email",
                feed_type="EMAIL",
                marketplace_id="ATVPDKIKX0DER",
                payload={
                    "to": "zyxwv@marketplace.amazon.com",
                    "subject": "Order 111-Q",
                    "body": "Hello Zyxwv Qutsr, ...",
                },
            )
        )
        s.add(
            Event(case_id=case_id, kind="note", message="Deadline 2026-12-05 10:00 UTC; 12.50 USD")
        )
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.closed_at = "closed", now - timedelta(days=400)
    old = now - timedelta(days=400)
    flag_unreadable_order.fn(
        CaseType.CANCEL_REQUEST,
        UnreadableOrder(
            order_id=None,
            marketplace_id=None,
            problem="orderId: missing",
            payload={"buyerName": "Zyxwv Qutsr"},
        ),
    )
    with session_scope(url) as s:
        for row in s.query(UnreadablePayload).all():
            row.at = old
        audited = [a.detail for a in s.query(AuditEntry).all()]
    assert "Zyxwv" not in repr(audited) and audited[0]["payload_id"]  # the log names the row

    assert main(["purge", "--dry-run", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["dry_run"] is True and said["case_ids"] == [case_id]
    assert said["retention_days"] == policy_in_force().retention.buyer_data_days
    assert said["places"] == {
        "cases": 1,
        "events": 1,  # the decision's line quotes the note; "opened" and the note do not
        "decisions": 1,
        "actions": 1,
        "photos": 0,
        "unreadable_payloads": 1,
        "prefect_runs": 0,
        "result_files": 0,  # no run, no results in the case's folder
    }
    with session_scope(url) as s:  # a dry run changes nothing
        assert "Zyxwv" in repr(s.get(Case, case_id).details)  # type: ignore[union-attr]

    assert purge_buyer_data.fn(now=now) == [case_id]
    with session_scope(url) as s:
        rows = [
            *s.query(Case).all(),
            *s.query(Event).all(),
            *s.query(Decision).all(),
            *s.query(Action).all(),
            *s.query(UnreadablePayload).all(),
        ]
        text = repr([{c.key: getattr(r, c.key) for c in r.__mapper__.column_attrs} for r in rows])
        decision = s.query(Decision).one()
        kept = s.query(Event).filter(Event.kind == "note").one().message
    for personal in ("Zyxwv", "Qutsr", "Qqqq", "1234-5678", "1234 5678", "zyxwv@"):
        assert personal not in text, personal
    assert decision.data["amount"] == "12.50" and decision.choice == "cancel_as_seller"
    assert kept == "Deadline 2026-12-05 10:00 UTC; 12.50 USD"  # dates and money stay


def test_purge_reaches_a_needs_attention_reason_kept_as_code_and_values(store: str) -> None:
    """Why a case needs attention is kept twice (its words, its code and values): a value that
    quotes the buyer goes from both, and from the timeline line that said it; the code stays."""
    from henpin.policy.reasons import phrase
    from henpin.store.models import Event
    from tasks.cases import flag_attention, open_case
    from tasks.sweep import purge_buyer_data

    url = store
    now = datetime.now(UTC)
    order = shipped("111-R", "Yxwvu Srqpo", "yxwvu@marketplace.amazon.com")
    case_id, _ = open_case(CaseType.ADDRESS_ERROR, order, url=url)
    why = phrase(
        "attention", "unreadable-order", problem="buyerName: 'Yxwvu Srqpo' is not an e-mail"
    )
    flag_attention.fn(case_id, why)
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert case.needs_attention_reason is not None
        assert "Yxwvu" in repr(case.needs_attention_reason)
        case.state, case.closed_at = "closed", now - timedelta(days=400)

    assert purge_buyer_data.fn(now=now) == [case_id]
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        reason = case.needs_attention_reason or {}
        lines = [e.data for e in s.query(Event).filter(Event.kind == "needs-attention")]
        assert "Yxwvu" not in repr(reason) + repr(lines) + (case.needs_attention or "")
        assert reason["code"] == "unreadable-order"
        assert reason["values"]["problem"] == "buyerName: '(purged)' is not an e-mail"
        assert lines and "Srqpo" not in repr(lines)


@pytest.mark.e2e
def test_a_case_runs_results_are_filed_under_the_case_and_purged_with_it(
    store: str, prefect_server: Any, tmp_path: Path
) -> None:
    """Prefect names a persisted task result after its cache key; Henpin's tasks file it in the
    case's folder of the result storage (`cases/<case id>/`). The purge deletes that folder, so
    the result goes even when the Prefect server holds no record of the task run that wrote it
    (here the run is deleted; in the full suite, task-run events it never recorded)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from henpin.context import policy_in_force
    from henpin.housekeeping import purge_buyer_data_now
    from henpin.runs import case_result_files
    from tasks.cases import open_case
    from tasks.kinds import store_task

    case_id, _ = open_case(CaseType.CANCEL_REQUEST, shipped("111-R", "Zyxwv Qutsr", "z@x.io"))

    @store_task("read-the-buyer")
    def read_the_buyer(order_id: str) -> str:
        return f"Zyxwv Qutsr of {order_id}"

    # Case flows return their outcome, never buyer data: the flows here return nothing.
    @flow(name="a-case", persist_result=True)
    def a_case(case_id: int, order_id: str) -> None:
        read_the_buyer(order_id)

    @flow(name="not-a-case", persist_result=True)
    def not_a_case(order_id: str) -> None:
        read_the_buyer(order_id)

    def holding(root: Path) -> list[Path]:
        """Result files with the buyer's name: a JSON record whose value is a base64 pickle,
        or (a flow's result) the base64 pickle alone."""

        def value(raw: bytes) -> bytes:
            try:
                return base64.b64decode(json.loads(raw)["result"])
            except ValueError:
                return base64.b64decode(raw)

        return [p for p in root.rglob("*") if p.is_file() and b"Zyxwv" in value(p.read_bytes())]

    storage = tmp_path / "storage"
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(storage)}):
        state = a_case(case_id, "111-R", return_state=True)
        folder = storage / "cases" / str(case_id)
        assert [p.parent for p in holding(storage)] == [folder]
        assert case_result_files(case_id) == 1
        not_a_case("111-S")  # outside a case's flow a task keeps Prefect's own key
        assert {p.parent for p in holding(storage)} == {folder, storage}

        run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            client.delete_flow_run(run_id)  # the server knows nothing of the run any more
        days = policy_in_force().retention.buyer_data_days
        now = datetime.now(UTC)
        with session_scope(store) as s:
            case = s.get(Case, case_id)
            assert case is not None
            case.state, case.closed_at = "closed", now - timedelta(days=days + 1)
            case.flow_run_id = str(run_id)

        preview = purge_buyer_data_now(store, now, days, dry_run=True)
        assert preview.places["result_files"] == 1 and folder.exists()
        report = purge_buyer_data_now(store, now, days)
        assert report.case_ids == [case_id] and report.places["result_files"] == 1
        assert not folder.exists()
        assert [p.parent for p in holding(storage)] == [storage]  # only the case-less run's


@pytest.mark.e2e
def test_a_result_persisted_before_results_were_filed_by_case_is_still_reused(
    prefect_server: Any, tmp_path: Path
) -> None:
    """A case run waiting across the upgrade to case folders resumes with the results its
    first run persisted at the storage's top level (Prefect's own key): its tasks come back
    Cached from there, not run again, so it takes the path it took."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.states import AwaitingRetry

    from tasks.kinds import store_task

    @store_task("read-once")
    def read_once(order_id: str) -> str:
        return f"read {order_id}"

    @flow(name="a-waiting-case", persist_result=True)
    def a_waiting_case(case_id: int, order_id: str) -> None:
        read_once(order_id)

    storage = tmp_path / "storage"
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(storage)}):
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(a_waiting_case, parameters={"case_id": 7, "order_id": "1"})
        assert run_flow(a_waiting_case, flow_run=run, return_type="state").is_completed()
        (filed,) = (storage / "cases" / "7").iterdir()
        filed.rename(storage / filed.name)  # as an earlier Henpin kept it
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            run = client.read_flow_run(run.id)
        state: Any = run_flow(a_waiting_case, flow_run=run, return_type="state")
        assert state.is_completed()
        assert not any((storage / "cases" / "7").iterdir()), "not run again into the folder"
        assert (storage / filed.name).is_file()
