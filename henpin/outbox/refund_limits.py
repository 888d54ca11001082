"""Never refund twice: what an order's refunds may still give back, from Amazon's financial events
and Henpin's own outbox, checked when a refund is queued and again before its feed is built.

Henpin's own refunds of an order (any case) are its outbox's refund actions: `done` and
`submitted` ones are sent (applied at Amazon, or maybe; they show in its financial events once
posted), `pending` ones are not in a feed yet. Failed ones gave nothing back. Plain functions; `tasks.refunds` wraps the
queue-time check in Prefect tasks and `henpin.outbox` calls the send-time check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from henpin.amazon import AmazonAdapter, AmazonError
from henpin.cases.money import RefundedBefore, RefundFit, fit_refund
from henpin.domain import ActionKind, ActionStatus, AlreadyRefunded, Order, Refund
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, utcnow

log = logging.getLogger(__name__)

#: `Action.result_code` of a refund the send-time check kept back (never sent to Amazon).
HELD_ALREADY_REFUNDED = "HENPIN_ALREADY_REFUNDED"  # nothing of it was left to refund
HELD_WOULD_OVERPAY = "HENPIN_WOULD_OVERPAY"  # part of it was already refunded
HELD_CODES = frozenset({HELD_ALREADY_REFUNDED, HELD_WOULD_OVERPAY})
COUNTED = (ActionStatus.PENDING.value, ActionStatus.SUBMITTED.value, ActionStatus.DONE.value)


def refund_key_pattern(order_id: str) -> str:
    """Every refund key of an order ends the same way (`tasks.refunds.queue_refund`)."""
    return f"%:refund:%:{order_id}"


def henpin_refunds(
    session: Session, order_id: str, *, exclude_ids: Sequence[int] = ()
) -> tuple[list[Refund], list[Refund]]:
    """Henpin's refunds of the order from every case: (sent: done, or in a feed Amazon may
    have applied already; pending: not in a feed yet). Failed ones gave nothing back."""
    rows = session.scalars(
        select(Action).where(
            Action.kind == ActionKind.REFUND.value,
            Action.key.like(refund_key_pattern(order_id)),
            Action.status.in_(COUNTED),
        )
    ).all()
    sent: list[Refund] = []
    pending: list[Refund] = []
    for action in rows:
        if action.id in exclude_ids or action.payload.get("order_id") != order_id:
            continue
        refund = Refund.model_validate(action.payload)
        (pending if action.status == ActionStatus.PENDING.value else sent).append(refund)
    return sent, pending


def fit_new_refund(
    store_url: str, order: Order, refund: Refund, shown: AlreadyRefunded
) -> RefundFit:
    """The queue-time check: the refund cut to what is left after Amazon's view and every
    refund Henpin has made or queued for the order."""
    with session_scope(store_url) as s:
        sent, pending = henpin_refunds(s, order.order_id)
    return fit_refund(order, refund, RefundedBefore.of(shown, sent, pending))


def _snapshot(session: Session, action: Action) -> Order | None:
    """The order a refund belongs to, as its case last read it (prices do not change)."""
    case = session.get(Case, action.case_id) if action.case_id is not None else None
    if case is None or not case.order_snapshot:
        return None
    return Order.model_validate(case.order_snapshot)


#: A send-time Finances read of an order is reused this long (well under the outbox's settle
#: time, `HENPIN_OUTBOX_SETTLE_S`, default 600 s). Amazon may take up to 48 hours to post a
#: refund anyway; Henpin's own refunds are counted from the outbox, never from this read.
#: Only send-time reads are reused: the queue-time read is not, so an Amazon refund posted while
#: a refund waits in the outbox is still seen before its feed.
REFUND_READ_MAX_AGE_S = 60.0
FINANCES_OPERATION = "listFinancialEventsByOrderId"


@dataclass(frozen=True)
class SendTimeCheck:
    """What the send-time check cleared of a marketplace's pending refunds."""

    cleared: list[int]  # ids of the refunds to put in the feed now
    unread: int  # refunds of orders the Finances quota left unread: they wait for the next round


def hold_back_overpaying_refunds(
    store_url: str, adapter: AmazonAdapter, marketplace_id: str, limit: int
) -> SendTimeCheck | None:
    """The send-time check, right before the payment adjustment feed is built: each pending
    refund of the marketplace is held against Amazon's financial events and Henpin's other
    refunds of its order. One that would give back more than is left is not sent: it fails with
    `HELD_ALREADY_REFUNDED` or `HELD_WOULD_OVERPAY` and Amazon's figures, and its case checks
    again (the amount was an operator's or the policy's, so it is not silently cut here).

    Returns the ids of the pending refunds cleared to go in the feed now (`SendTimeCheck`): only
    orders read within Amazon's Finances quota are checked (the first may wait for one request's
    quota, the others only while the quota has a request ready; a read of the last
    `REFUND_READ_MAX_AGE_S` seconds is reused); the other refunds stay pending for the next
    round, and how many they are is returned too (the sender makes no other feed of them now).
    None when Amazon could not be read (throttled, down, or the region's login or the Finances
    role refused): then no refund of the marketplace is sent now. What was paid comes from the
    order as the refund's case read it; a refund stored without a case (not from a case flow)
    has none, and is left to Amazon's own check.
    """
    with session_scope(store_url) as s:
        waiting_actions = s.scalars(
            select(Action)
            .where(
                Action.kind == ActionKind.REFUND.value,
                Action.status == ActionStatus.PENDING.value,
                Action.marketplace_id == marketplace_id,
            )
            .order_by(Action.id)
            .limit(limit)
        ).all()
        by_order: dict[str, list[tuple[int, Refund]]] = {}
        orders: dict[str, Order | None] = {}
        for action in waiting_actions:
            refund = Refund.model_validate(action.payload)
            by_order.setdefault(refund.order_id, []).append((action.id, refund))
            orders[refund.order_id] = orders.get(refund.order_id) or _snapshot(s, action)
    try:  # Amazon is read with no transaction open
        shown = _read_within_quota(adapter, marketplace_id, orders)
    except AmazonError as exc:
        # A refused login (AmazonAuthError) too: this marketplace's refunds wait, the other
        # regions' feeds, messages and polls go on.
        log.warning("refunds in %s wait: Amazon's refunds cannot be read: %s", marketplace_id, exc)
        return None
    cleared: list[int] = []
    unread = 0
    with session_scope(store_url) as s:
        for order_id, waiting in by_order.items():
            order = orders[order_id]
            if order is None:  # not a case's refund: no order on record, Amazon's own check
                cleared.extend(i for i, _ in waiting)
                continue
            if order_id not in shown:
                unread += len(waiting)
                continue  # not read this round (quota): next round
            sent, pending = henpin_refunds(s, order_id, exclude_ids=[i for i, _ in waiting])
            for action_id, refund in waiting:
                before = RefundedBefore.of(shown[order_id], sent, pending)
                fit = fit_refund(order, refund, before)
                if not fit.cut:
                    pending.append(refund)  # earlier refunds of the batch go first
                    cleared.append(action_id)
                    continue
                _hold_back(s, action_id, fit)
    return SendTimeCheck(cleared, unread)


def _read_within_quota(
    adapter: AmazonAdapter, marketplace_id: str, orders: dict[str, Order | None]
) -> dict[str, AlreadyRefunded]:
    """Amazon's refunds of as many of these orders as the Finances quota allows now."""
    shown: dict[str, AlreadyRefunded] = {}
    called = False
    for order_id, order in orders.items():
        if order is None:
            continue
        age = adapter.refund_read_age(order_id, marketplace_id)
        reused = age is not None and age <= REFUND_READ_MAX_AGE_S
        if not reused and called and adapter.quota_wait(FINANCES_OPERATION, marketplace_id) > 0:
            continue  # no request ready: this order waits for the next round
        shown[order_id] = adapter.refunds_for_order(
            order_id, marketplace_id=marketplace_id, max_age_s=REFUND_READ_MAX_AGE_S
        )
        called = called or not reused
    return shown


def _hold_back(session: Session, action_id: int, fit: RefundFit) -> None:
    code = HELD_ALREADY_REFUNDED if fit.refund is None else HELD_WOULD_OVERPAY
    refunded = (
        f"{fit.before} was already refunded on these items"
        + (f" ({fit.by_amazon} by Amazon)" if fit.by_amazon else "")
        if fit.before
        else "nothing was refunded on these items yet"
    )
    if fit.unverified:  # what was paid is unknown: say so, not "more than was paid"
        message = (
            f"Not sent: {refunded}, and this refund of {fit.asked} cannot be checked against "
            "what was paid: " + "; ".join(fit.unverified) + "."
        )
    else:
        message = (
            f"Not sent: {refunded}; this refund of {fit.asked} would give back more than was "
            "paid as the case's order shows it"
            + (f" (at most {fit.sent} is left)." if fit.sent else " (nothing is left).")
        )
    moved = session.execute(
        update(Action)
        .where(Action.id == action_id, Action.status == ActionStatus.PENDING.value)
        .values(
            status=ActionStatus.FAILED.value,
            result_code=code,
            result_message=message,
            updated_at=utcnow(),
        )
    )
    if moved.rowcount == 1:  # type: ignore[attr-defined]
        log.warning("refund action %s held back: %s", action_id, message)
