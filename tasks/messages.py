"""Messages to buyers through the durable outbox: Amazon's Messaging API and e-mail replies.

A message is stored under an idempotency key before it is sent, so a resumed or retried flow
never writes to a buyer twice.
"""

from __future__ import annotations

from henpin.domain import ActionKind, BuyerMessage, EmailMessage, Order
from henpin.policy import CancelByMessagePolicy
from tasks import outbox
from tasks.kinds import store_task
from tasks.store import store_url


@store_task("queue-buyer-message")
def queue_buyer_message(case_id: int, purpose: str, order: Order, action: str, text: str) -> str:
    """Store an Amazon buyer message (e.g. confirmDeliveryDetails) in the outbox."""
    key = f"case-{case_id}:message:{purpose}:{order.order_id}"
    outbox.enqueue(
        store_url(),
        key=key,
        case_id=case_id,
        kind=ActionKind.SEND_MESSAGE,
        feed_type=None,
        marketplace_id=order.marketplace_id,
        payload=BuyerMessage(order_id=order.order_id, action=action, text=text),
    )
    return key


@store_task("queue-reply-email")
def queue_reply_email(
    case_id: int, order: Order, policy: CancelByMessagePolicy, attempt: int
) -> str:
    """Reply to the buyer's message, in the marketplace's language, asking them to cancel in
    Your Orders (a reminder from the second attempt on)."""
    subject, body = policy.reply(order, reminder=attempt > 0)
    key = f"case-{case_id}:email:cancel-by-message-{attempt}:{order.order_id}"
    outbox.enqueue(
        store_url(),
        key=key,
        case_id=case_id,
        kind=ActionKind.SEND_EMAIL,
        feed_type=None,
        marketplace_id=order.marketplace_id,
        payload=EmailMessage(to=order.buyer_email or "", subject=subject, body=body),
    )
    return key
