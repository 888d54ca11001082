"""Nobody in who does not belong: lockout after failed sign-ins, roles, idle sessions that end,
admins managing operators, and the append-only audit log with its CSV export.

Time is injected (`now=`) or the session's last activity is moved back; nothing sleeps.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from henpin import accounts
from henpin.accounts import AccountRefused, AuditAction, SignInStatus
from henpin.app.claims import claim, release
from henpin.app.decide import DecisionCode, decide_as
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Operator
from tests.test_inbox_support import (
    PASSWORD,
    fresh_store,
    on_page,
    opened,
    set_operator,
    signed_in,
    texts,
    waiting_case,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


def audit_actions(url: str) -> list[tuple[str, str]]:
    """The audit log after the store's set-up (alice added by `henpin`, source `setup`)."""
    with session_scope(url) as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.source != "setup").order_by(AuditEntry.id)
        )
        return [(e.actor, e.action) for e in rows]


# --- signing in ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "mallory"])  # an operator, and a name that is none
def test_five_failed_sign_ins_lock_the_name_for_15_minutes(store_url: str, name: str) -> None:
    statuses = [
        accounts.sign_in(store_url, name, "guess", now=T0 + timedelta(seconds=i)).status
        for i in range(5)
    ]
    assert statuses == [SignInStatus.REFUSED] * 4 + [SignInStatus.LOCKED]
    locked = accounts.sign_in(store_url, name, PASSWORD, now=T0 + timedelta(minutes=10))
    assert locked.status is SignInStatus.LOCKED  # the right password does not help meanwhile
    assert locked.retry_at == T0 + timedelta(seconds=4, minutes=15)
    later = accounts.sign_in(store_url, name, PASSWORD, now=T0 + timedelta(minutes=16))
    if name == "alice":
        assert later.status is SignInStatus.SIGNED_IN
        again = accounts.sign_in(store_url, name, "guess", now=T0 + timedelta(minutes=17))
        assert again.status is SignInStatus.REFUSED  # the count starts afresh
    else:
        assert later.status is SignInStatus.REFUSED
    actions = [a for _, a in audit_actions(store_url)]
    assert actions[:6] == ["login-failed"] * 5 + ["login-refused-locked"]


def test_the_sign_in_page_says_when_to_retry(store_url: str) -> None:
    start = datetime.now(UTC) - timedelta(minutes=3)
    for _ in range(5):  # from the inbox's client: AppTest has no address, so "localhost"
        accounts.sign_in(store_url, "alice", "guess", client="localhost", now=start)
    at = signed_in()
    assert not at.exception
    assert "Too many failed sign-ins" in at.error[0].value
    assert "UTC (in 11 min" in at.error[0].value or "UTC (in 12 min" in at.error[0].value


def test_a_deactivated_operator_cannot_sign_in(store_url: str) -> None:
    set_operator(store_url, "alice", active=False)
    assert "deactivated" in signed_in().error[0].value
    assert "do not match" in signed_in(password="wrong").error[0].value  # no hint without it


def test_passwords_are_stored_as_argon2_hashes(store_url: str) -> None:
    password = accounts.create_operator(
        store_url, "carol", role="viewer", by=accounts.Actor.command_line()
    )
    with session_scope(store_url) as s:
        stored = s.scalar(select(Operator.password_hash).where(Operator.name == "carol"))
    assert stored is not None and stored.startswith("$argon2id$") and password not in stored


# --- sessions ----------------------------------------------------------------------------------


def test_an_idle_session_ends_after_the_configured_hours(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENPIN_SESSION_HOURS", "1")
    at = signed_in()
    at.session_state["last_active"] = datetime.now(UTC) - timedelta(minutes=50)
    at.run()
    assert at.button(key="inbox.refresh")  # still signed in: 50 minutes is not idle enough
    at.session_state["last_active"] = datetime.now(UTC) - timedelta(minutes=61)
    at.run()
    assert not at.exception
    assert at.text_input(key="login.password")
    assert "signed out after 1.0 h without activity" in at.info[0].value
    assert ("alice", "session-expired") in audit_actions(store_url)


def test_the_default_idle_limit_is_8_hours() -> None:
    assert accounts.session_lifetime() == timedelta(hours=8)


def test_an_idle_limit_below_3_minutes_is_refused_unless_a_test_lowers_the_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HENPIN_SESSION_HOURS", "0.01")
    assert accounts.session_lifetime() == timedelta(hours=8)  # a typo, not 36 seconds
    monkeypatch.setenv("HENPIN_SESSION_MIN_HOURS", "0.01")  # tests only (tests/test_browser.py)
    assert accounts.session_lifetime() == timedelta(hours=0.01)


def test_a_deactivated_operator_is_signed_out_at_the_next_click(store_url: str) -> None:
    at = signed_in()
    set_operator(store_url, "alice", active=False)
    at.button(key="inbox.refresh").click().run()
    assert at.text_input(key="login.password")
    assert "an admin deactivated" in at.info[0].value


# --- roles ----------------------------------------------------------------------------------------


def test_a_viewer_cannot_decide_claim_or_reach_admin_pages(store_url: str) -> None:
    set_operator(store_url, "alice", role="viewer")
    case_id = waiting_case(store_url, "111-0000000-0000200", timedelta(hours=5))
    refused = decide_as(store_url, case_id, choice="cancel", operator="alice")
    assert refused.code is DecisionCode.NOT_ALLOWED
    assert not claim(store_url, case_id, "alice").ok
    at = signed_in()
    for page in ("screens/bulk.py", "screens/operators.py", "screens/audit.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


def test_a_new_role_applies_at_the_next_click(store_url: str) -> None:
    at = signed_in()
    with pytest.raises(ValueError):
        at.switch_page("screens/operators.py")
    set_operator(store_url, "alice", role="admin")
    at.run()
    assert not on_page(at, "operators").exception
    assert "Operators" in texts(at)


# --- admins manage operators ------------------------------------------------------------------------


def test_an_admin_adds_an_operator_who_then_signs_in(store_url: str) -> None:
    set_operator(store_url, "alice", role="admin")
    at = on_page(signed_in(), "operators")
    at.text_input(key="operators.new.name").input("carol")
    at.selectbox(key="operators.new.role").set_value("viewer")
    at.button(key="operators.new.submit").click().run()
    assert not at.exception
    assert "Operator carol added." in at.success[0].value
    password = at.code[0].value  # shown once
    carol = signed_in("carol", password)
    assert "Signed in as **carol** (viewer)" in carol.sidebar.markdown[0].value
    at.run()
    assert not at.code  # gone at the next click


def test_an_admin_changes_role_deactivates_and_resets_a_password(store_url: str) -> None:
    set_operator(store_url, "alice", role="admin")
    accounts.create_operator(store_url, "dave", role="operator", by="alice", password="dave-pw-1")
    at = on_page(signed_in(), "operators")
    at.selectbox(key="operators.pick").set_value("dave").run()
    at.selectbox(key="operators.role.dave").set_value("viewer")
    at.button(key="operators.set_role").click().run()
    assert "dave is now viewer." in at.success[0].value
    at.button(key="operators.deactivate").click().run()
    assert "dave is deactivated" in at.success[0].value
    at.button(key="operators.reset_password").click().run()
    new_password = at.code[0].value
    assert accounts.sign_in(store_url, "dave", new_password).status is SignInStatus.INACTIVE
    dave = accounts.find_operator(store_url, "dave")
    assert dave is not None and (dave.role, dave.active) == ("viewer", False)
    changes = [a for who, a in audit_actions(store_url) if who == "alice"]
    assert [a for a in changes if a.startswith("operator-")] == [
        "operator-added",
        "operator-role-changed",
        "operator-deactivated",
        "operator-password-reset",
    ]


def test_the_last_admin_cannot_demote_or_deactivate_themselves(store_url: str) -> None:
    set_operator(store_url, "alice", role="admin")
    with pytest.raises(AccountRefused) as refused:
        accounts.set_role(store_url, "alice", "operator", by="alice")
    assert refused.value.code == "last-admin"
    with pytest.raises(AccountRefused) as refused:
        accounts.set_active(store_url, "alice", False, by="alice")
    assert refused.value.code == "self"
    at = on_page(signed_in(), "operators")
    at.selectbox(key="operators.role.alice").set_value("viewer")
    at.button(key="operators.set_role").click().run()
    assert "last active admin" in at.error[0].value
    with pytest.raises(AccountRefused):
        accounts.create_operator(store_url, "alice", role="viewer", by="alice")


# --- the audit log ------------------------------------------------------------------------------


def test_the_audit_log_records_who_did_what_from_where(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000210", timedelta(hours=5))
    signed_in(password="wrong")
    at = opened(signed_in(), case_id)
    at.button(key=f"claim.{case_id}").click().run()
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    at.button(key="session.sign_out").click().run()
    release(store_url, case_id, "alice", where="cli")
    assert audit_actions(store_url) == [
        ("alice", "login-failed"),
        ("alice", "login"),
        ("alice", "claim"),
        ("alice", "decision"),
        ("alice", "logout"),
        ("alice", "release"),
    ]
    with session_scope(store_url) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "decision")).one()
        assert entry.target == f"case {case_id}"
        assert entry.source == "inbox localhost"  # AppTest has no client address
        assert entry.detail == {
            "choice": "cancel",
            "result": "recorded",
            "step": "operator-decision",
        }


def test_admins_read_filter_and_export_the_audit_log(store_url: str) -> None:
    set_operator(store_url, "alice", role="admin")
    accounts.audit(store_url, "=cmd|' /C calc'!A0", AuditAction.LOGIN_FAILED, where="inbox x")
    at = on_page(signed_in(), "audit")
    assert not at.exception
    table = at.dataframe[0].value.to_string()
    assert "login-failed" in table and "login" in table
    at.selectbox(key="audit.action").set_value("login").run()
    assert "login-failed" not in at.dataframe[0].value.to_string()
    assert at.get("download_button")
    lines = accounts.audit_lines(store_url)
    rows = list(csv.reader(io.StringIO(accounts.audit_csv(lines))))
    assert rows[0] == ["at", "actor", "action", "target", "source", "detail"]
    # rows[-1] is alice's addition when the store was set up
    assert rows[-2][1:3] == ["'=cmd|' /C calc'!A0", "login-failed"]  # inert in a spreadsheet
