"""The inbox's decision form refuses an amount with more decimals than the currency allows, with
the message naming the field and the rule; nothing is recorded (issue 10, exact amounts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from henpin.store.db import session_scope
from henpin.store.models import Decision
from tests.test_inbox_support import address_error_case, fresh_store, opened, signed_in


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


def test_an_amount_with_an_extra_decimal_is_refused_not_rounded(store_url: str) -> None:
    case_id = address_error_case(store_url, "302-0000000-0000033")  # EUR
    at = opened(signed_in(), case_id)
    at.radio(key=f"decide.{case_id}.choice").set_value("partial_refund")
    at.text_input(key=f"decide.{case_id}.field.refund_amount").input("12.345")
    at.text_area(key=f"decide.{case_id}.note").input("Agreed by e-mail")
    at.button(key=f"decide.{case_id}.submit").click().run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error).replace("\\_", "_")  # markdown-escaped
    assert (
        "'Refund amount' (refund_amount): 12.345 EUR has more decimals than EUR allows (2);"
        " it is refused, not rounded." in shown
    )
    with session_scope(store_url) as s:
        assert not s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
