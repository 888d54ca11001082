"""Notifications: each kind is told once (a second round and a restart tell nothing), waiting
cases come grouped in one digest, messages reach a real SMTP mail catcher through Apprise, and
each finding is a Prefect event on a real Prefect server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from henpin.domain import CaseType, FulfillmentStatus, Order
from henpin.mailcatcher import CaughtMail, MailCatcher
from henpin.store.db import migrate, session_scope
from henpin.store.models import Case, Decision, Feed, Notification
from tests.support import reset_process_caches

REPO = Path(__file__).resolve().parent.parent
BUYER = "Hanako Test"
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def catcher() -> Iterator[MailCatcher]:
    with MailCatcher(port=0) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catcher: MailCatcher) -> Iterator[str]:
    """A case store and settings as the housekeeper has them: demo mode (no Amazon login), the
    mail catcher as Henpin's SMTP server, no HENPIN_NOTIFY_URLS (so the demo default applies)."""
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    monkeypatch.setenv("HENPIN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HENPIN_SMTP_PORT", str(catcher.port))
    monkeypatch.setenv("HENPIN_NOTIFY_DEMO_CATCHER", "true")
    monkeypatch.setenv("HENPIN_INBOX_URL", "http://127.0.0.1:8501")
    monkeypatch.delenv("HENPIN_NOTIFY_URLS", raising=False)
    reset_process_caches()
    from henpin.context import store_url

    url = store_url()
    migrate(url)
    yield url
    reset_process_caches()


def a_case(url: str, order_id: str, **fields: Any) -> int:
    """A case whose order names a buyer (which no notification may repeat)."""
    from tasks.cases import open_case

    order = Order(
        order_id=order_id,
        marketplace_id="A1VC38T7YXB528",
        created_time=NOW,
        last_updated_time=NOW,
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
        buyer_name=BUYER,
        buyer_email="hanako-test@marketplace.amazon.co.jp",
    )
    case_id, _ = open_case(CaseType.CANCEL_REQUEST, order, url=url)
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        for name, value in fields.items():
            setattr(case, name, value)
    return case_id


def waiting(url: str, order_id: str, hours_left: float) -> int:
    return a_case(
        url,
        order_id,
        state="waiting",
        waiting_step="decide",
        choices=["cancel", "keep_order"],
        deadline=NOW + timedelta(hours=hours_left),
    )


def by_subject(mails: list[CaughtMail]) -> dict[str, CaughtMail]:
    return {m.subject: m for m in mails}


@pytest.mark.e2e
def test_each_kind_is_told_once_and_waiting_cases_come_in_one_digest(
    store: str, catcher: MailCatcher, prefect_server: Any
) -> None:
    from tasks.notifications import send_notifications

    first = [waiting(store, f"503-0000000-000000{i}", hours_left=48) for i in range(3)]
    soon = waiting(store, "503-0000000-0000010", hours_left=2)
    late = a_case(store, "503-0000000-0000011", state="acting")
    flagged = a_case(store, "503-0000000-0000012", needs_attention="Amazon rejected the cancel")
    with session_scope(store) as s:
        s.add(
            Decision(
                case_id=late,
                step="decide",
                choice="cancel",
                operator="deadline",
                source="deadline",
                at=NOW - timedelta(minutes=5),
            )
        )
        feed = Feed(
            feed_type="POST_ORDER_ACKNOWLEDGEMENT_DATA",
            marketplace_id="A1VC38T7YXB528",
            status="attention",
        )
        s.add(feed)
        s.flush()
        feed_id = feed.id

    send_notifications.fn(now=NOW)
    mails = by_subject(catcher.messages)
    assert sorted(mails) == [
        "Henpin: 1 case(s) due soon",
        "Henpin: 1 case(s) need attention",
        "Henpin: 1 case(s) went past their deadline without an answer",
        "Henpin: 1 feed(s) to Amazon stalled",
        "Henpin: 4 new case(s) wait for an operator",
    ]
    digest = mails["Henpin: 4 new case(s) wait for an operator"].body
    for case_id in [*first, soon]:
        assert f"case {case_id} " in digest
        assert f"http://127.0.0.1:8501/case?case={case_id}" in digest
    assert f"case {soon} " in mails["Henpin: 1 case(s) due soon"].body
    assert (
        f"case {late} "
        in mails["Henpin: 1 case(s) went past their deadline without an answer"].body
    )
    assert f"case {flagged} " in mails["Henpin: 1 case(s) need attention"].body
    assert f"feed {feed_id} " in mails["Henpin: 1 feed(s) to Amazon stalled"].body
    for mail in catcher.messages:
        assert mail.rcpt_tos == ("operators@henpin.localhost",)  # the demo's catcher target
        assert BUYER not in mail.body and "hanako" not in mail.body.lower()
        assert "rejected the cancel" not in mail.body  # reasons may quote the order: not told

    # Nothing is told twice: not in the next round, not after a restart (state in the store).
    send_notifications.fn(now=NOW + timedelta(seconds=5))
    reset_process_caches()
    send_notifications.fn(now=NOW + timedelta(seconds=10))
    assert len(catcher.messages) == 5

    # New waiting cases wait for the next digest, then come together in one message.
    later = [waiting(store, f"503-0000000-000002{i}", hours_left=48) for i in range(2)]
    send_notifications.fn(now=NOW + timedelta(minutes=5))
    assert len(catcher.messages) == 5  # the digest comes every 15 minutes (policies.yaml)
    send_notifications.fn(now=NOW + timedelta(minutes=16))
    [digest_mail] = catcher.messages[5:]
    assert digest_mail.subject == "Henpin: 2 new case(s) wait for an operator"
    assert all(f"case {case_id} " in digest_mail.body for case_id in later)
    assert not any(f"case {case_id} " in digest_mail.body for case_id in first)
    send_notifications.fn(now=NOW + timedelta(minutes=40))
    assert len(catcher.messages) == 6

    with session_scope(store) as s:
        statuses = {(n.kind, n.status) for n in s.query(Notification)}
    assert ("digest", "sent") in statuses and ("waiting", "grouped") in statuses
    assert {k for k, status in statuses if status == "sent"} >= {
        "due-soon",
        "overdue",
        "needs-attention",
        "feed-stalled",
    }


@pytest.mark.e2e
def test_targets_come_from_the_settings_by_name(
    store: str,
    catcher: MailCatcher,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prefect_server: Any,
) -> None:
    """Each rule goes to the URLs carrying its target names; a URL named otherwise gets
    nothing; the URLs never appear in the record or the logs."""
    mailto = f"mailto://127.0.0.1:{catcher.port}?from=henpin@localhost&format=text"
    urls = [f"operators={mailto}&to=ops@example.com", f"owner={mailto}&to=owner@example.com"]
    monkeypatch.setenv("HENPIN_NOTIFY_URLS", json.dumps(urls))
    policy = (
        (REPO / "policies.yaml")
        .read_text()
        .replace("  overdue:\n    to: [operators]", "  overdue:\n    to: [owner]")
    )
    (tmp_path / "policies.yaml").write_text(policy)
    monkeypatch.setenv("HENPIN_POLICIES", str(tmp_path / "policies.yaml"))
    reset_process_caches()
    from tasks.notifications import send_notifications

    a_case(store, "503-0000000-0000031", state="waiting", waiting_step="decide", deadline=NOW)
    send_notifications.fn(now=NOW + timedelta(minutes=1))
    mails = by_subject(catcher.messages)
    assert mails["Henpin: 1 case(s) went past their deadline without an answer"].rcpt_tos == (
        "owner@example.com",
    )
    assert mails["Henpin: 1 new case(s) wait for an operator"].rcpt_tos == ("ops@example.com",)
    with session_scope(store) as s:
        record = repr([n.detail for n in s.query(Notification)])
    assert "mailto" not in record and "#2 sent" in record


@pytest.mark.e2e
def test_an_entry_without_target_names_is_refused_without_showing_it(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from henpin.notify import NotifyConfigError, configured_targets
    from henpin.outbox.mail import MailSettings
    from henpin.settings import load_settings

    monkeypatch.setenv("HENPIN_NOTIFY_URLS", '["slack://TokenA/TokenB/TokenC/#returns"]')
    with pytest.raises(NotifyConfigError) as refused:
        configured_targets(load_settings(), MailSettings(), {"operators"})
    assert "entry 1" in str(refused.value) and "Token" not in str(refused.value)


def test_a_bad_target_name_in_the_policy_names_its_line_and_key(tmp_path: Path) -> None:
    from henpin.policy import PolicyError, load_policy

    bad = (
        (REPO / "policies.yaml")
        .read_text()
        .replace(
            "  needs_attention:\n    to: [operators]", "  needs_attention:\n    to: [ops team]"
        )
    )
    (tmp_path / "policies.yaml").write_text(bad)
    with pytest.raises(PolicyError) as refused:
        load_policy(tmp_path / "policies.yaml")
    assert "notifications.needs_attention.to[0]" in str(refused.value)
    assert "not a target name" in str(refused.value)


def henpin_events(api: str, since: datetime) -> list[dict[str, Any]]:
    page = httpx.post(
        f"{api}/events/filter",
        json={
            "filter": {"event": {"prefix": ["henpin."]}, "occurred": {"since": since.isoformat()}},
            "limit": 50,
        },
        timeout=10,
    )
    page.raise_for_status()
    return list(page.json()["events"])


@pytest.mark.e2e
def test_each_finding_is_a_prefect_event_once(
    store: str, catcher: MailCatcher, prefect_server: Any
) -> None:
    from henpin.notify import emit_henpin_event
    from tasks.notifications import send_notifications

    started = datetime.now(UTC) - timedelta(minutes=1)
    now = datetime.now(UTC)
    waiting_id = a_case(
        store,
        "503-0000000-0000041",
        state="waiting",
        waiting_step="decide",
        deadline=now + timedelta(hours=1),
    )
    send_notifications.fn(now=now)
    send_notifications.fn(now=now)  # nothing new: no event either
    # A last event after both rounds: once it is stored, so is everything emitted before it.
    marker = {"order_id": "503-0000000-0000041"}
    resource = {"prefect.resource.id": "henpin.test.marker"}
    emit_henpin_event("henpin.test.marker", resource, marker, event_id=uuid4())

    def ours() -> list[dict[str, Any]]:
        found = henpin_events(prefect_server.api, started)
        return [e for e in found if e["payload"].get("order_id") == marker["order_id"]]

    deadline = time.monotonic() + 60
    while "henpin.test.marker" not in {e["event"] for e in ours()}:
        assert time.monotonic() < deadline, "Prefect's server stored no event within a minute"
        time.sleep(0.5)
    events = [e for e in ours() if e["event"] != "henpin.test.marker"]
    assert sorted(e["event"] for e in events) == ["henpin.case.due-soon", "henpin.case.waiting"]
    with session_scope(store) as s:
        kept = {n.detail["event_id"] for n in s.query(Notification) if n.kind != "digest"}
    assert {e["id"] for e in events} == kept  # each record names its event
    for event in events:
        assert event["resource"]["prefect.resource.id"] == f"henpin.case.{waiting_id}"
        assert event["resource"]["henpin.case-type"] == "cancel-request"
        assert event["payload"]["order_id"] == "503-0000000-0000041"
        assert BUYER not in json.dumps(event)


def docs_automation() -> dict[str, Any]:
    """The automation docs/notifications.md shows, as its YAML block says it."""
    import yaml

    text = (REPO / "docs" / "notifications.md").read_text()
    block = text.split("```yaml\nname: henpin-many-overdue", 1)[1].split("```", 1)[0]
    data = yaml.safe_load("name: henpin-many-overdue" + block)
    assert isinstance(data, dict)
    return data


@pytest.mark.e2e
def test_the_documented_automation_acts_on_henpins_overdue_event(prefect_server: Any) -> None:
    """The docs' automation is one the Prefect server accepts, triggered by Henpin's event."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    automation = AutomationCore.model_validate(docs_automation())
    assert isinstance(automation.trigger, EventTrigger)
    assert automation.trigger.expect == {"henpin.case.overdue"}
    assert automation.trigger.threshold == 5
    with get_client(sync_client=True) as client:
        created = client.create_automation(automation)
        try:
            stored = client.read_automation(created)
            assert stored is not None and stored.trigger == automation.trigger
        finally:
            client.delete_automation(created)
