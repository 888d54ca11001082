"""Messaging API v1: the templates Henpin sends and what a message's text may hold."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args
from urllib.parse import quote

from sp_api.api.messaging.messaging import Messaging

from henpin.amazon.transport import _host_header

# The Messaging API templates Henpin sends, and their operations.
MessageAction = Literal["confirmDeliveryDetails", "unexpectedProblem", "confirmOrderDetails"]
MESSAGE_OPERATIONS: dict[str, str] = {
    "confirmDeliveryDetails": "createConfirmDeliveryDetails",
    "unexpectedProblem": "createUnexpectedProblem",
    "confirmOrderDetails": "createConfirmOrderDetails",
}
assert set(MESSAGE_OPERATIONS) == set(get_args(MessageAction))
MESSAGE_TEXT_LIMITS = (1, 2000)  # the Messaging model's minLength/maxLength
_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
_EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def check_message_text(text: str) -> str:
    """A buyer message's text as Amazon's Messaging API accepts it, or ValueError saying why."""
    shortest, longest = MESSAGE_TEXT_LIMITS
    if not shortest <= len(text) <= longest:
        raise ValueError(
            f"a message to the buyer must be {shortest} to {longest} characters, "
            f"this one has {len(text)}"
        )
    if _HTML_TAG.search(text):
        raise ValueError("a message to the buyer must not contain HTML (Amazon refuses it)")
    if _EMAIL_ADDRESS.search(text):
        raise ValueError(
            "a message to the buyer must not contain e-mail addresses (Amazon refuses it)"
        )
    return text


class _Messaging(Messaging):
    """Messaging with the order's marketplace passed per call (the library uses the client's)."""

    @property
    def headers(self) -> dict[str, str]:
        return _host_header(self)

    def actions_for_order(self, order_id: str, marketplace_id: str) -> Any:
        return self._request(
            f"/messaging/v1/orders/{quote(order_id, safe='')}",
            params={"marketplaceIds": marketplace_id},
            add_marketplace=False,
        )

    def send(self, order_id: str, action: str, marketplace_id: str, text: str) -> Any:
        return self._request(
            f"/messaging/v1/orders/{quote(order_id, safe='')}/messages/{action}",
            data={"text": text, "method": "POST"},
            params={"marketplaceIds": marketplace_id},
            add_marketplace=False,
        )
