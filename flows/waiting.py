"""How a case flow waits: for a person's decision, or for Amazon's answer to an action.

Waiting suspends the flow run, so a waiting case holds no process. The deadline of a question is
kept in the case store; the housekeeper answers overdue questions with the question's timeout
choice (its named timeout path), through the same one-winner decision record.
"""

from __future__ import annotations

from itertools import count
from typing import TypeVar

from prefect.flow_runs import asuspend_flow_run

from henpin.cases.answers import OperatorAnswer
from henpin.questions import Question
from tasks.actions import ActionOutcome, action_outcome
from tasks.cases import mark_waiting, recorded_decision, settle_decision

Answer = TypeVar("Answer", bound=OperatorAnswer)


async def ask_operator(case_id: int, question: Question, answer_type: type[Answer]) -> Answer:
    """Wait (suspended) until the question has one valid recorded answer, and return it typed
    as the question's answer (who answered and when come with it, from the case store).

    An answer from the Prefect UI that is refused (invalid, over someone's claim, or while
    Prefect UI decisions are switched off) is not recorded and the question is asked again
    under the next step name (`refund-2`, ...), so every attempt keeps its own record.
    """
    answer_type.check_question(question)
    for attempt in count(1):
        asked = (
            question
            if attempt == 1
            else question.model_copy(update={"step": f"{question.step}-{attempt}"})
        )
        deadline = mark_waiting(case_id, asked)
        decided = recorded_decision(case_id, asked.step)
        if decided is None:
            answer = await asuspend_flow_run(
                wait_for_input=answer_type.with_initial_data(description=asked.markdown(deadline)),
                key=asked.step,
                timeout=None,
            )
            settled = settle_decision(case_id, asked, answer.model_dump(mode="json"))
        else:
            settled = settle_decision(case_id, asked, decided.run_input)
        if settled is not None:
            return answer_type.from_recorded(settled)
    raise AssertionError("unreachable")


async def wait_for_amazon(action_key: str) -> ActionOutcome:
    """Wait (suspended) until Amazon's answer to the outbox action is recorded.

    The housekeeper resumes the run when the result is in. A resume before that (by hand in
    the Prefect UI) just suspends again under the next key.
    """
    for attempt in count():
        outcome = action_outcome(action_key)
        if outcome.finished:
            return outcome
        await asuspend_flow_run(key=f"amazon-result-{attempt}", timeout=None)
    raise AssertionError("unreachable")
