"""Every door decides the same way (issue 11): the inbox, `henpin decide` and the Prefect UI's
Resume form pass the same checks (who, role, claim, the answer itself) and are audited; only the
deadline sweep records a deadline answer.

Real parts: a SQLite case store, `henpin decide` as a separate process, the inbox under AppTest,
and for the Prefect UI the session's Prefect server, resumed through Prefect's own client
(`resume_flow_run(..., run_input=...)`, what the Resume form sends), the case flows run as the
runner runs them, and the SP-API emulator over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from henpin import accounts
from henpin.accounts import add_operator
from henpin.app.cases import show_case
from henpin.app.claims import claim
from henpin.app.decide import decide_as
from henpin.questions import Question
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision, Event
from tests.support import drive_case_runs, reset_process_caches
from tests.test_case_types_e2e import (  # noqa: F401  (fixtures)
    control,
    emulator,
    henpin,
    mailbox,
    settle_amazon,
    shipped_order,
    the_case,
)
from tests.test_inbox_support import fresh_store, opened, signed_in, waiting_case

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store with alice (operator), vera (viewer) and bob (operator)."""
    url = fresh_store(tmp_path, monkeypatch)
    add_operator(url, "vera", "pw-vera-123456", role="viewer")
    add_operator(url, "bob", "pw-bob-123456")
    return url


def decisions(url: str, case_id: int) -> list[tuple[str, str, str, str]]:
    with session_scope(url) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id).order_by(Decision.id))
        return [(d.step, d.choice, d.operator, d.source) for d in rows]


def timeline(url: str, case_id: int) -> list[str]:
    with session_scope(url) as s:
        return list(
            s.scalars(select(Event.message).where(Event.case_id == case_id).order_by(Event.id))
        )


def audited(url: str, case_id: int) -> list[tuple[str, str, str]]:
    """(actor, action, source) of the case's decision lines in the audit log, oldest first."""
    lines = [line for line in accounts.audit_lines(url) if line.target == f"case {case_id}"]
    return [(a.actor, a.action, a.source) for a in reversed(lines) if "decision" in a.action]


# --- henpin decide ------------------------------------------------------------------------------


def decide_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [sys.executable, "-m", "henpin.cli", "decide", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.e2e
def test_henpin_decide_refuses_unknown_viewer_and_deadline_names(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000201", timedelta(hours=5))
    for name, said in [
        ("nobody-at-all", "'nobody-at-all' is not an operator of Henpin"),
        ("vera", "'vera' is a viewer: a viewer reads cases but does not decide"),
        ("deadline", "'deadline' is not an operator of Henpin"),
    ]:
        done = decide_cli(str(case_id), "--choice", "cancel", "--operator", name)
        assert done.returncode == 1, done.stdout
        assert said in done.stderr
    refused = decide_cli(str(case_id), "--choice", "cancel", "--operator", "vera", "--json")
    answer = json.loads(refused.stdout)
    assert (refused.returncode, answer["accepted"], answer["result"]) == (1, False, "not-allowed")
    assert "viewer" in answer["error"]
    assert decisions(store_url, case_id) == []
    assert audited(store_url, case_id) == [
        ("nobody-at-all", "decision-refused", "cli"),
        ("vera", "decision-refused", "cli"),
        ("deadline", "decision-refused", "cli"),
        ("vera", "decision-refused", "cli"),
    ]

    taken = decide_cli(str(case_id), "--choice", "cancel", "--operator", "alice", "--json")
    answer = json.loads(taken.stdout)
    assert taken.returncode == 0, taken.stderr
    assert (answer["accepted"], answer["choice"], answer["operator"]) == (True, "cancel", "alice")
    assert answer["result"] == "recorded" and answer["resumed"] is False
    assert decisions(store_url, case_id) == [("operator-decision", "cancel", "alice", "cli")]
    assert audited(store_url, case_id)[-1] == ("alice", "decision", "cli")


@pytest.mark.e2e
def test_henpin_decide_respects_a_claim_as_the_inbox_does(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000202", timedelta(hours=5))
    assert claim(store_url, case_id, "bob").ok
    held = decide_cli(str(case_id), "--choice", "keep_order", "--operator", "alice", "--json")
    answer = json.loads(held.stdout)
    assert (held.returncode, answer["result"], answer["claimed_by"]) == (
        1,
        "claimed-by-other",
        "bob",
    )
    assert "claimed by bob" in answer["error"] and "--over-claim" in answer["error"]
    assert decisions(store_url, case_id) == []
    over = decide_cli(
        str(case_id), "--choice", "keep_order", "--operator", "alice", "--over-claim", "--json"
    )
    assert over.returncode == 0, over.stderr
    assert json.loads(over.stdout)["claimed_by"] == "bob"
    assert decisions(store_url, case_id) == [("operator-decision", "keep_order", "alice", "cli")]


def test_inbox_decisions_are_audited_with_the_inbox_as_source(store_url: str) -> None:
    case_id = waiting_case(store_url, "111-0000000-0000203", timedelta(hours=5))
    assert not decide_as(store_url, case_id, choice="cancel", operator="vera").accepted
    assert decide_as(store_url, case_id, choice="cancel", operator="alice").accepted
    assert [(a, act, src.split(" ")[0]) for a, act, src in audited(store_url, case_id)] == [
        ("vera", "decision-refused", "inbox"),
        ("alice", "decision", "inbox"),
    ]
    assert decisions(store_url, case_id) == [("operator-decision", "cancel", "alice", "inbox")]


# --- the deadline ------------------------------------------------------------------------------


def test_only_the_sweep_records_a_deadline_answer_and_only_when_it_passed(
    store_url: str,
) -> None:
    from henpin.decisions import record_deadline_answers, record_decision

    case_id = waiting_case(store_url, "111-0000000-0000204", timedelta(hours=5))
    with pytest.raises(ValueError, match="record_deadline_answers"):
        record_decision(
            store_url,
            case_id,
            "operator-decision",
            choice="cancel",
            note="",
            operator="deadline",
            source="deadline",
        )
    assert record_deadline_answers(store_url) == []  # five hours left: nothing
    assert decisions(store_url, case_id) == []
    later = datetime.now(UTC) + timedelta(hours=6)
    assert record_deadline_answers(store_url, later) == [case_id]
    # The question's own timeout choice, nothing a caller chose.
    assert decisions(store_url, case_id) == [
        ("operator-decision", "escalate", "deadline", "deadline")
    ]


# --- the Prefect UI door, in the flow's own task ---------------------------------------------------


REFUND = Question.model_validate(
    {
        "step": "confirm-refund",
        "title": "Refund?",
        "choices": ["refund_proposed", "refund_other_amount", "no_refund"],
        "fields": [
            {
                "name": "amount",
                "kind": "money",
                "label": "Refund amount",
                "required_for": ["refund_other_amount"],
                "minimum": "0.01",
                "maximum": "40.00",
                "currency": "USD",
            }
        ],
        "note_required_for": ["refund_other_amount", "no_refund"],
        "deadline_hours": 24,
        "timeout_choice": "refund_proposed",
    }
)


def refund_case(url: str, order_id: str) -> int:
    with session_scope(url) as s:
        case = Case(
            type="refused-delivery",
            order_id=order_id,
            marketplace_id="ATVPDKIKX0DER",
            state="waiting",
            waiting_step=REFUND.step,
            choices=REFUND.choices,
            question=REFUND.model_dump(mode="json"),
            deadline=datetime.now(UTC) + timedelta(hours=24),
            timeout_choice=REFUND.timeout_choice,
        )
        s.add(case)
        s.flush()
        return case.id


def asked_again(url: str, case_id: int, step: str) -> Question:
    """The question asked again under its next step name, as the flow does after a refusal."""
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.waiting_step = step
    return REFUND.model_copy(update={"step": step})


def test_a_prefect_ui_answer_names_nobody_and_deadline_means_nothing(store_url: str) -> None:
    """What an older run's Resume form could still send (it had an `operator` field)."""
    from tasks.cases import settle_decision

    reset_process_caches()  # the flow's tasks find this test's store (HENPIN_HOME)
    case_id = refund_case(store_url, "111-0000000-0000205")
    answer = {"choice": "refund_other_amount", "note": "x", "operator": "deadline"}
    assert settle_decision.fn(case_id, REFUND, answer | {"amount": "99999"}) is None
    # The run, started again from the top, meets the same answer: judged once, audited once.
    assert settle_decision.fn(case_id, REFUND, answer | {"amount": "99999"}) is None
    question = asked_again(store_url, case_id, "confirm-refund-2")
    assert settle_decision.fn(case_id, question, answer | {"amount": -40}) is None
    assert decisions(store_url, case_id) == []
    said = timeline(store_url, case_id)
    assert [m for m in said if "must be at most 40.00 USD" in m and "Asking again" in m]
    assert [m for m in said if "must be at least 0.01 USD" in m]
    assert len(said) == 2, said

    question = asked_again(store_url, case_id, "confirm-refund-3")
    forged = {"choice": "refund_other_amount", "note": "agreed", "operator": "alice"}
    won = settle_decision.fn(case_id, question, forged | {"amount": 25})
    assert won is not None and (won.operator, won.source) == ("prefect-ui", "prefect-ui")
    assert decisions(store_url, case_id) == [
        ("confirm-refund-3", "refund_other_amount", "prefect-ui", "prefect-ui")
    ]
    assert audited(store_url, case_id) == [
        ("prefect-ui", "decision-refused", "prefect-ui"),
        ("prefect-ui", "decision-refused", "prefect-ui"),
        ("prefect-ui", "decision", "prefect-ui"),
    ]
    [line] = [a for a in accounts.audit_lines(store_url) if a.action == "decision"]
    assert line.detail["operator_typed"] == "alice"  # kept for the record, never believed
    reset_process_caches()


def test_a_prefect_ui_answer_does_not_decide_over_a_claim(store_url: str) -> None:
    from tasks.cases import settle_decision

    reset_process_caches()  # the flow's tasks find this test's store (HENPIN_HOME)
    case_id = refund_case(store_url, "111-0000000-0000206")
    assert claim(store_url, case_id, "bob").ok
    assert settle_decision.fn(case_id, REFUND, {"choice": "refund_proposed"}) is None
    assert decisions(store_url, case_id) == []
    assert any("claimed by bob" in m for m in timeline(store_url, case_id))
    reset_process_caches()


# --- the inbox's links -------------------------------------------------------------------------


def test_viewers_get_no_link_to_the_prefect_ui(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_inbox_support import set_operator

    monkeypatch.setenv("HENPIN_PREFECT_UI_URL", "http://127.0.0.1:4200")
    run_id = "0b7c5d3e-1111-4222-8333-944455556667"
    case_id = waiting_case(store_url, "111-0000000-0000207", timedelta(hours=5), flow_run_id=run_id)
    link = f"http://127.0.0.1:4200/runs/flow-run/{run_id}"
    at = opened(signed_in(), case_id)
    assert link in [b.proto.url for b in at.get("link_button")]
    set_operator(store_url, "alice", role="viewer")
    at = opened(signed_in(), case_id)
    assert not at.exception
    assert link not in [b.proto.url for b in at.get("link_button")]


# --- the Prefect UI door end to end: Prefect's resume API, the flow, Amazon ------------------------


def refund_waiting(url: str, amazon: Any, order_id: str) -> Any:
    """A parcel nobody collected; the buyer asked for a refund (answered in the inbox): the
    case now waits for the refund's amount."""
    from flows.ingest import ingest

    parcel = {
        "packageReferenceId": "1",
        "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "RETURNING_TO_SELLER"},
    }
    control(amazon, "POST", "orders", json=[shipped_order(order_id, package=parcel)])
    ingest()
    drive_case_runs()
    case = the_case(url, order_id, "refused-delivery")
    assert case.waiting_step == "refund-asked"
    asked = decide_as(url, case.id, choice="buyer_asked", operator="alice", note="by e-mail")
    assert asked.accepted, asked.message
    drive_case_runs()
    case = the_case(url, order_id, "refused-delivery")
    assert case.waiting_step == "confirm-refund"
    return case


def resume(case: Any, **answer: Any) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(UUID(case.flow_run_id), run_input=answer)
    drive_case_runs()


@pytest.mark.e2e
def test_prefect_api_resumes_are_checked_refused_and_asked_again(
    henpin: str,  # noqa: F811  (the fixtures imported above)
    emulator: Any,  # noqa: F811
    prefect_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order_id = "113-0000061-0000061"
    add_operator(henpin, "alice", "pw-alice-123456")
    case = refund_waiting(henpin, emulator, order_id)

    # The form has no field for a name: Prefect itself refuses one (forged, or "deadline").
    for name in ("alice", "deadline"):
        with pytest.raises(RuntimeError):
            resume(case, choice="refund_other_amount", note="x", amount=99999, operator=name)

    # Out of range: refused, not recorded, asked again under the next step.
    resume(case, choice="refund_other_amount", note="more", amount=99999)
    assert the_case(henpin, order_id, "refused-delivery").waiting_step == "confirm-refund-2"
    resume(case, choice="refund_other_amount", note="negative", amount=-40)
    assert the_case(henpin, order_id, "refused-delivery").waiting_step == "confirm-refund-3"

    # Switched off: a good answer is refused too, and the case says why.
    monkeypatch.setenv("HENPIN_PREFECT_UI_DECISIONS", "false")
    reset_process_caches()
    resume(case, choice="refund_other_amount", note="agreed", amount=25)
    assert the_case(henpin, order_id, "refused-delivery").waiting_step == "confirm-refund-4"
    said = timeline(henpin, case.id)
    assert any("Decisions in the Prefect UI are switched off" in m for m in said), said
    monkeypatch.setenv("HENPIN_PREFECT_UI_DECISIONS", "true")
    reset_process_caches()

    assert [d[3] for d in decisions(henpin, case.id)] == ["inbox"]  # only alice's answer
    resume(case, choice="refund_other_amount", note="agreed with the buyer", amount=25)
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "refunded-partly"
    assert decisions(henpin, case.id) == [
        ("refund-asked", "buyer_asked", "alice", "inbox"),
        ("confirm-refund-4", "refund_other_amount", "prefect-ui", "prefect-ui"),
    ]
    refunds = control(emulator, "GET", f"orders/{order_id}/refunds")
    assert len(refunds) == 1, refunds
    assert "25.00" in json.dumps(refunds) and "99999" not in json.dumps(refunds)
    feeds = json.dumps(control(emulator, "GET", "feeds"))
    assert "99999" not in feeds and "-40" not in feeds
    assert audited(henpin, case.id) == [
        ("alice", "decision", "inbox"),
        ("prefect-ui", "decision-refused", "prefect-ui"),
        ("prefect-ui", "decision-refused", "prefect-ui"),
        ("prefect-ui", "decision-refused", "prefect-ui"),
        ("prefect-ui", "decision", "prefect-ui"),
    ]
    with session_scope(henpin) as s:
        count = s.scalar(select(func.count()).select_from(Decision))
    assert count == 2
