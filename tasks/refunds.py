"""Refunds through the durable outbox (payment adjustment feeds, batched per marketplace).

Never refund twice: right before a refund is queued, Henpin reads what Amazon shows as already
refunded for the order (Finances API) and counts its own refunds of the order from every case;
the refund is cut to what the buyer paid minus all that, and not queued when nothing is left.
The outbox checks once more right before the feed is built (`henpin.outbox.refund_limits`).
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from henpin.cases.closing import refunded_by_amazon
from henpin.cases.money import (
    RefundFit,
    cut_by_another_case,
    nothing_left_message,
    over_paid_message,
    refund_cut_message,
    refund_total,
    unverified_message,
)
from henpin.context import adapter, store_url
from henpin.domain import (
    ActionKind,
    AlreadyRefunded,
    FeedType,
    Order,
    Outcome,
    Refund,
)
from henpin.outbox.refund_limits import HELD_CODES, fit_new_refund
from henpin.policy.reasons import Phrase
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event
from tasks.actions import ActionOutcome
from tasks.kinds import amazon_task, store_task
from tasks.outbox_door import store_action

#: How many times a case checks again when the outbox held its refund back (then it gives up).
MAX_REFUND_CHECKS = 3


class QueuedRefund(BaseModel):
    """What `queue_refund` did: the outbox key of the refund sent (None: nothing was left to
    refund, nothing queued), and how it compares with what was asked."""

    key: str | None
    fit: RefundFit

    @property
    def nothing_left_outcome(self) -> Outcome:
        """How the case ends when nothing was left to refund (or nothing could be checked:
        then a person, the owner, decides)."""
        if self.fit.unverified:
            return Outcome.ESCALATED
        return Outcome.REFUNDED_BY_AMAZON if self.fit.by_amazon else Outcome.ALREADY_REFUNDED

    @property
    def nothing_left_message(self) -> str:
        return nothing_left_message(self.fit)


def refund_purpose(purpose: str, check: int) -> str:
    """The outbox purpose of a case's refund at its n-th check (the first keeps the old key)."""
    return purpose if check == 1 else f"{purpose}-check{check}"


def held_back(outcome: ActionOutcome) -> bool:
    """Did the outbox keep this refund back because part of it was already refunded?"""
    return outcome.result_code in HELD_CODES


@amazon_task("read-already-refunded", fresh=True)
def read_already_refunded(order_id: str, marketplace_id: str) -> AlreadyRefunded:
    """What Amazon shows as refunded for the order, by anyone (listFinancialEventsByOrderId)."""
    return adapter().refunds_for_order(order_id, marketplace_id=marketplace_id)


@store_task("queue-refund")
def queue_refund(
    case_id: int,
    purpose: str,
    refund: Refund,
    order: Order,
    already: AlreadyRefunded,
    done: Outcome,
) -> QueuedRefund:
    """Store the refund in the outbox under a key of its own (the same call twice: one refund),
    cut to what is left to refund, with how the case ends (`done`) once Amazon confirms it; a
    cut is written on the case's timeline with both amounts."""
    url = store_url()
    key = f"case-{case_id}:refund:{purpose}:{refund.order_id}"
    with session_scope(url) as s:
        stored = s.scalar(select(Action.payload).where(Action.key == key))
    if stored is not None:  # queued before (a re-run of the flow): the same refund, unchanged
        queued = Refund.model_validate(stored)
        asked, sent = refund_total(refund), refund_total(queued)
        return QueuedRefund(
            key=key,
            fit=RefundFit(asked=asked, refund=queued, sent=sent, by_amazon=None, before=None),
        )
    fit = fit_new_refund(url, order, refund, already)
    if fit.unverified:
        _hold_for_a_person(url, case_id, fit)
    elif cut_by_another_case(fit):
        _flag_over_paid(url, case_id, fit)
    if fit.refund is None:
        return QueuedRefund(key=None, fit=fit)
    store_action(
        key=key,
        case_id=case_id,
        kind=ActionKind.REFUND,
        feed_type=FeedType.PAYMENT_ADJUSTMENT,
        marketplace_id=order.marketplace_id,
        payload=fit.refund,
        closes_case=refunded_by_amazon(done, refund_total(fit.refund)),
    )
    if fit.cut:
        with session_scope(url) as s:
            s.add(
                Event(
                    case_id=case_id,
                    kind="refund-reduced",
                    message=refund_cut_message(fit),
                    data={
                        "asked": fit.asked.model_dump(mode="json"),
                        "sent": fit.sent.model_dump(mode="json") if fit.sent else None,
                        "already_refunded": fit.before.model_dump(mode="json")
                        if fit.before
                        else None,
                        "by_amazon": fit.by_amazon.model_dump(mode="json")
                        if fit.by_amazon
                        else None,
                    },
                )
            )
    return QueuedRefund(key=key, fit=fit)


def _flag_over_paid(url: str, case_id: int, fit: RefundFit) -> None:
    """Another case of the order refunded these items first: this case asked for more than the
    buyer paid in all. What is left (if anything) still goes; a person is told, with the
    figures."""
    _flag(
        url,
        case_id,
        "needs-attention",
        over_paid_message(fit),
        {
            "asked": fit.asked.model_dump(mode="json"),
            "sent": fit.sent.model_dump(mode="json") if fit.sent else None,
            "already_refunded": fit.before.model_dump(mode="json") if fit.before else None,
        },
    )


def _hold_for_a_person(url: str, case_id: int, fit: RefundFit) -> None:
    """Part of the refund could not be checked against what was paid: flag the case and say
    why on its timeline (the rest, if any, still goes)."""
    _flag(
        url,
        case_id,
        "refund-unverified",
        unverified_message(fit),
        {"unverified": fit.unverified, "asked": fit.asked.model_dump(mode="json")},
    )


def _flag(url: str, case_id: int, kind: str, why: Phrase, data: dict[str, object]) -> None:
    """Flag the case "needs attention" and say why on its timeline."""
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        if case is not None:
            case.flag_attention(why)
        data = {**data, "attention": why.as_json()}
        s.add(Event(case_id=case_id, kind=kind, message=why.text, data=data))
