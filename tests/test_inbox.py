"""The Streamlit inbox, driven as an operator would: sign in, read the inbox, open a case, decide.

Real parts: the inbox's own scripts under AppTest, a real SQLite case store under tmp_path, the
real service functions. Cases are put in the store directly, as a flow would leave them waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from henpin.service import add_operator, decide
from henpin.settings import load_settings
from henpin.store.db import migrate, session_scope
from henpin.store.models import Case, Decision, Operator

APP = Path(__file__).parents[1] / "ui" / "inbox.py"
PASSWORD = "correct horse battery"
CHOICES = ["cancel", "keep_order", "escalate"]
TIMEOUT = 20  # first runs import Prefect through henpin.service


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh case store with one operator, as `henpin up` leaves it."""
    monkeypatch.chdir(tmp_path)  # no developer's .env leaks in
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HENPIN_DATABASE_URL", raising=False)
    monkeypatch.delenv("HENPIN_PREFECT_UI_URL", raising=False)
    url = load_settings().store_url
    migrate(url)
    add_operator(url, "alice", PASSWORD)
    return url


def waiting_case(url: str, order_id: str, due_in: timedelta, **fields: Any) -> int:
    """A cancel request waiting for an operator, as the cancel-request flow leaves it."""
    order = {
        "order_id": order_id,
        "marketplace_id": "ATVPDKIKX0DER",
        "fulfillment_status": "UNSHIPPED",
        "created_time": "2026-03-02T08:15:00Z",
        "buyer_cancel_reason": "Found it cheaper elsewhere",
        "value": {"amount": "249.90", "currency": "USD"},
        "items": [
            {
                "sku": "KETTLE-JP-01",
                "title": "Cast iron kettle",
                "quantity": 1,
                "unit_price": {"amount": "249.90", "currency": "USD"},
                "buyer_cancel_reason": "Found it cheaper elsewhere",
            }
        ],
    }
    waiting: dict[str, Any] = {
        "type": "cancel-request",
        "order_id": order_id,
        "marketplace_id": "ATVPDKIKX0DER",
        "state": "waiting",
        "waiting_step": "operator-decision",
        "choices": CHOICES,
        "deadline": datetime.now(UTC) + due_in,
        "timeout_choice": "escalate",
        "recommendation": {
            "action": "keep_order",
            "rule": "high-value-needs-operator",
            "reason": "Order value 249.90 USD is above the 100.00 USD automatic limit.",
        },
        "order_snapshot": order,
        "flow_run_id": None,
    }
    case = Case(**{**waiting, **fields})
    with session_scope(url) as s:
        s.add(case)
        s.flush()
        return case.id


def signed_in(password: str = PASSWORD) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.text_input(key="login.name").input("alice")
    at.text_input(key="login.password").input(password)
    return at.button(key="login.submit").click().run()


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in [*at.markdown, *at.caption, *at.title, *at.subheader])


def opened(at: AppTest, case_id: int) -> AppTest:
    return at.button(key=f"inbox.open.{case_id}").click().run()


def test_signed_out_sees_only_the_sign_in_form(store_url: str) -> None:
    waiting_case(store_url, "111-0000000-0000001", timedelta(hours=3))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [w.key for w in at.text_input] == ["login.name", "login.password"]
    assert "111-0000000-0000001" not in texts(at)
    assert not [b for b in at.button if (b.key or "").startswith("inbox.open.")]


def test_case_page_link_without_sign_in_shows_the_sign_in_form(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000002", timedelta(hours=3))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["case"] = str(case_id)
    at.run()
    assert not at.exception
    assert "111-0000000-0000002" not in texts(at)
    assert at.text_input(key="login.password")


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(store_url: str) -> None:
    at = signed_in(password="wrong")
    assert not at.exception
    assert len(at.error) == 1
    assert "do not match" in at.error[0].value
    assert at.text_input(key="login.password")  # still on the sign-in page


def test_inbox_lists_waiting_cases_soonest_deadline_first(store_url: str) -> None:
    later = waiting_case(store_url, "111-0000000-0000010", timedelta(days=2))
    overdue = waiting_case(store_url, "111-0000000-0000011", timedelta(minutes=-30))
    soon = waiting_case(
        store_url, "111-0000000-0000012", timedelta(hours=1), needs_attention="payload odd"
    )
    at = signed_in()
    assert not at.exception
    opens = [b.key for b in at.button if (b.key or "").startswith("inbox.open.")]
    assert opens == [f"inbox.open.{overdue}", f"inbox.open.{soon}", f"inbox.open.{later}"]
    shown = texts(at)
    assert "Signed in as **alice**" in "\n".join(m.value for m in at.sidebar.markdown)
    assert ":red[**overdue by 30 min**]" in shown or ":red[**overdue by 29 min**]" in shown
    assert "Needs attention" in shown
    assert "Keep the order and ship it" in shown  # the recommendation, in plain words
    assert "high-value-needs-operator" in shown


def test_recently_closed_cases_show_their_outcome(store_url: str) -> None:
    waiting_case(
        store_url, "111-0000000-0000020", timedelta(hours=1), state="closed", outcome="kept-order"
    )
    at = signed_in()
    assert "111-0000000-0000020" not in texts(at)
    at.toggle(key="inbox.show_closed").set_value(True).run()
    assert not at.exception
    assert "111-0000000-0000020" in texts(at)
    assert "Outcome: **Kept the order**" in texts(at)


def test_case_page_shows_order_reason_recommendation_and_rule(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000030", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    assert not at.exception
    shown = texts(at)
    assert "Cancel request · 111-0000000-0000030" in shown
    assert "UNSHIPPED" in shown
    assert "249.90 USD" in shown
    assert "> Found it cheaper elsewhere" in shown
    assert "**Keep the order and ship it**" in shown
    assert "high-value-needs-operator" in shown
    assert "above the 100.00 USD automatic limit" in shown
    assert "Cast iron kettle" in at.dataframe[0].value.to_string()
    assert at.radio(key=f"decide.{case_id}.choice").options == [
        "Cancel the order (reason: BuyerCanceled)",
        "Keep the order and ship it (recommended)",
        "Escalate to the owner",
    ]
    links = [b.proto.url for b in at.get("link_button")]
    assert "https://sellercentral.amazon.com/orders-v3/order/111-0000000-0000030" in links


def test_decision_is_recorded_with_the_operators_name(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000040", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.text_area(key=f"decide.{case_id}.note").input("Buyer asked twice")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert len(at.success) == 1
    assert "recorded for case" in at.success[0].value
    assert not at.radio  # the form is gone: no second submit
    with session_scope(store_url) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
        assert [(d.choice, d.operator, d.source, d.note) for d in rows] == [
            ("cancel", "alice", "inbox", "Buyer asked twice")
        ]


def test_submit_without_a_choice_asks_again(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000050", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "Choose what should happen" in at.error[0].value
    assert at.radio(key=f"decide.{case_id}.choice")  # the form is still there


def test_decision_on_a_case_someone_else_decided_says_who(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000060", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    # Bob decides from the command line while Alice has the form open.
    decide(store_url, case_id, choice="keep_order", operator="bob", source="cli")
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "already decided by bob" in at.warning[0].value
    with session_scope(store_url) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
        assert [(d.choice, d.operator) for d in rows] == [("keep_order", "bob")]
    # Opened afresh, the page says so instead of offering the form.
    at = opened(signed_in(), case_id)
    assert not at.exception
    assert "Already decided by bob" in at.info[0].value
    assert not at.radio


def test_decision_on_a_case_no_longer_waiting_is_refused_in_words(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000070", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.outcome = "closed", "order-changed"
    at.radio(key=f"decide.{case_id}.choice").set_value("cancel")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    assert "is not waiting for a decision" in at.error[0].value


def test_sign_out_returns_to_the_sign_in_form(store_url: str) -> None:
    at = signed_in()
    at.button(key="session.sign_out").click().run()
    assert not at.exception
    assert at.text_input(key="login.password")
    assert not [b for b in at.button if (b.key or "").startswith("inbox.open.")]


def test_viewer_reads_the_case_but_gets_no_decision_form(store_url: str) -> None:
    add_operator(store_url, "alice", PASSWORD, role="viewer")
    case_id = waiting_case(store_url, "111-0000000-0000080", timedelta(hours=5))
    at = opened(signed_in(), case_id)
    assert not at.exception
    assert "111-0000000-0000080" in texts(at)
    assert not at.radio
    assert "can read cases but not decide" in texts(at)


def test_case_page_links_to_the_flow_run_when_the_prefect_ui_is_known(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HENPIN_PREFECT_UI_URL", "http://127.0.0.1:4200/")
    run_id = "0b7c5d3e-1111-4222-8333-944455556666"
    case_id = waiting_case(store_url, "111-0000000-0000090", timedelta(hours=5), flow_run_id=run_id)
    at = opened(signed_in(), case_id)
    links = [b.proto.url for b in at.get("link_button")]
    assert f"http://127.0.0.1:4200/runs/flow-run/{run_id}" in links


def test_an_operator_who_reads_japanese_gets_the_inbox_in_japanese(store_url: str) -> None:
    with session_scope(store_url) as s:
        alice = s.scalar(select(Operator).where(Operator.name == "alice"))
        assert alice is not None
        alice.language = "ja"
    case_id = waiting_case(store_url, "111-0000000-0000100", timedelta(hours=5))
    at = signed_in()
    assert not at.exception
    assert "判断待ち（1 件）" in texts(at)
    at = opened(at, case_id)
    assert "注文を維持して出荷する" in texts(at)
    assert at.radio(key=f"decide.{case_id}.choice").options[0] == (
        "注文をキャンセルする（理由: BuyerCanceled）"
    )
    at.sidebar.selectbox[0].set_value("en").run()  # switch back for this session
    assert not at.exception
    assert "Keep the order and ship it" in texts(at)
