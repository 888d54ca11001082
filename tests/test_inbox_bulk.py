"""Bulk decisions: select several waiting cases of one type, preview, confirm, read the summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from henpin.accounts import add_operator
from henpin.app.claims import claim
from henpin.app.decide import DecisionCode, decide, decide_bulk, preview_bulk
from henpin.store.db import session_scope
from henpin.store.models import Decision
from tests.test_inbox_support import (
    address_error_case,
    fresh_store,
    on_page,
    signed_in,
    texts,
    waiting_case,
)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


def decided(url: str) -> dict[int, tuple[str, str]]:
    with session_scope(url) as s:
        return {d.case_id: (d.choice, d.operator) for d in s.scalars(select(Decision))}


def test_preview_then_confirm_then_a_summary_per_case(store_url: str) -> None:
    a = waiting_case(store_url, "111-0000000-0000301", timedelta(hours=1))
    b = waiting_case(store_url, "111-0000000-0000302", timedelta(hours=2))
    c = waiting_case(store_url, "111-0000000-0000303", timedelta(hours=3))
    address_error_case(store_url, "302-0000000-0000304")  # another type: not offered
    add_operator(store_url, "bob", "pw-bob-123456")
    claim(store_url, c, "bob")

    at = on_page(signed_in(), "bulk")
    at.selectbox(key="bulk.type").set_value("cancel-request").run()
    assert at.multiselect(key="bulk.cases").options[0].startswith(f"#{a} · 111-0000000-0000301")
    at.button(key="bulk.select_all").click().run()
    at.radio(key="bulk.choice").set_value("cancel")
    at.button(key="bulk.preview_button").click().run()
    assert not at.exception
    preview = at.dataframe[0].value.to_string()
    assert "$249.90" in preview  # the money each case is about (as amazon.com writes it)
    assert "not what policy recommends" in preview
    assert "bob is working on it" in preview
    assert "**2** of 3 cases will be decided." in texts(at)
    assert decided(store_url) == {}  # nothing decided before the confirmation

    decide(store_url, b, choice="keep_order", operator="bob", source="cli")  # meanwhile
    at.button(key="bulk.confirm").click().run()
    assert not at.exception
    assert "1 of 3 cases decided; 2 not." in at.warning[0].value
    summary = at.dataframe[0].value.to_string()
    assert "already decided by bob" in summary
    assert "Not sent: bob is working on case" in summary
    assert decided(store_url) == {a: ("cancel", "alice"), b: ("keep_order", "bob")}
    at.button(key="bulk.again").click().run()
    assert at.radio(key="bulk.choice").value is None  # a fresh start


def test_cases_others_claimed_are_decided_only_when_confirmed(store_url: str) -> None:
    a = waiting_case(store_url, "111-0000000-0000311", timedelta(hours=1))
    add_operator(store_url, "bob", "pw-bob-123456")
    claim(store_url, a, "bob")
    at = on_page(signed_in(), "bulk")
    at.multiselect(key="bulk.cases").select(a)
    at.radio(key="bulk.choice").set_value("escalate")
    at.button(key="bulk.preview_button").click().run()
    at.checkbox(key="bulk.over_claims").check().run()
    at.button(key="bulk.confirm").click().run()
    assert "1 of 1 cases decided; 0 not." in at.success[0].value
    assert decided(store_url) == {a: ("escalate", "alice")}


def test_the_preview_names_what_each_case_cannot_take(store_url: str) -> None:
    ok = waiting_case(store_url, "111-0000000-0000321", timedelta(hours=1))
    closed = waiting_case(store_url, "111-0000000-0000322", timedelta(hours=1), state="closed")
    other = address_error_case(store_url, "302-0000000-0000323")
    strict = waiting_case(
        store_url,
        "111-0000000-0000324",
        timedelta(hours=1),
        question={
            "step": "operator-decision",
            "title": "t",
            "choices": ["cancel", "keep_order"],
            "note_required_for": ["cancel"],
            "deadline_hours": 1,
            "timeout_choice": "keep_order",
        },
        choices=["cancel", "keep_order"],
    )
    lines = preview_bulk(
        store_url,
        [ok, closed, other, strict],
        case_type="cancel-request",
        choice="cancel",
        note="",
        operator="alice",
    )
    assert [line.problem for line in lines] == [
        None,
        DecisionCode.NOT_WAITING,
        DecisionCode.WRONG_TYPE,
        DecisionCode.INVALID_ANSWER,
    ]
    assert "needs a reason" in lines[3].detail
    outcomes = decide_bulk(store_url, lines, choice="cancel", note="", operator="alice")
    assert [o.code for o in outcomes] == [DecisionCode.RECORDED, *(x.problem for x in lines[1:])]
    assert decided(store_url) == {ok: ("cancel", "alice")}
