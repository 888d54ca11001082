"""Refunds through the durable outbox (payment adjustment feeds, batched per marketplace)."""

from __future__ import annotations

from henpin.domain import ActionKind, FeedType, Refund
from tasks import outbox
from tasks.kinds import store_task
from tasks.store import store_url


@store_task("queue-refund")
def queue_refund(case_id: int, purpose: str, refund: Refund, marketplace_id: str) -> str:
    """Store the refund in the outbox under a key of its own (the same call twice: one refund)."""
    key = f"case-{case_id}:refund:{purpose}:{refund.order_id}"
    outbox.enqueue(
        store_url(),
        key=key,
        case_id=case_id,
        kind=ActionKind.REFUND,
        feed_type=FeedType.PAYMENT_ADJUSTMENT,
        marketplace_id=marketplace_id,
        payload=refund,
    )
    return key
