"""Never refund twice: what an order's refunds may still give back, from Amazon's financial events
and Henpin's own outbox, checked when a refund is queued and again before its feed is built.

Henpin's own refunds of an order (any case) are its outbox's refund actions: `done` and
`submitted` ones are sent (applied at Amazon, or maybe; they show in its financial events once
posted), `pending` ones are not in a feed yet. Failed ones gave nothing back. Plain functions; `tasks.refunds` wraps the
queue-time check in Prefect tasks and `tasks.outbox` calls the send-time check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from henpin.cases.money import RefundedBefore, RefundFit, fit_refund
from henpin.domain import ActionKind, ActionStatus, AlreadyRefunded, Order, Refund
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, utcnow
from tasks.amazon import AmazonAdapter, AmazonError

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


def hold_back_overpaying_refunds(
    store_url: str, adapter: AmazonAdapter, marketplace_id: str, limit: int
) -> bool:
    """The send-time check, right before the payment adjustment feed is built: each pending
    refund of the marketplace is held against Amazon's financial events (read now) and Henpin's
    other refunds of its order. One that would give back more than is left is not sent: it
    fails with `HELD_ALREADY_REFUNDED` or `HELD_WOULD_OVERPAY` and Amazon's figures, and its
    case checks again (the amount was an operator's or the policy's, so it is not silently cut
    here). False when Amazon could not be read (throttled, down, or the region's login or the
    Finances role refused): then no refund of the marketplace is sent now.
    What was paid comes from the order as the refund's case read it; a refund stored without a
    case (not from a case flow) has none, and is left to Amazon's own check.
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
    if not by_order:
        return True
    try:  # Amazon is read with no transaction open
        shown = {
            order_id: adapter.refunds_for_order(order_id, marketplace_id=marketplace_id)
            for order_id, order in orders.items()
            if order is not None
        }
    except AmazonError as exc:
        # A refused login (AmazonAuthError) too: this marketplace's refunds wait, the other
        # regions' feeds, messages and polls go on.
        log.warning("refunds in %s wait: Amazon's refunds cannot be read: %s", marketplace_id, exc)
        return False
    with session_scope(store_url) as s:
        for order_id, waiting in by_order.items():
            order = orders[order_id]
            if order is None:
                continue  # not a case's refund: no order on record, Amazon's own check decides
            sent, pending = henpin_refunds(s, order_id, exclude_ids=[i for i, _ in waiting])
            for action_id, refund in waiting:
                before = RefundedBefore.of(shown[order_id], sent, pending)
                fit = fit_refund(order, refund, before)
                if not fit.cut:
                    pending.append(refund)  # earlier refunds of the batch go first
                    continue
                _hold_back(s, action_id, fit)
    return True


def _hold_back(session: Session, action_id: int, fit: RefundFit) -> None:
    code = HELD_ALREADY_REFUNDED if fit.refund is None else HELD_WOULD_OVERPAY
    message = (
        f"Not sent: {fit.before} was already refunded on these items"
        + (f" ({fit.by_amazon} by Amazon)" if fit.by_amazon else "")
        + f"; this refund of {fit.asked} would give back more than was paid"
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
