"""Reaching a buyer without Henpin: Seller Central's pages for writing to them."""

from __future__ import annotations

from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES


def seller_central_links(order: Order) -> dict[str, str]:
    """Where to answer the buyer without their e-mail address."""
    m = MARKETPLACES.get(order.marketplace_id)
    if m is None:
        return {}
    return {
        "Buyer-Seller Messages (Seller Central)": m.buyer_messages_page(),
        "Contact the buyer of this order (Seller Central)": m.contact_buyer_page(order.order_id),
        "Seller Central order": m.order_page(order.order_id),
    }
