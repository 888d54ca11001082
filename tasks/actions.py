"""Amazon actions of a case, through the durable outbox: queue one, then read its outcome."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from henpin.cases.part_cancellation import open_items, requested_part
from henpin.context import adapter, store_url
from henpin.domain import (
    ActionKind,
    ActionStatus,
    CancelOrder,
    ClosesCase,
    FeedType,
    FulfillmentStatus,
)
from henpin.store.db import session_scope
from henpin.store.models import Action, Feed
from tasks.kinds import amazon_task, store_task
from tasks.outbox_door import store_action

CANCELLABLE = {FulfillmentStatus.PENDING, FulfillmentStatus.UNSHIPPED}


class Queued(BaseModel):
    """Whether the action went into the outbox, and if not, what changed on the order."""

    queued: bool
    action_key: str | None = None
    order_status: str
    reason: str = ""


class ActionOutcome(BaseModel):
    key: str
    status: ActionStatus
    amazon_feed_id: str | None = None
    result_code: str | None = None
    result_message: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (ActionStatus.DONE, ActionStatus.FAILED)


@amazon_task("queue-cancellation")
def queue_cancellation_if_unchanged(
    case_id: int,
    order_id: str,
    marketplace_id: str | None = None,
    closes: ClosesCase | None = None,
) -> Queued:
    """Re-read the order right before acting (in its marketplace's region, when known); queue
    the BuyerCanceled cancellation only if it can still be cancelled, with how the case ends
    once Amazon confirms it (`closes`). The outbox key makes a second attempt a no-op."""
    order = adapter().get_order(order_id, marketplace_id=marketplace_id)
    if order.fulfillment_status not in CANCELLABLE:
        return Queued(
            queued=False,
            order_status=order.fulfillment_status.value,
            reason=f"the order is now {order.fulfillment_status.value}",
        )
    if requested_part(order):
        # Amazon cancels part of an order by an order adjustment once the rest shipped
        # (henpin/cases/part_cancellation.py); the acknowledgement is for the whole order.
        return Queued(
            queued=False,
            order_status=order.fulfillment_status.value,
            reason="the buyer now asks to cancel only part of the order",
        )
    key = f"case-{case_id}:cancel:{order_id}"
    # The whole order: every item not cancelled yet (the buyer's request covers them all).
    payload = CancelOrder(
        order_id=order_id, order_item_ids=[i.order_item_id for i in open_items(order)]
    )
    store_action(
        key=key,
        case_id=case_id,
        kind=ActionKind.CANCEL_ORDER,
        feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
        marketplace_id=order.marketplace_id,
        payload=payload,
        closes_case=closes,
    )
    return Queued(queued=True, action_key=key, order_status=order.fulfillment_status.value)


@store_task("read-action-outcome", fresh=True)
def action_outcome(action_key: str) -> ActionOutcome:
    """Where the outbox action stands now (done/failed carry Amazon's processing result)."""
    with session_scope(store_url()) as s:
        row = s.execute(
            select(Action, Feed.amazon_feed_id)
            .outerjoin(Feed, Action.feed_id == Feed.id)
            .where(Action.key == action_key)
        ).one()
        action, feed_id = row
        return ActionOutcome(
            key=action.key,
            status=ActionStatus(action.status),
            amazon_feed_id=feed_id,
            result_code=action.result_code,
            result_message=action.result_message,
        )
