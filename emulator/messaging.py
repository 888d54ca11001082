"""Messaging API v1: the few template messages a seller may send a buyer about an order.

``getMessagingActionsForOrder`` lists (HAL ``_links.actions``) what may be sent for the order in
its present state; sending anything else is refused the way Amazon refuses it: 403
``Unauthorized`` "Invalid amazonOrderId and template combination." (a 403 that is not about the
token: clients must not log in again over it). The emulator offers, for merchant-fulfilled orders:

- UNSHIPPED: ``confirmOrderDetails``, ``unexpectedProblem``;
- PARTIALLY_SHIPPED: those and ``confirmDeliveryDetails``;
- SHIPPED: ``confirmDeliveryDetails``, ``unexpectedProblem``;
- PENDING, CANCELLED, UNFULFILLABLE and Amazon-fulfilled orders: nothing;

plus the ``attributes`` link (``GetAttributes``: the buyer's locale, to write in their language).
The control API can force an order's actions (Amazon does not always offer
``confirmDeliveryDetails``). A message's ``text`` must be 1 to 2000 characters (the model's
limits), without HTML or e-mail addresses (the model's descriptions); what was sent is kept and
listed by ``GET /_emulator/messages``. Buyers' messages cannot be read through SP-API.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from emulator.clock import iso_precise
from emulator.errors import ApiError, invalid_input, not_found
from emulator.orders import ORDER_ID, fulfillment_status, marketplace_of
from emulator.runtime import Emulator, emulator_of, query_list, sp_api_call
from emulator.spec import load_model

#: Message actions the emulator implements: action name -> (operation id, request definition).
ACTIONS: dict[str, tuple[str, str]] = {
    "confirmDeliveryDetails": (
        "createConfirmDeliveryDetails",
        "CreateConfirmDeliveryDetailsRequest",
    ),
    "unexpectedProblem": ("createUnexpectedProblem", "CreateUnexpectedProblemRequest"),
    "confirmOrderDetails": ("createConfirmOrderDetails", "CreateConfirmOrderDetailsRequest"),
}
ACTIONS_BY_STATUS: dict[str, tuple[str, ...]] = {
    "UNSHIPPED": ("confirmOrderDetails", "unexpectedProblem"),
    "PARTIALLY_SHIPPED": ("confirmOrderDetails", "confirmDeliveryDetails", "unexpectedProblem"),
    "SHIPPED": ("confirmDeliveryDetails", "unexpectedProblem"),
}
#: The buyer's language of preference by marketplace (GetAttributes), unless the control API set
#: one for the order: the storefront's main language and country (the languages Henpin's
#: henpin/marketplaces.py records; the model's examples of the tag are "en-US", "zh-CN", "en-GB").
LOCALES = {
    "ATVPDKIKX0DER": "en-US",
    "A2EUQ1WTGCTBG2": "en-CA",
    "A1F83G8C2ARO7P": "en-GB",
    "A1PA6795UKMFR9": "de-DE",
    "A13V1IB3VIYZZH": "fr-FR",
    "APJ6JRA9NG5V4": "it-IT",
    "A1RKKUPIHCS9HS": "es-ES",
    "A1VC38T7YXB528": "ja-JP",
    "A1AM78C64UM0Y8": "es-MX",
    "A2Q3Y263D00KWC": "pt-BR",
    "A28R8C7NBKEWEA": "en-IE",
    "A1805IZSGTT6HS": "nl-NL",
    "AMEN7PMS3EDWL": "fr-BE",
    "A2NODRKZP88ZB9": "sv-SE",
    "A1C3SOZRARQ6R3": "pl-PL",
    "A33AVAJ2PDY3EV": "tr-TR",
    "AE08WJ6YKNBMC": "en-ZA",
    "A2VIGQ35RCS4UG": "en-AE",
    "A17E79C6D8DWNP": "ar-SA",
    "ARBP9OOSHTCHU": "ar-EG",
    "A21TJRUUN4KGV": "en-IN",
    "A39IBJ37TRP1C6": "en-AU",
    "A19VAU5U5O7RUS": "en-SG",
}
_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
TEXT_LIMITS = (1, 2000)


def text_limits(action: str) -> tuple[int, int]:
    """(minLength, maxLength) of the action's ``text``, from the model when it is available."""
    model = load_model("messaging")
    if model is None:
        return TEXT_LIMITS
    text = model["definitions"][ACTIONS[action][1]]["properties"]["text"]
    return int(text.get("minLength", TEXT_LIMITS[0])), int(text.get("maxLength", TEXT_LIMITS[1]))


def available_actions(order: dict[str, Any], overrides: dict[str, list[str]]) -> list[str]:
    """The message actions Amazon offers for the order now."""
    if order["orderId"] in overrides:
        return list(overrides[order["orderId"]])
    if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON":
        return []
    return list(ACTIONS_BY_STATUS.get(fulfillment_status(order) or "", ()))


def _marketplace(request: Request) -> str:
    # python-amazon-sp-api also sends MarketplaceId, MarketplaceIds, marketplace_ids: only
    # marketplaceIds is the model's parameter.
    values = query_list(request, "marketplaceIds")
    if not values:
        raise invalid_input("marketplaceIds is required.")
    if len(values) > 1:
        raise invalid_input("You can only specify one marketplace.")
    return values[0]


def _order(emulator: Emulator, order_id: str, marketplace_id: str) -> dict[str, Any]:
    if not ORDER_ID.match(order_id):
        raise invalid_input(
            f"Invalid amazonOrderId {order_id!r}.",
            "An Amazon order id has the form 123-1234567-1234567.",
        )
    order = emulator.state.orders.get(order_id)
    if order is None or marketplace_of(order) != marketplace_id:
        raise not_found(f"Order {order_id} was not found in marketplace {marketplace_id}.")
    return order


def _href(order_id: str, tail: str, marketplace_id: str) -> str:
    return f"/messaging/v1/orders/{order_id}{tail}?marketplaceIds={marketplace_id}"


def get_actions(emulator: Emulator, order_id: str, marketplace_id: str) -> dict[str, Any]:
    """getMessagingActionsForOrder: HAL links to what may be sent, and to the buyer's attributes."""
    order = _order(emulator, order_id, marketplace_id)
    actions = [
        {"href": _href(order_id, f"/messages/{name}", marketplace_id), "name": name}
        for name in available_actions(order, emulator.state.messaging_overrides)
    ]
    actions.append({"href": _href(order_id, "/attributes", marketplace_id), "name": "attributes"})
    return {"_links": {"actions": actions, "self": {"href": _href(order_id, "", marketplace_id)}}}


def buyer_locale(emulator: Emulator, order: dict[str, Any]) -> str:
    """The buyer's language of preference: set for the order by the control API, else the
    marketplace's."""
    forced = emulator.state.buyer_locales.get(order["orderId"])
    return forced or LOCALES.get(marketplace_of(order) or "", "en-US")


def get_attributes(emulator: Emulator, order_id: str, marketplace_id: str) -> dict[str, Any]:
    """GetAttributes: the buyer's language of preference."""
    order = _order(emulator, order_id, marketplace_id)
    return {"buyer": {"locale": buyer_locale(emulator, order)}}


def _text(raw: bytes, action: str) -> str:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise invalid_input("The request body is not valid JSON.") from None
    # python-amazon-sp-api adds marketplaceIds/MarketplaceIds to the body: extra keys are ignored.
    text = body.get("text") if isinstance(body, dict) else None
    shortest, longest = text_limits(action)
    if not isinstance(text, str) or not shortest <= len(text) <= longest:
        raise invalid_input(f"text must be between {shortest} and {longest} characters.")
    if _HTML.search(text):
        raise invalid_input("text must not contain HTML.")
    if _EMAIL.search(text):
        raise invalid_input("text must not contain e-mail addresses.")
    return text


def send_message(
    emulator: Emulator, order_id: str, marketplace_id: str, action: str, text: str, now: datetime
) -> dict[str, Any]:
    """createConfirmDeliveryDetails & co.: send if the action is open for the order; keep it."""
    order = _order(emulator, order_id, marketplace_id)
    if action not in available_actions(order, emulator.state.messaging_overrides):
        raise ApiError(
            403,
            "Unauthorized",
            "Invalid amazonOrderId and template combination.",
            f"{action} is not available for order {order_id} "
            f"({fulfillment_status(order)}); see getMessagingActionsForOrder.",
        )
    emulator.state.messages.append(
        {
            "orderId": order_id,
            "action": action,
            "text": text,
            "time": iso_precise(now),
            "marketplaceId": marketplace_id,
        }
    )
    return {}


def router() -> APIRouter:
    """getMessagingActionsForOrder, GetAttributes and the three message operations."""
    routes = APIRouter()

    @routes.get("/messaging/v1/orders/{order_id}")
    async def actions_route(request: Request, order_id: str) -> Response:
        emulator = emulator_of(request)
        return await sp_api_call(
            request,
            "getMessagingActionsForOrder",
            lambda now: (200, get_actions(emulator, order_id, _marketplace(request))),
        )

    @routes.get("/messaging/v1/orders/{order_id}/attributes")
    async def attributes_route(request: Request, order_id: str) -> Response:
        emulator = emulator_of(request)
        return await sp_api_call(
            request,
            "GetAttributes",
            lambda now: (200, get_attributes(emulator, order_id, _marketplace(request))),
        )

    def message_route(action: str, operation_id: str) -> None:
        @routes.post(f"/messaging/v1/orders/{{order_id}}/messages/{action}", name=operation_id)
        async def send_route(request: Request, order_id: str) -> Response:
            emulator, raw = emulator_of(request), await request.body()

            def operation(now: datetime) -> tuple[int, dict[str, Any]]:
                marketplace_id = _marketplace(request)
                text = _text(raw, action)
                return 201, send_message(emulator, order_id, marketplace_id, action, text, now)

            return await sp_api_call(request, operation_id, operation)

    for action, (operation_id, _) in ACTIONS.items():
        message_route(action, operation_id)
    return routes
