"""Sessions that no longer hold do nothing: a button clicked in a stale, deactivated or demoted
session changes nothing (Streamlit runs callbacks before the page's checks), sign-out and every
other end of a session clear all of its state, a password reset ends the operator's other
sessions, and a session ends a fixed time after its sign-in however active it is.

Driven through Streamlit's AppTest against a real SQLite case store; nothing sleeps (the
session's times are moved back instead).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from henpin import accounts
from henpin.accounts import SignInStatus
from henpin.settings import load_settings
from henpin.store.db import session_scope
from henpin.store.models import Decision
from tests.test_inbox_support import (
    fresh_store,
    on_page,
    opened,
    set_operator,
    signed_in,
    waiting_case,
)

DAVE_PASSWORD = "dave-password-1"
# What a session holds right after `start()` (plus the language picker's own widget).
FRESH = {"store_url", "operator", "last_active", "lang", "sent", "notice"}


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_store(tmp_path, monkeypatch)
    monkeypatch.delenv("HENPIN_SESSION_MAX_HOURS", raising=False)
    set_operator(url, "alice", role="admin")
    accounts.create_operator(url, "dave", role="operator", by="alice", password=DAVE_PASSWORD)
    return url


def operators_page(*, pick: str = "dave") -> AppTest:
    at = on_page(signed_in(), "operators")
    return at.selectbox(key="operators.pick").set_value(pick).run()


def on_sign_in_page(at: AppTest) -> bool:
    keys = {w.key for w in [*at.text_input, *at.button]}
    return "login.password" in keys and "session.sign_out" not in keys


def user_state(at: AppTest) -> set[str]:
    """The session's own keys, without widgets' values (which the page recreates)."""
    return {k for k in at.session_state if "." not in k}


def dave_signs_in_with(password: str) -> bool:
    url = load_settings().store_url
    return accounts.sign_in(url, "dave", password).status is SignInStatus.SIGNED_IN


# --- buttons of a session that no longer holds ---------------------------------------------------


def test_a_deactivated_admin_cannot_add_an_admin(store_url: str) -> None:
    at = on_page(signed_in(), "operators")
    at.text_input(key="operators.new.name").input("mallory")
    at.selectbox(key="operators.new.role").set_value("admin")
    set_operator(store_url, "alice", active=False)  # another admin deactivates alice meanwhile
    at.button(key="operators.new.submit").click().run()
    assert not at.exception
    assert accounts.find_operator(store_url, "mallory") is None
    assert on_sign_in_page(at)
    assert "an admin deactivated" in at.info[0].value


def test_a_session_idle_for_9_hours_cannot_reset_a_password(store_url: str) -> None:
    at = operators_page()
    at.session_state["last_active"] = datetime.now(UTC) - timedelta(hours=9)
    at.button(key="operators.reset_password").click().run()
    assert not at.exception
    assert dave_signs_in_with(DAVE_PASSWORD)  # unchanged
    assert on_sign_in_page(at)
    assert "without activity" in at.info[0].value
    assert not at.code  # no new password shown anywhere
    assert "operators.flash" not in at.session_state


def test_a_demoted_admin_cannot_change_a_role(store_url: str) -> None:
    accounts.create_operator(store_url, "bob", role="admin", by="alice", password="bob-pw-12345")
    at = operators_page()
    at.selectbox(key="operators.role.dave").set_value("admin")
    accounts.set_role(store_url, "alice", "operator", by="bob")
    at.button(key="operators.set_role").click().run()
    assert not at.exception
    dave = accounts.find_operator(store_url, "dave")
    assert dave is not None and dave.role == "operator"
    assert "Operators" not in [t.value for t in at.title]  # the admin page is gone for alice


def test_a_session_idle_too_long_cannot_decide(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000300", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.button(key=f"claim.{case_id}").click().run()
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.session_state["last_active"] = datetime.now(UTC) - timedelta(hours=9)
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    with session_scope(store_url) as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 0
    assert on_sign_in_page(at)


# --- ending a session ------------------------------------------------------------------------------


def test_sign_out_clears_all_session_state(store_url: str) -> None:
    at = operators_page()
    at.button(key="operators.reset_password").click().run()
    new_password = at.code[0].value
    at.session_state["operators.flash"] = ("success", "again", new_password)  # not yet shown
    at.session_state["bulk.preview"] = {"cases": [1, 2]}
    at.session_state["lang"] = "ja"
    at.button(key="session.sign_out").click().run()
    assert not at.exception
    assert on_sign_in_page(at)
    assert user_state(at) <= FRESH
    assert new_password not in repr(at.session_state.to_dict())
    assert at.session_state["operator"] is None
    assert at.session_state["lang"] == "ja"  # the language is not the operator's secret


def test_a_password_reset_ends_the_operators_other_sessions(store_url: str) -> None:
    dave = signed_in("dave", DAVE_PASSWORD)
    assert not on_sign_in_page(dave)
    admin = operators_page()
    admin.button(key="operators.reset_password").click().run()
    new_password = admin.code[0].value
    dave.button(key="inbox.refresh").click().run()
    assert on_sign_in_page(dave)
    assert "password was reset" in dave.info[0].value
    assert not on_sign_in_page(signed_in("dave", new_password))


def test_an_admin_resetting_their_own_password_keeps_this_session_only(store_url: str) -> None:
    other_tab = signed_in()
    at = operators_page(pick="alice")
    at.button(key="operators.reset_password").click().run()
    assert at.code  # the new password, shown once
    at.run()
    assert not on_sign_in_page(at)
    other_tab.run()
    assert on_sign_in_page(other_tab)


# --- how long a session lasts ------------------------------------------------------------------------


def test_a_session_ends_12_hours_after_sign_in_however_active(store_url: str) -> None:
    assert load_settings().session_max_hours == 12
    at = signed_in()
    at.session_state["operator"] = replace(
        at.session_state["operator"], signed_in_at=datetime.now(UTC) - timedelta(hours=11)
    )
    at.run()
    assert not on_sign_in_page(at)  # active all along, 11 h in: still signed in
    at.session_state["operator"] = replace(
        at.session_state["operator"],
        signed_in_at=datetime.now(UTC) - timedelta(hours=12, minutes=1),
    )
    at.run()
    assert on_sign_in_page(at)
    assert "at most 12.0 h after sign-in" in at.info[0].value


def test_the_absolute_lifetime_is_a_setting(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENPIN_SESSION_MAX_HOURS", "2")
    at = signed_in()
    at.session_state["operator"] = replace(
        at.session_state["operator"], signed_in_at=datetime.now(UTC) - timedelta(hours=2, minutes=1)
    )
    at.run()
    assert on_sign_in_page(at)
    assert "at most 2.0 h" in at.info[0].value


def test_sign_in_failures_count_against_the_browsers_address() -> None:
    from ui.session import client_of

    # A direct connection: its own address, whatever header it sends.
    assert client_of("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    # From this machine (the reverse proxy): the address the proxy appended last, not the ones a
    # client wrote itself.
    assert client_of(None, "198.51.100.1, 203.0.113.9") == "proxied 203.0.113.9"
    assert client_of(None, None) == "localhost"
