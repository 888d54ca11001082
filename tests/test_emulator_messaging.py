"""Messaging API v1 over HTTP with python-amazon-sp-api's ``Messaging`` class: which actions an
order's state allows, sending them, refusals, and what the control API keeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sp_api.api import Messaging
from sp_api.auth import access_token_client as token_cache
from sp_api.base.exceptions import (
    SellingApiBadRequestException,
    SellingApiForbiddenException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
)

from emulator.server import EmulatorServer
from tests.test_emulator import (
    DE,
    GOOD_CREDENTIALS,
    UNKNOWN_ORDER,
    US,
    LocalMarketplace,
    http,
    token_client_for,
)

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

UNSHIPPED = "113-9000002-0000002"
SHIPPED = "113-9000006-0000006"
PENDING = "113-9000001-0000001"
ADDRESS_ERROR = "304-9000019-0000019"  # DE, parcel undeliverable: house number missing


def messaging_api(url: str, marketplace_id: str = US) -> Messaging:
    return Messaging(
        marketplace=LocalMarketplace(url, marketplace_id),
        credentials=GOOD_CREDENTIALS,
        auth_token_client_class=token_client_for(url),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def url(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()
    http.post(f"{server.url}/_emulator/seed-demo").raise_for_status()
    return server.url


def action_names(messaging: Messaging, order_id: str) -> list[str]:
    links = messaging.get_messaging_actions_for_order(order_id).payload["_links"]
    assert links["self"]["href"].startswith(f"/messaging/v1/orders/{order_id}?marketplaceIds=")
    return [action["name"] for action in links["actions"]]


def test_actions_follow_the_order_state(url: str) -> None:
    messaging = messaging_api(url)
    assert action_names(messaging, UNSHIPPED) == [
        "confirmOrderDetails",
        "unexpectedProblem",
        "attributes",
    ]
    assert action_names(messaging, SHIPPED) == [
        "confirmDeliveryDetails",
        "unexpectedProblem",
        "attributes",
    ]
    assert action_names(messaging, PENDING) == ["attributes"]
    german = messaging_api(url, DE)
    assert "confirmDeliveryDetails" in action_names(german, ADDRESS_ERROR)
    assert german.get_attributes(ADDRESS_ERROR).payload == {"buyer": {"locale": "de-DE"}}


def test_confirm_delivery_details_is_sent_and_kept(url: str) -> None:
    german = messaging_api(url, DE)
    text = "Bitte bestätigen Sie Ihre Lieferadresse: die Hausnummer fehlt."
    sent = german.create_confirm_delivery_details(ADDRESS_ERROR, body={"text": text})
    assert sent.payload == {} and sent.headers["x-amzn-RateLimit-Limit"] == "1"
    messaging_api(url).create_unexpected_problem(SHIPPED, body={"text": "Your parcel is delayed."})
    messaging_api(url).create_confirm_order_details(UNSHIPPED, body={"text": "Which colour?"})
    kept = http.get(f"{url}/_emulator/messages").json()
    assert [(m["orderId"], m["action"]) for m in kept] == [
        (ADDRESS_ERROR, "confirmDeliveryDetails"),
        (SHIPPED, "unexpectedProblem"),
        (UNSHIPPED, "confirmOrderDetails"),
    ]
    assert kept[0]["text"] == text and kept[0]["time"].endswith("Z")
    only = http.get(f"{url}/_emulator/messages", params={"orderId": SHIPPED}).json()
    assert [m["action"] for m in only] == ["unexpectedProblem"]


def test_action_not_open_for_the_order_is_refused_like_amazon(url: str) -> None:
    messaging = messaging_api(url)
    with pytest.raises(SellingApiForbiddenException) as refused:
        messaging.create_confirm_delivery_details(UNSHIPPED, body={"text": "Where to?"})
    assert refused.value.error[0]["message"] == "Invalid amazonOrderId and template combination."
    with pytest.raises(SellingApiForbiddenException):
        messaging.create_confirm_order_details(SHIPPED, body={"text": "Which colour?"})
    with pytest.raises(SellingApiNotFoundException):
        messaging.create_unexpected_problem(UNKNOWN_ORDER, body={"text": "Sorry."})
    with pytest.raises(SellingApiNotFoundException):
        messaging_api(url, DE).get_messaging_actions_for_order(SHIPPED)  # a US order
    assert http.get(f"{url}/_emulator/messages").json() == []


def test_text_is_checked_against_the_models_limits(url: str) -> None:
    messaging = messaging_api(url)
    for text in ("", "x" * 2001, "Write to buyer@example.com", "Click <a href='x'>here</a>"):
        with pytest.raises(SellingApiBadRequestException):
            messaging.create_unexpected_problem(SHIPPED, body={"text": text})
    messaging.create_unexpected_problem(SHIPPED, body={"text": "x" * 2000})
    assert len(http.get(f"{url}/_emulator/messages").json()) == 1


def test_forced_actions_and_quota(url: str) -> None:
    forced = http.put(
        f"{url}/_emulator/orders/{SHIPPED}/messaging-actions",
        json={"actions": ["unexpectedProblem"]},
    )
    assert forced.json() == {"actions": ["unexpectedProblem"], "forced": True}
    messaging = messaging_api(url)
    assert action_names(messaging, SHIPPED) == ["unexpectedProblem", "attributes"]
    with pytest.raises(SellingApiForbiddenException):
        messaging.create_confirm_delivery_details(SHIPPED, body={"text": "Address?"})
    back = http.delete(f"{url}/_emulator/orders/{SHIPPED}/messaging-actions").json()
    assert back["actions"] == ["confirmDeliveryDetails", "unexpectedProblem"]
    # Burst 5 per operation (each action above spent from its own bucket), refilled at 1/s.
    for _ in range(4):
        messaging.get_messaging_actions_for_order(SHIPPED)
    with pytest.raises(SellingApiRequestThrottledException):
        messaging.get_messaging_actions_for_order(SHIPPED)
