"""How a case flow waits: for a person's decision, or for Amazon's answer to an action.

Waiting suspends the flow run, so a waiting case holds no process. The deadline of a question is
kept in the case store; the housekeeping flow answers overdue questions with the question's
timeout choice (its named timeout path), through the same one-winner decision record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import count

from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput

from henpin.decisions import RecordedDecision
from tasks.actions import ActionOutcome, action_outcome
from tasks.cases import mark_waiting, recorded_decision, settle_decision


class OperatorAnswer(RunInput):
    """Fields every decision input has; each question adds `choice: Literal[...]`."""

    note: str = ""
    operator: str = "prefect-ui"


def ask_operator(
    case_id: int,
    *,
    step: str,
    answer_type: type[OperatorAnswer],
    choices: list[str],
    deadline_hours: float,
    timeout_choice: str,
    question: str,
    describe: Callable[[datetime], str],
) -> RecordedDecision:
    """Wait (suspended) until the question `step` of the case has one recorded answer.

    `describe(deadline)` gives the markdown shown above the Prefect UI's Resume form.
    """
    deadline = mark_waiting(case_id, step, choices, deadline_hours, timeout_choice, question)
    decided = recorded_decision(case_id, step)
    if decided is None:
        answer = suspend_flow_run(
            wait_for_input=answer_type.with_initial_data(
                description=describe(deadline), operator="prefect-ui"
            ),
            key=step,
            timeout=None,
        )
        choice = str(getattr(answer, "choice"))  # noqa: B009 - each subclass defines its own Literal
        return settle_decision(case_id, step, choice, answer.note, answer.operator)
    return settle_decision(case_id, step, decided.choice, decided.note, decided.operator)


def wait_for_amazon(action_key: str) -> ActionOutcome:
    """Wait (suspended) until Amazon's processing report for the action is recorded.

    The outbox resumes the run when the result is in. A resume before that (by hand in the
    Prefect UI) just suspends again under the next key.
    """
    for attempt in count():
        outcome = action_outcome(action_key)
        if outcome.finished:
            return outcome
        suspend_flow_run(key=f"amazon-result-{attempt}", timeout=None)
    raise AssertionError("unreachable")
