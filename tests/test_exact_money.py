"""Exact amounts (issue 10): an amount with more decimals than its currency allows is refused,
never rounded, at every edge (CLI, the service's decide used by the inbox, a Prefect UI resume,
policies.yaml), the feed writer never writes one, and the emulator refuses one as Amazon does."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from henpin.domain import AdjustmentReason, PriceComponent, Refund, RefundComponent, RefundItem
from henpin.questions import AnswerField, Question
from tests.support import reset_process_caches

REPO = Path(__file__).resolve().parent.parent

BAD = [
    ("0.019", "USD", "0.019 USD has more decimals than USD allows (2)"),
    ("12.345", "USD", "12.345 USD has more decimals than USD allows (2)"),
    ("1500.5", "JPY", "1500.5 JPY has more decimals than JPY allows (0)"),
]


def refund_question(currency: str) -> Question:
    return Question(
        step="operator-decision",
        title="Refund?",
        choices=["refund_other_amount", "escalate"],
        fields=[
            AnswerField(
                name="amount",
                kind="money",
                label="Refund amount",
                required_for=["refund_other_amount"],
                minimum=Decimal("0.01") if currency != "JPY" else Decimal(1),
                maximum=Decimal(100000),
                currency=currency,
            )
        ],
        deadline_hours=24,
        timeout_choice="escalate",
    )


def waiting_case(url: str, currency: str) -> int:
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        case = Case(
            type="return-request",
            order_id="111-0000009-0000009",
            marketplace_id="A1VC38T7YXB528" if currency == "JPY" else "ATVPDKIKX0DER",
            state="waiting",
            waiting_step="operator-decision",
            choices=["refund_other_amount", "escalate"],
            question=refund_question(currency).model_dump(mode="json"),
        )
        s.add(case)
        s.flush()
        return case.id


def decisions_of(url: str, case_id: int) -> int:
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Decision

    with session_scope(url) as s:
        return s.scalar(select(func.count()).where(Decision.case_id == case_id)) or 0


@pytest.mark.parametrize(("amount", "currency", "message"), BAD)
def test_the_service_decide_used_by_the_inbox_refuses_extra_decimals(
    case_store: str, amount: str, currency: str, message: str
) -> None:
    from henpin.app.decide import decide
    from henpin.decisions import DecisionRefused

    case_id = waiting_case(case_store, currency)
    with pytest.raises(DecisionRefused) as refused:
        decide(
            case_store,
            case_id,
            choice="refund_other_amount",
            note="agreed with the buyer",
            operator="alice",
            source="inbox",
            fields={"amount": amount},
        )
    assert str(refused.value) == (
        f"'Refund amount' (amount): {message}; it is refused, not rounded."
    )
    assert decisions_of(case_store, case_id) == 0
    # The exact amount in the same currency is taken.
    good = "12.34" if currency == "USD" else "1500"
    result = decide(
        case_store,
        case_id,
        choice="refund_other_amount",
        note="agreed",
        operator="alice",
        source="inbox",
        fields={"amount": good},
    )
    assert result.accepted


@pytest.mark.e2e
@pytest.mark.parametrize(("amount", "currency", "message"), BAD)
def test_henpin_decide_field_refuses_extra_decimals(
    tmp_path: Path, amount: str, currency: str, message: str
) -> None:
    from henpin.accounts import add_operator
    from henpin.store.db import migrate

    url = f"sqlite:///{tmp_path / 'henpin.db'}"
    migrate(url)
    case_id = waiting_case(url, currency)
    add_operator(url, "bob", "pw-bob-123456")  # `henpin decide` takes an operator's name only
    env = {**os.environ, "HENPIN_HOME": str(tmp_path), "HENPIN_DATABASE_URL": url}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "henpin.cli",
            "decide",
            str(case_id),
            "--choice",
            "refund_other_amount",
            "--note",
            "agreed",
            "--field",
            f"amount={amount}",
            "--operator",
            "bob",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"'Refund amount' (amount): {message}; it is refused, not rounded." in done.stderr
    assert decisions_of(url, case_id) == 0


@pytest.mark.parametrize(("amount", "currency", "message"), BAD)
def test_a_prefect_ui_resume_goes_through_the_same_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amount: str, currency: str, message: str
) -> None:
    from sqlalchemy import select

    from henpin.store.db import migrate, session_scope
    from henpin.store.models import Event
    from tasks.cases import settle_decision

    url = f"sqlite:///{tmp_path / 'henpin.db'}"
    migrate(url)
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_DATABASE_URL", url)
    reset_process_caches()
    try:
        case_id = waiting_case(url, currency)
        # What the Resume form sends: the RunInput's fields, the amount as a JSON number.
        answer: dict[str, Any] = {
            "choice": "refund_other_amount",
            "note": "agreed",
            "operator": "carol",
            "amount": float(amount),
        }
        assert settle_decision.fn(case_id, refund_question(currency), answer) is None
        assert decisions_of(url, case_id) == 0
        with session_scope(url) as s:
            said = s.scalars(select(Event.message).where(Event.case_id == case_id)).all()
        assert any(f"'Refund amount' (amount): {message}" in m for m in said), said
    finally:
        reset_process_caches()


POLICY = """version: 1
cancel_request:
  rules:
    - name: high-value
      when:
        order_value_over: {USD: 200, JPY: 1500.5}
      then: ask_operator
    - name: rest
      then: cancel
return_request:
  keep_item_under: {USD: 0.019}
  authorize_up_to: {USD: 12.345, JPY: 30000}
"""


def test_policy_amounts_with_extra_decimals_are_refused_with_file_line_and_key(
    tmp_path: Path,
) -> None:
    from henpin.policy import PolicyError, load_policy

    path = tmp_path / "policies.yaml"
    path.write_text(POLICY)
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    rule = "an amount is in the currency's minor unit"
    assert str(refused.value).splitlines() == [
        f"{path}:6: cancel_request.rules[0].when.order_value_over.JPY:"
        f" 1500.5 JPY has more decimals than JPY allows (0); {rule}",
        f"{path}:11: return_request.keep_item_under.USD:"
        f" 0.019 USD has more decimals than USD allows (2); {rule}",
        f"{path}:12: return_request.authorize_up_to.USD:"
        f" 12.345 USD has more decimals than USD allows (2); {rule}",
    ]
    # Trailing zeros are exact: 1500.0 JPY and 200.50 USD are accepted.
    path.write_text(
        POLICY.replace("1500.5", "1500.0").replace("0.019", "0.50").replace("12.345", "200.50")
    )
    assert load_policy(path).return_request.authorize_up_to["USD"] == Decimal("200.50")


def refund(amount: str, currency: str) -> Refund:
    """A one-component refund (Principal) as a case would hand it to the outbox."""
    return Refund(
        order_id="111-0000009-0000009",
        items=[
            RefundItem(
                order_item_id="000000901",
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal(amount), currency=currency
                    )
                ],
            )
        ],
    )


def test_the_feed_writer_never_writes_an_amount_off_the_minor_unit() -> None:
    from henpin.amazon.feed_xml import FeedBuildError, payment_adjustment_feed

    for amount, currency, message in BAD:
        with pytest.raises(FeedBuildError) as refused:
            payment_adjustment_feed("A1HENPINDEMO00", [(1, refund(amount, currency))])
        assert str(refused.value) == f"order 111-0000009-0000009, Principal: {message}"
    xml = payment_adjustment_feed("A1HENPINDEMO00", [(1, refund("1500", "JPY"))])
    assert '<Amount currency="JPY">1500</Amount>' in xml


@pytest.mark.e2e
def test_policy_check_warns_when_a_watched_currency_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(
        "version: 1\ncancel_request:\n  rules:\n    - name: high-value\n      when:\n"
        "        order_value_over: {USD: 200, GBP: 150}\n      then: ask_operator\n"
        "    - name: rest\n      then: cancel\n"
    )
    env = {
        **os.environ,
        "HENPIN_HOME": str(tmp_path),
        "HENPIN_MARKETPLACES": '["ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1VC38T7YXB528"]',
    }
    done = subprocess.run(
        [sys.executable, "-m", "henpin.cli", "policy", "check", str(path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr  # a warning, not a failure
    assert "OK" in done.stdout
    warnings = done.stderr.strip().splitlines()
    assert warnings == [
        f"warning: {path}:6: cancel_request.rules[0].when.order_value_over: no JPY amount, but"
        " Henpin watches JP (sells in JPY): this condition cannot be checked for those orders,"
        " so cancel requests reaching rule high-value go to a person; add an amount in JPY"
    ]  # Henpin's default return_request and address_error amounts list JPY


def test_the_outbox_refuses_to_store_a_refund_off_the_minor_unit(case_store: str) -> None:
    from sqlalchemy import func, select

    from henpin import outbox
    from henpin.amazon.feed_xml import FeedBuildError
    from henpin.domain import ActionKind, FeedType
    from henpin.store.db import session_scope
    from henpin.store.models import Action

    with pytest.raises(FeedBuildError, match=r"12\.345 USD has more decimals than USD allows"):
        outbox.enqueue(
            case_store,
            key="refund:exact",
            case_id=None,
            kind=ActionKind.REFUND,
            feed_type=FeedType.PAYMENT_ADJUSTMENT,
            marketplace_id="ATVPDKIKX0DER",
            payload=refund("12.345", "USD"),
        )
    with session_scope(case_store) as s:
        assert s.scalar(select(func.count()).select_from(Action)) == 0
