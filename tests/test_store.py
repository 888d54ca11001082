"""The case store and the decision record, on SQLite and PostgreSQL.

One case per order and type; one recorded winner per question even when many answer at once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from henpin.accounts import add_operator
from henpin.app.cases import list_cases, show_case
from henpin.app.decide import decide
from henpin.decisions import DecisionRefused, answered_waiting_cases, record_decision
from henpin.domain import CaseType, FulfillmentStatus, Order
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision
from tasks.cases import open_case


def order(order_id: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        created_time=now,
        last_updated_time=now,
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
    )


def waiting_case(url: str, order_id: str, deadline_in: timedelta) -> int:
    case_id, _ = open_case(CaseType.CANCEL_REQUEST, order(order_id), url=url)
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state = "waiting"
        case.waiting_step = "operator-decision"
        case.choices = ["cancel", "keep_order", "escalate"]
        case.deadline = datetime.now(UTC) + deadline_in
        case.timeout_choice = "cancel"
    return case_id


def test_one_case_per_order_and_type(case_store: str) -> None:
    first = open_case(CaseType.CANCEL_REQUEST, order("111-1"), url=case_store)
    again = open_case(CaseType.CANCEL_REQUEST, order("111-1"), url=case_store)
    other_type = open_case(CaseType.RETURN_REQUEST, order("111-1"), url=case_store)
    assert first[1] and not again[1] and first[0] == again[0]
    assert other_type[1] and other_type[0] != first[0]


def test_concurrent_answers_have_exactly_one_winner(case_store: str) -> None:
    case_id = waiting_case(case_store, "111-2", timedelta(hours=1))

    def answer(i: int) -> bool:
        return record_decision(
            case_store,
            case_id,
            "operator-decision",
            choice="cancel" if i % 2 else "keep_order",
            note="",
            operator=f"op{i}",
            source="inbox",
        ).won

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(answer, range(16)))
    assert won.count(True) == 1
    with session_scope(case_store) as s:
        assert s.scalar(select(func.count()).select_from(Decision)) == 1


def test_decide_refuses_what_cannot_be_decided_and_names_the_first_winner(case_store: str) -> None:
    case_id = waiting_case(case_store, "111-3", timedelta(hours=1))
    with pytest.raises(DecisionRefused, match="not a choice"):
        decide(case_store, case_id, choice="refund", operator="alice")
    with pytest.raises(DecisionRefused, match="no case 999"):
        decide(case_store, 999, choice="cancel", operator="alice")
    with pytest.raises(DecisionRefused, match="operator name is required"):
        decide(case_store, case_id, choice="cancel", operator=" ")
    first = decide(case_store, case_id, choice="cancel", operator="alice", source="inbox")
    second = decide(case_store, case_id, choice="keep_order", operator="bob", source="inbox")
    assert first.accepted and not first.resumed  # no flow run: the housekeeper resumes it later
    assert not second.accepted and "already decided by alice" in second.message
    detail = show_case(case_store, case_id)
    assert detail is not None
    assert [(d.operator, d.choice) for d in detail.decisions] == [("alice", "cancel")]
    assert any(e.kind == "decision" and "alice" in e.message for e in detail.timeline)


def test_waiting_cases_are_listed_soonest_deadline_first(case_store: str) -> None:
    late = waiting_case(case_store, "111-4", timedelta(hours=20))
    soon = waiting_case(case_store, "111-5", timedelta(hours=1))
    overdue = waiting_case(case_store, "111-6", timedelta(hours=-1))
    open_case(CaseType.CANCEL_REQUEST, order("111-7"), url=case_store)
    listed = list_cases(case_store)
    assert [c.id for c in listed[:3]] == [overdue, soon, late]
    assert listed[3].state == "open" and listed[3].choices == [] and listed[3].deadline is None
    assert [c.id for c in list_cases(case_store, state="waiting")] == [overdue, soon, late]


def test_the_most_urgent_cases_survive_the_list_limit(case_store: str) -> None:
    urgent = waiting_case(case_store, "111-8", timedelta(minutes=5))
    for n in range(3):  # newer cases, later deadlines
        waiting_case(case_store, f"111-9{n}", timedelta(hours=10 + n))
    assert [c.id for c in list_cases(case_store, state="waiting", limit=1)] == [urgent]


def test_answered_waiting_cases_pairs_each_run_with_the_answer_to_its_current_question(
    case_store: str,
) -> None:
    answered = waiting_case(case_store, "111-10", timedelta(hours=1))
    unanswered = waiting_case(case_store, "111-11", timedelta(hours=1))
    moved_on = waiting_case(case_store, "111-12", timedelta(hours=1))
    for case_id in (answered, unanswered, moved_on):
        with session_scope(case_store) as s:
            case = s.get(Case, case_id)
            assert case is not None
            case.flow_run_id = f"run-{case_id}"
    record_decision(
        case_store,
        answered,
        "operator-decision",
        choice="cancel",
        note="ok",
        operator="alice",
        source="inbox",
    )
    # An answer to an earlier question does not wake the run waiting on a later one.
    record_decision(
        case_store,
        moved_on,
        "earlier-question",
        choice="cancel",
        note="",
        operator="bob",
        source="cli",
    )
    found = answered_waiting_cases(case_store)
    assert [(case_id, run) for case_id, run, _ in found] == [(answered, f"run-{answered}")]
    # What the run is resumed with: the choice only. No name (the run takes who decided from the
    # store) and no note (Prefect keeps run inputs for good; no purge reaches what it never had).
    assert found[0][2].run_input == {"choice": "cancel"}


def test_operator_passwords_are_hashed(case_store: str) -> None:
    password = add_operator(case_store, "alice", role="admin")
    with session_scope(case_store) as s:
        stored = s.scalar(select(Case.id).limit(1))
        assert stored is None
        from henpin.store.models import Operator

        op = s.scalar(select(Operator).where(Operator.name == "alice"))
        assert op is not None and password not in op.password_hash
        assert op.password_hash.startswith("$argon2")


def test_migrations_create_exactly_the_models(case_store: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from henpin.store.db import engine_for
    from henpin.store.models import Base

    with engine_for(case_store).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_an_answer_is_checked_against_the_question_before_it_counts(case_store: str) -> None:
    from henpin.questions import AnswerField, Question

    case_id = waiting_case(case_store, "111-8", timedelta(hours=1))
    question = Question(
        step="operator-decision",
        title="Refund the returned item?",
        choices=["refund", "decline"],
        note_required_for=["decline"],
        fields=[
            AnswerField(
                name="amount",
                kind="money",
                label="Refund amount",
                required_for=["refund"],
                minimum=0,
                maximum=40,
                currency="USD",
            )
        ],
        deadline_hours=24,
        timeout_choice="refund",
    )
    with session_scope(case_store) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.choices = question.choices
        case.question = question.model_dump(mode="json")
    with pytest.raises(DecisionRefused, match="at most 40"):
        decide(case_store, case_id, choice="refund", operator="a", fields={"amount": "45"})
    with pytest.raises(DecisionRefused, match="must be a number"):
        decide(case_store, case_id, choice="refund", operator="a", fields={"amount": "lots"})
    with pytest.raises(DecisionRefused, match="fill in 'Refund amount'"):
        decide(case_store, case_id, choice="refund", operator="a")
    with pytest.raises(DecisionRefused, match="needs a reason"):
        decide(case_store, case_id, choice="decline", operator="a")
    ok = decide(case_store, case_id, choice="refund", operator="a", fields={"amount": "39.5"})
    assert ok.accepted
    detail = show_case(case_store, case_id)
    assert detail is not None and detail.decisions[0].data == {"amount": "39.5"}


def test_a_form_opened_for_an_earlier_question_is_refused(case_store: str) -> None:
    case_id = waiting_case(case_store, "111-9", timedelta(hours=1))
    with pytest.raises(DecisionRefused, match="moved on since you opened it"):
        decide(case_store, case_id, choice="cancel", operator="a", seen_step="item-received")
    assert decide(
        case_store, case_id, choice="cancel", operator="a", seen_step="operator-decision"
    ).accepted
