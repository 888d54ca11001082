"""Messages to buyers through the durable outbox: Amazon's Messaging API and e-mail replies.

A message is stored under an idempotency key before it is sent, so a resumed or retried flow
never writes to a buyer twice. Texts are written in the buyer's language (`read_buyer_language`).
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from henpin.amazon import AmazonAuthError, AmazonPayloadError, AmazonRequestRejected
from henpin.context import adapter, store_url
from henpin.domain import ActionKind, BuyerMessage, CaseType, EmailMessage, Order
from henpin.languages import buyer_language
from henpin.policy import CancelByMessagePolicy
from henpin.store.db import session_scope
from henpin.store.models import Case
from tasks.kinds import amazon_task, store_task
from tasks.outbox_door import store_action


class BuyerLanguage(BaseModel):
    """The buyer's locale as Amazon gave it (None: not given) and the language to write in."""

    locale: str | None
    language: str


@amazon_task("read-buyer-language")
def read_buyer_language(order: Order) -> BuyerLanguage:
    """The language to write to the buyer in (see `buyer_language_for`)."""
    return buyer_language_for(order)


def buyer_language_for(order: Order) -> BuyerLanguage:
    """The buyer's language of preference (Messaging API GetAttributes), which Amazon asks
    sellers to write in; the marketplace's language when Amazon does not say or refuses."""
    try:
        locale = adapter().buyer_locale(order.order_id, order.marketplace_id)
    except AmazonAuthError:
        raise  # Henpin's access itself: not a question of language
    except (AmazonRequestRejected, AmazonPayloadError):
        locale = None
    return BuyerLanguage(locale=locale, language=buyer_language(locale, order.marketplace_id))


@store_task("queue-buyer-message")
def queue_buyer_message(case_id: int, purpose: str, order: Order, action: str, text: str) -> str:
    """Store an Amazon buyer message (e.g. confirmDeliveryDetails) in the outbox."""
    key = f"case-{case_id}:message:{purpose}:{order.order_id}"
    store_action(
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
    case_id: int, order: Order, policy: CancelByMessagePolicy, attempt: int, language: str
) -> str:
    """Reply to the buyer's message, in their language, asking them to cancel in Your Orders
    (a reminder from the second attempt on). Only for an order whose buyer e-mail Amazon gave:
    without it the operator answers in Seller Central instead."""
    if not order.buyer_email:
        raise ValueError(f"Amazon gave no buyer e-mail for order {order.order_id}: nothing queued")
    subject, body = policy.reply(order, reminder=attempt > 0, language=language)
    key = f"case-{case_id}:email:cancel-by-message-{attempt}:{order.order_id}"
    store_action(
        key=key,
        case_id=case_id,
        kind=ActionKind.SEND_EMAIL,
        feed_type=None,
        marketplace_id=order.marketplace_id,
        payload=EmailMessage(to=order.buyer_email, subject=subject, body=body),
    )
    return key


@store_task("find-linked-cancel-request", fresh=True)
def linked_cancel_request(case_id: int) -> int | None:
    """The buyer-cancel-request case ingestion opened for this cancel-by-message case's order
    while it was open (linked to it), if any: the buyer has already done what the reply asks,
    e.g. while the operator was still answering in Seller Central."""
    with session_scope(store_url()) as s:
        return s.scalar(
            select(Case.id).where(
                Case.type == CaseType.CANCEL_REQUEST.value, Case.parent_case_id == case_id
            )
        )
