"""One parcel case per order, in the case store (SQLite and PostgreSQL): what a later reason does
to the order's parcel case, what an operator opening one by order id is refused, and that
openers racing each other leave one open case. End to end over the emulator: test_parcels_e2e.py.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from henpin.cases import refused_delivery
from henpin.cases.answers import OperatorAnswer
from henpin.cases.refund_outcomes import HeldRefundDecision, refund_held_flag, refund_held_question
from henpin.cases.refused_delivery import RefundAsked, RefusedRefundConfirmation
from henpin.domain import (
    ActionKind,
    CaseState,
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    Package,
)
from henpin.parcel_cases import ParcelCaseRefused, open_parcel_case_for, place_parcel_report
from henpin.policy import load_policy
from henpin.questions import Question
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Event

ORDER = "113-0000031-0000031"


def shipped(detailed_status: str | None, order_id: str = ORDER) -> Order:
    now = datetime.now(UTC)
    packages = (
        [Package(package_reference_id="1", status="UNDELIVERABLE", detailed_status=detailed_status)]
        if detailed_status
        else []
    )
    return Order(
        order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        created_time=now,
        last_updated_time=now,
        fulfillment_status=FulfillmentStatus.SHIPPED,
        items=[OrderItem(order_item_id="1", sku="MUG-001")],
        packages=packages,
    )


def parcel_cases(url: str, order_id: str = ORDER) -> dict[str, Case]:
    with session_scope(url) as s:
        rows = s.scalars(select(Case).where(Case.order_id == order_id)).all()
        return {c.type: c for c in rows}


def waiting_at(url: str, case_id: int, step: str) -> None:
    """The case as its flow leaves it when it asks an operator."""
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state = CaseState.WAITING.value
        case.waiting_step = step
        case.choices = ["buyer_asked", "remind", "no_refund"]


def events(url: str, case_id: int, kind: str) -> list[Event]:
    with session_scope(url) as s:
        return list(
            s.scalars(select(Event).where(Event.case_id == case_id, Event.kind == kind)).all()
        )


def test_unclaimed_then_address_problem_hands_the_waiting_case_over(case_store: str) -> None:
    first = place_parcel_report(shipped("RETURNING_TO_SELLER"), "unclaimed", url=case_store)
    assert first.new
    waiting_at(case_store, first.case_id, "refund-asked")

    later = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    assert later.new and later.handed_over_from == first.case_id
    assert later.resume_input is not None and later.resume_input["choice"] == "handed_over"
    cases = parcel_cases(case_store)
    refused, address = cases["refused-delivery"], cases["address-error"]
    assert refused.state == "closed" and refused.outcome == "handed-to-address-error"
    assert refused.waiting_step is None
    (closed,) = events(case_store, refused.id, "closed")
    assert f"Case {address.id} (address error) takes this parcel over" in closed.message
    assert closed.data == {"outcome": "handed-to-address-error", "handed_to_case": address.id}
    assert refused.closed_at is not None and (refused.choices, refused.question) == ([], {})
    assert address.state == "open" and address.parent_case_id == refused.id
    history = address.details["handed_over_from"]
    assert history["case_id"] == refused.id
    assert [r["detailed_status"] for r in history["details"]["parcel_reports"]] == [
        "RETURNING_TO_SELLER"
    ]
    with session_scope(case_store) as s:
        decision = s.scalar(select(Decision).where(Decision.case_id == refused.id))
        assert decision is not None and decision.choice == "handed_over"

    again = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    assert (again.case_id, again.new) == (address.id, False)
    assert len(parcel_cases(case_store)) == 2


def test_address_problem_then_returning_is_recorded_on_the_address_case(case_store: str) -> None:
    first = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    for _ in range(2):  # ingestion's overlapping windows see the same update twice
        later = place_parcel_report(shipped("RETURNING_TO_SELLER"), "unclaimed", url=case_store)
        assert (later.case_id, later.new) == (first.case_id, False)
    cases = parcel_cases(case_store)
    assert list(cases) == ["address-error"]
    reports = cases["address-error"].details["parcel_reports"]
    assert [r["detailed_status"] for r in reports] == ["UNDELIVERABLE", "RETURNING_TO_SELLER"]
    assert len(events(case_store, first.case_id, "parcel-report")) == 1


def test_an_answer_recorded_first_keeps_the_refused_case(case_store: str) -> None:
    first = place_parcel_report(shipped("REJECTED_BY_BUYER"), "refused", url=case_store)
    waiting_at(case_store, first.case_id, "refund-asked")
    with session_scope(case_store) as s:
        s.add(
            Decision(
                case_id=first.case_id,
                step="refund-asked",
                choice="buyer_asked",
                operator="alice",
                source="inbox",
            )
        )
    later = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    assert (later.case_id, later.new) == (first.case_id, False)
    assert list(parcel_cases(case_store)) == ["refused-delivery"]
    [kept] = events(case_store, first.case_id, "parcel-report")
    assert "an operator answered its question first" in kept.message


def test_a_refunding_case_is_not_followed_by_a_case_that_could_refund(case_store: str) -> None:
    first = place_parcel_report(shipped("REJECTED_BY_BUYER"), "refused", url=case_store)
    with session_scope(case_store) as s:
        case = s.get(Case, first.case_id)
        assert case is not None
        case.state = CaseState.ACTING.value  # its refund is queued in the outbox
        s.add(
            Action(
                key=f"refund-{first.case_id}",
                case_id=first.case_id,
                kind=ActionKind.REFUND.value,
                feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
                marketplace_id="ATVPDKIKX0DER",
            )
        )
    acting = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    assert (acting.case_id, acting.new) == (first.case_id, False)
    assert "already acting" in events(case_store, first.case_id, "parcel-report")[0].message

    with session_scope(case_store) as s:
        case = s.get(Case, first.case_id)
        assert case is not None
        case.state, case.outcome = CaseState.CLOSED.value, "refunded-partly"
    refunded = place_parcel_report(shipped("ADDRESS_NOT_FOUND"), "address", url=case_store)
    assert refunded.flagged and not refunded.new
    cases = parcel_cases(case_store)
    assert list(cases) == ["refused-delivery"]
    assert "opened no new parcel case" in (cases["refused-delivery"].needs_attention or "")

    with pytest.raises(ParcelCaseRefused, match=f"parcel case {first.case_id} .*refunded") as no:
        open_parcel_case_for(shipped(None), "address", operator="alice", note="", url=case_store)
    assert no.value.case_id == first.case_id


def test_after_a_case_closed_without_refund_an_address_problem_opens_a_linked_case(
    case_store: str,
) -> None:
    first = place_parcel_report(shipped("RETURNING_TO_SELLER"), "unclaimed", url=case_store)
    with session_scope(case_store) as s:
        case = s.get(Case, first.case_id)
        assert case is not None
        case.state, case.outcome = CaseState.CLOSED.value, "no-refund-requested"
    later = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    assert later.new and later.handed_over_from is None and later.resume_run is None
    address = parcel_cases(case_store)["address-error"]
    assert address.parent_case_id == first.case_id
    assert address.details["follows"]["case_id"] == first.case_id
    assert f"Follows case {first.case_id} (refused-delivery, closed: no-refund-requested)" in (
        events(case_store, address.id, "opened")[0].message
    )


def test_an_operator_opens_one_parcel_case_and_is_told_which_case_is_in_the_way(
    case_store: str,
) -> None:
    case_id = open_parcel_case_for(
        shipped(None), "refused", operator="alice", note="Carrier called", url=case_store
    )
    case = parcel_cases(case_store)["refused-delivery"]
    assert case.id == case_id and case.details["refused"] is True
    assert case.details["parcel_reports"][0]["source"] == "operator alice"
    assert "Carrier called" in events(case_store, case_id, "opened")[0].message

    with pytest.raises(ParcelCaseRefused, match=f"open parcel case: case {case_id} "):
        open_parcel_case_for(shipped(None), "address", operator="bob", note="", url=case_store)
    with session_scope(case_store) as s:
        closed = s.get(Case, case_id)
        assert closed is not None
        closed.state, closed.outcome = CaseState.CLOSED.value, "no-refund-requested"
    with pytest.raises(
        ParcelCaseRefused, match=f"already had a refused-delivery case: case {case_id}"
    ):
        open_parcel_case_for(shipped(None), "unclaimed", operator="bob", note="", url=case_store)

    follow = open_parcel_case_for(shipped(None), "address", operator="bob", note="", url=case_store)
    address = parcel_cases(case_store)["address-error"]
    assert address.id == follow and address.parent_case_id == case_id
    assert address.details["follows"]["case_id"] == case_id


def test_openers_racing_each_other_leave_one_open_parcel_case(case_store: str) -> None:
    """Ingestion (both reasons) and operators (both kinds) at the same moment, for one order."""
    order_id = "113-0000032-0000032"
    start = threading.Barrier(8)
    results: list[Any] = []

    def ingest(kind: Any, status: str) -> None:
        start.wait()
        results.append(place_parcel_report(shipped(status, order_id), kind, url=case_store))

    def operator(kind: Any, name: str) -> None:
        start.wait()
        try:
            results.append(
                open_parcel_case_for(
                    shipped(None, order_id), kind, operator=name, note="", url=case_store
                )
            )
        except ParcelCaseRefused as refused:
            results.append(refused)

    workers = [
        threading.Thread(target=ingest, args=("unclaimed", "RETURNING_TO_SELLER")),
        threading.Thread(target=ingest, args=("address", "UNDELIVERABLE")),
        threading.Thread(target=ingest, args=("refused", "REJECTED_BY_BUYER")),
        threading.Thread(target=ingest, args=("address", "ADDRESS_NOT_FOUND")),
        threading.Thread(target=operator, args=("refused", "alice")),
        threading.Thread(target=operator, args=("address", "bob")),
        threading.Thread(target=operator, args=("unclaimed", "carol")),
        threading.Thread(target=operator, args=("address", "dave")),
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert len(results) == 8
    cases = parcel_cases(case_store, order_id)
    open_cases = [c for c in cases.values() if c.state != "closed"]
    assert len(open_cases) == 1
    opened_by_operators = [r for r in results if isinstance(r, int)]
    assert len(opened_by_operators) <= 1


def asked(url: str, case_id: int, question: Question) -> None:
    """The case as its flow leaves it when it asks this question (what `mark_waiting` keeps)."""
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state = CaseState.WAITING.value
        case.waiting_step = question.step
        case.choices = list(question.choices)
        case.question = question.model_dump(mode="json")
        case.timeout_choice = question.timeout_choice


def refused_case_questions() -> list[tuple[Question, type[OperatorAnswer]]]:
    """Every question a refused-delivery case waits on, with the answer its flow reads."""
    policy = load_policy(Path(__file__).parent.parent / "policies.yaml").refused_delivery
    order = shipped("RETURNING_TO_SELLER").model_copy(
        update={
            "items": [
                OrderItem(
                    order_item_id="1",
                    sku="MUG-001",
                    unit_price=Money(amount=Decimal("20.00"), currency="USD"),
                )
            ]
        }
    )
    proposal = refused_delivery.proposed_refund(order, policy, refused=False)
    flag = refund_held_flag(3, "HENPIN_ALREADY_REFUNDED", "refunded elsewhere")
    return [
        (refused_delivery.refund_asked_question(order, policy, reminded=False), RefundAsked),
        (refused_delivery.refund_asked_question(order, policy, reminded=True), RefundAsked),
        (refused_delivery.refund_question(order, policy, proposal), RefusedRefundConfirmation),
        (refund_held_question(order, flag, 1), HeldRefundDecision),
        (refund_held_question(order, flag, 2), HeldRefundDecision),
    ]


@pytest.mark.parametrize(
    "which", range(5), ids=["asked", "reminded", "refund", "held", "held-again"]
)
def test_a_waiting_refused_case_is_handed_over_only_where_its_answer_can_say_so(
    case_store: str, which: int
) -> None:
    """Henpin answers `handed_over` only to a question whose answer can carry it: the run is
    resumed with an answer its schema accepts. A refund Henpin holds back (the held-refund
    question: check again or escalate) is a refund under way: the case keeps the parcel, a
    person decides, and the report is kept on its timeline."""
    question, answer_type = refused_case_questions()[which]
    first = place_parcel_report(shipped("RETURNING_TO_SELLER"), "unclaimed", url=case_store)
    asked(case_store, first.case_id, question)

    later = place_parcel_report(shipped("UNDELIVERABLE"), "address", url=case_store)
    if "handed_over" in answer_type.choices():
        assert later.new and later.handed_over_from == first.case_id
        assert later.resume_input is not None
        assert answer_type.model_validate(later.resume_input).choice == "handed_over"
        return
    assert (later.case_id, later.new, later.resume_run) == (first.case_id, False, None)
    refused = parcel_cases(case_store)["refused-delivery"]
    assert list(parcel_cases(case_store)) == ["refused-delivery"]
    assert (refused.state, refused.waiting_step) == ("waiting", question.step)
    with session_scope(case_store) as s:
        assert s.scalar(select(Decision).where(Decision.case_id == first.case_id)) is None
    [kept] = events(case_store, first.case_id, "parcel-report")
    assert "held back" in kept.message
