"""How the seller's software may reach a buyer: the buyer's e-mail, language and own messages.

- **The buyer's e-mail needs a restricted role.** Orders API 2026-01-01 gives
  ``buyer.buyerEmail`` (with ``includedData=BUYER``) only to an application with the restricted
  Direct-to-Consumer Delivery role, and only for a merchant-fulfilled order that is UNSHIPPED,
  PARTIALLY_SHIPPED or SHIPPED ("Access Orders PII",
  https://developer-docs.amazon.com/sp-api/docs/access-orders-pii; no Restricted Data Token in
  2026-01-01). The emulator's application has no role until ``PUT /_emulator/application/roles``
  grants it; the demo account (``seed-demo``) has it. Without it the answer's ``buyer`` has no
  ``buyerEmail`` (its other fields stay).
- **The buyer's language** (Messaging API ``GetAttributes``: ``buyer.locale``) is the
  marketplace's usual locale unless the control API sets one for the order
  (``PUT /_emulator/orders/{orderId}/buyer-locale``), e.g. an English-speaking buyer on
  Amazon.co.jp.
- **Buyers' own messages** reach the seller by e-mail (Amazon's Buyer-Seller Messaging relay) and
  in Seller Central, never through SP-API. The control API keeps the ones a test or the demo
  says a buyer wrote (``POST``/``GET /_emulator/buyer-messages``), for a person or a script to
  bring into Henpin.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from emulator.clock import iso
from emulator.state import EmulatorState

DIRECT_TO_CONSUMER_DELIVERY = "DIRECT_TO_CONSUMER_DELIVERY"
KNOWN_ROLES = (DIRECT_TO_CONSUMER_DELIVERY,)
#: Order statuses whose buyer e-mail Amazon shows to an application with the role.
EMAIL_STATUSES = frozenset({"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"})
#: A language tag as GetAttributes gives it ("en-US", "zh-CN", "ja-JP").
LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-\d{3})?$")


def shows_buyer_email(order: dict[str, Any], roles: list[str]) -> bool:
    """Does Amazon give this application the order's buyer e-mail?"""
    fulfillment = order.get("fulfillment", {})
    return (
        DIRECT_TO_CONSUMER_DELIVERY in roles
        and fulfillment.get("fulfilledBy") == "MERCHANT"
        and fulfillment.get("fulfillmentStatus") in EMAIL_STATUSES
    )


def _restrict(answer: dict[str, Any], stored: dict[str, Any] | None, roles: list[str]) -> None:
    buyer = answer.get("buyer")
    if not isinstance(buyer, dict) or "buyerEmail" not in buyer:
        return
    if stored is None or not shows_buyer_email(stored, roles):
        answer["buyer"] = {k: v for k, v in buyer.items() if k != "buyerEmail"}


def restricted(
    answer: dict[str, Any], orders: dict[str, dict[str, Any]], roles: list[str]
) -> dict[str, Any]:
    """A searchOrders (``orders``) or getOrder (``order``) answer less the buyer e-mails the
    application may not see."""
    for order in [*answer.get("orders", []), *([answer["order"]] if "order" in answer else [])]:
        _restrict(order, orders.get(order.get("orderId", "")), roles)
    return answer


def parse_roles(body: Any) -> list[str] | str:
    """The roles of a ``PUT /_emulator/application/roles`` body, or what is wrong with it."""
    roles = body.get("roles") if isinstance(body, dict) else None
    if not isinstance(roles, list) or not all(r in KNOWN_ROLES for r in roles):
        return f'The body must be {{"roles": [...]}} with roles among {", ".join(KNOWN_ROLES)}.'
    return list(dict.fromkeys(roles))


def parse_locale(body: Any) -> str | None:
    """The locale of a ``PUT .../buyer-locale`` body (``{"locale": "en-US"}``), or None."""
    locale = body.get("locale") if isinstance(body, dict) else None
    return locale if isinstance(locale, str) and LOCALE.match(locale) else None


def parse_buyer_messages(
    body: Any, orders: dict[str, dict[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], str | None]:
    """Buyers' e-mails to the seller as the control API keeps them, or the first problem.

    Each needs ``orderId`` (an order the emulator has) and ``text``; ``subject`` (default
    "Message from an Amazon customer"), ``from`` (the order's buyer e-mail or a placeholder
    relay address) and ``receivedTime`` (default now) are optional.
    """
    if not isinstance(body, list):
        return [], "The body must be a JSON list of buyer messages."
    kept: list[dict[str, Any]] = []
    for index, raw in enumerate(body):
        where = f"Buyer message {index}"
        if not isinstance(raw, dict):
            return [], f"{where} must be an object."
        order = orders.get(str(raw.get("orderId")))
        if order is None:
            return [], f"{where}: no order {raw.get('orderId')!r} in the emulator."
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            return [], f"{where}: text is required."
        received = raw.get("receivedTime")
        if received is not None and not isinstance(received, str):
            return [], f"{where}: receivedTime must be an ISO 8601 date-time."
        buyer_email = order.get("buyer", {}).get("buyerEmail")
        kept.append(
            {
                "orderId": order["orderId"],
                "marketplaceId": order.get("salesChannel", {}).get("marketplaceId"),
                "from": raw.get("from") or buyer_email or "buyer@marketplace.example.invalid",
                "subject": raw.get("subject") or "Message from an Amazon customer",
                "text": text,
                "receivedTime": received or iso(now),
            }
        )
    return kept, None


def keep_buyer_messages(kept: list[dict[str, Any]], new: list[dict[str, Any]]) -> int:
    """Add buyer messages; the same order, subject and text again is not added twice."""
    seen = {(m["orderId"], m["subject"], m["text"]) for m in kept}
    added = 0
    for message in new:
        key = (message["orderId"], message["subject"], message["text"])
        if key not in seen:
            kept.append(message)
            seen.add(key)
            added += 1
    return added


def seed_buyer_contact(
    state: EmulatorState, roles: tuple[str, ...], messages: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """Grant roles and keep buyers' e-mails (the demo account's: its application has the
    Direct-to-Consumer Delivery role, one buyer asked by e-mail to cancel). Returns what
    seed-demo reports about the messages."""
    state.application_roles.extend(r for r in roles if r not in state.application_roles)
    parsed, problem = parse_buyer_messages(messages, state.orders, now)
    if problem is not None:
        return {"created": 0, "problem": problem}
    return {"created": keep_buyer_messages(state.buyer_messages, parsed)}
