"""Amazon actions of a case, through the durable outbox: queue one, then read its outcome."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from henpin.domain import ActionKind, ActionStatus, CancelOrder, FeedType, FulfillmentStatus
from henpin.store.db import session_scope
from henpin.store.models import Action, Feed
from tasks import outbox
from tasks.kinds import amazon_task, store_task
from tasks.orders import adapter
from tasks.store import store_url

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
    case_id: int, order_id: str, marketplace_id: str | None = None
) -> Queued:
    """Re-read the order right before acting (in its marketplace's region, when known); queue
    the BuyerCanceled cancellation only if it can still be cancelled. The outbox key makes a
    second attempt a no-op."""
    order = adapter().get_order(order_id, marketplace_id=marketplace_id)
    if order.fulfillment_status not in CANCELLABLE:
        return Queued(
            queued=False,
            order_status=order.fulfillment_status.value,
            reason=f"the order is now {order.fulfillment_status.value}",
        )
    key = f"case-{case_id}:cancel:{order_id}"
    # Cancel the items the buyer asked to cancel (all of them when the request names none).
    asked = [i.order_item_id for i in order.items if i.cancel_requested_by_buyer]
    payload = CancelOrder(
        order_id=order_id, order_item_ids=asked or [i.order_item_id for i in order.items]
    )
    outbox.enqueue(
        store_url(),
        key=key,
        case_id=case_id,
        kind=ActionKind.CANCEL_ORDER,
        feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
        marketplace_id=order.marketplace_id,
        payload=payload,
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
