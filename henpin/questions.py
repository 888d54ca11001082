"""What an operator reads when a case asks them something (inbox and Prefect UI Resume form)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES

CHOICE_LABELS = {
    "cancel": "Cancel the order with reason BuyerCanceled (does not count against your cancellation rate)",
    "keep_order": "Keep the order and ship it (the buyer withdrew the request, or you agreed with them)",
    "escalate": "Escalate to the owner; Henpin closes the case without acting",
}


def describe_cancel_request(order: Order, advice: dict[str, Any], deadline: datetime) -> str:
    """Markdown for the buyer-cancel-request decision."""
    m = MARKETPLACES.get(order.marketplace_id)
    value = order.value
    lines = [
        f"### Buyer asked to cancel order {order.order_id}",
        f"- Marketplace: {m.name if m else order.marketplace_id}",
        f"- Status: {order.fulfillment_status.value}",
        f"- Value: {value if value else 'unknown'}",
        f"- Buyer's reason: {order.buyer_cancel_reason or '(none given)'}",
        "- Items: "
        + "; ".join(
            f"{i.quantity} × {i.sku or i.asin} {i.title or ''}".strip() for i in order.items
        ),
        f"- Policy recommends **{advice.get('action')}** (rule `{advice.get('rule')}`): {advice.get('reason')}",
        f"- Answer by {deadline:%Y-%m-%d %H:%M} UTC",
        "",
        "Choices:",
        *(f"- `{k}`: {v}" for k, v in CHOICE_LABELS.items()),
    ]
    return "\n".join(lines)
