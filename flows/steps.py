"""The steps every case flow shares: ask a person and wait for the answer, wait for Amazon's
answer to an action, refund and close, cancel as the buyer asked.

Waiting suspends the flow run, so a waiting case holds no process. The deadline of a question is
kept in the case store; the housekeeper answers overdue questions with the question's timeout
choice (its named timeout path), through the same one-winner decision record.
"""

from __future__ import annotations

from itertools import count
from typing import TypeVar

from prefect.flow_runs import asuspend_flow_run

from henpin.cases.answers import OperatorAnswer
from henpin.cases.closing import cancelled_by_amazon, refunded_by_amazon
from henpin.cases.money import refund_total
from henpin.cases.refund_outcomes import (
    HeldRefundDecision,
    refund_held_flag,
    refund_held_question,
    refund_not_made_message,
)
from henpin.domain import (
    ActionStatus,
    AlreadyRefunded,
    ClosesCase,
    FulfillmentStatus,
    Order,
    Outcome,
    Refund,
    ReturnRequest,
)
from henpin.questions import Question
from tasks.actions import ActionOutcome, action_outcome, queue_cancellation_if_unchanged
from tasks.amazon_refunds import with_returns_report
from tasks.cases import (
    close_case,
    flag_attention,
    mark_acting,
    mark_waiting,
    recorded_decision,
    settle_decision,
)
from tasks.refunds import (
    MAX_REFUND_CHECKS,
    held_back,
    queue_refund,
    read_already_refunded,
    refund_purpose,
)

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


def end_as_amazon_confirmed(case_id: int, closes: ClosesCase, result: ActionOutcome) -> Outcome:
    """Amazon confirmed the action: the case ends as declared when it was queued. The outbox
    closed it so already, when it recorded Amazon's result; this ends the run with it."""
    return close_case(case_id, closes.outcome, closes.said(result.amazon_feed_id))


async def refund_and_close(
    case_id: int,
    order: Order,
    refund: Refund,
    purpose: str,
    outcome: Outcome,
    *,
    returned: ReturnRequest | None = None,
) -> Outcome:
    """Refund through the outbox (payment adjustment feed) and close with Amazon's answer.

    Never refund twice: what was already refunded (by Amazon or another case of the order) is
    read first; nothing left closes the case without sending anything, a part left is sent.
    When the outbox's own check, right before the feed, keeps the refund back, check again.
    For a return (`returned`), the returns report's refunded amount counts too.
    """
    check = 0
    for round_ in count(1):
        for _ in range(MAX_REFUND_CHECKS):
            check += 1
            already = (
                already_refunded(case_id, returned, order)
                if returned is not None
                else read_already_refunded(order.order_id, order.marketplace_id)
            )
            queued = queue_refund(
                case_id, refund_purpose(purpose, check), refund, order, already, outcome
            )
            if queued.key is None:
                return close_case(case_id, queued.nothing_left_outcome, queued.nothing_left_message)
            sent = refund_total(queued.fit.refund or refund)
            closes = refunded_by_amazon(outcome, sent)  # as queue_refund stored it
            mark_acting(case_id, f"Refund of {sent} queued for Amazon.")
            result = await wait_for_amazon(queued.key)
            if result.status == ActionStatus.DONE:
                return end_as_amazon_confirmed(case_id, closes, result)
            if not held_back(result):
                return close_case(
                    case_id,
                    Outcome.AMAZON_REJECTED,
                    refund_not_made_message(
                        result.result_code, result.result_message, held_by_henpin=False
                    ),
                )
        # Held back at every check: never sent, so not Amazon's refusal. A person looks.
        flag = refund_held_flag(MAX_REFUND_CHECKS, result.result_code, result.result_message)
        flag_attention(case_id, flag)
        answer = await ask_operator(
            case_id, refund_held_question(order, flag, round_), HeldRefundDecision
        )
        flag_attention(case_id, flag, clear=True)
        if answer.choice == "escalate":
            return close_case(
                case_id,
                Outcome.ESCALATED,
                refund_not_made_message(
                    result.result_code, result.result_message, held_by_henpin=True
                )
                + f" Escalated by {answer.operator}: {answer.note}",
            )
    raise AssertionError("unreachable")


def already_refunded(case_id: int, ret: ReturnRequest, order: Order) -> AlreadyRefunded:
    """What was refunded on the order: Amazon's financial events, raised to the returns
    report's refunded amount for the returned item where the report shows more."""
    shown = read_already_refunded(order.order_id, order.marketplace_id)
    return with_returns_report(case_id, ret, order, shown)


async def cancel_as_buyer_requested(
    case_id: int,
    order_id: str,
    *,
    done: Outcome = Outcome.CANCELLED_BUYER_CANCELED,
    marketplace_id: str | None = None,
) -> Outcome:
    """Cancel with reason BuyerCanceled, unless the order changed since it was read; `done` is
    the outcome when Amazon confirms."""
    closes = cancelled_by_amazon(done)
    queued = queue_cancellation_if_unchanged(case_id, order_id, marketplace_id, closes)
    if not queued.queued:
        outcome = (
            Outcome.ALREADY_CANCELLED
            if queued.order_status == FulfillmentStatus.CANCELLED
            else Outcome.ORDER_CHANGED
        )
        return close_case(case_id, outcome, f"Did not cancel: {queued.reason}.")
    assert queued.action_key
    mark_acting(
        case_id, "Cancellation (BuyerCanceled) queued for Amazon's order acknowledgement feed."
    )
    result = await wait_for_amazon(queued.action_key)
    if result.status == ActionStatus.DONE:
        return end_as_amazon_confirmed(case_id, closes, result)
    return close_case(
        case_id,
        Outcome.AMAZON_REJECTED,
        f"Amazon did not cancel the order: {result.result_code or 'error'}: {result.result_message}",
    )
