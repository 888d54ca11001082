"""Buyers' personal data is purged from closed cases after the policy's retention period."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    from tasks.store import store_url

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
    from tasks.cases import open_case
    from tasks.policy import policy_in_force
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
    from henpin.decisions import record_decision
    from henpin.store.models import Action, AuditEntry, Decision, Event, UnreadablePayload
    from tasks.cases import open_case
    from tasks.ingest import flag_unreadable_order
    from tasks.orders import UnreadableOrder
    from tasks.policy import policy_in_force
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
