"""Buyer contact in the emulator, over HTTP with python-amazon-sp-api: the buyer's e-mail only for
an application with the Direct-to-Consumer Delivery role, the buyer's language through
GetAttributes (checked against Amazon's model), and the e-mails buyers sent the seller."""

from __future__ import annotations

from typing import Any

import pytest
from sp_api.base.exceptions import SellingApiNotFoundException

import tests.test_emulator as emulator_tests
from tests.support import order_json
from tests.test_contract import validator
from tests.test_emulator import JP, US, US_PENDING, US_UNSHIPPED_HIGH, http, orders_api
from tests.test_emulator_messaging import messaging_api

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

ROLE = "DIRECT_TO_CONSUMER_DELIVERY"
DEMO_MESSAGE_ORDER = "304-9000011-0000011"  # DE, unshipped: the buyer asked by e-mail to cancel
ATTRIBUTES = ("/messaging/v1/orders/{amazonOrderId}/attributes", "get")
GET_ORDER = ("/orders/2026-01-01/orders/{orderId}", "get")

server = emulator_tests.server  # one emulator for the module
url = emulator_tests.url  # reset before each test


def control(url: str, method: str, path: str, **kw: Any) -> Any:
    answer = http.request(method, f"{url}/_emulator/{path}", **kw)
    answer.raise_for_status()
    return answer.json()


def assert_valid(name: str, operation: tuple[str, str], payload: dict[str, Any]) -> None:
    problems = [e.message for e in validator(name, operation, 200).iter_errors(payload)]
    assert not problems, problems


def buyer_of(url: str, order_id: str) -> dict[str, Any]:
    order = orders_api(url).get_order(order_id, includedData=["BUYER"]).payload
    assert_valid("orders_2026-01-01.json", GET_ORDER, order)
    buyer: dict[str, Any] = order["order"]["buyer"]
    return buyer


def test_buyer_email_only_with_the_restricted_role(url: str) -> None:
    ours = order_json("113-0000031-0000031", cancel_reason=None)
    ours["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": "buyer-31@marketplace.amazon.com"}
    control(url, "POST", "orders", json=[ours])
    assert control(url, "GET", "application/roles") == {"roles": [], "known": [ROLE]}
    assert buyer_of(url, "113-0000031-0000031") == {"buyerName": "Test Buyer"}
    found = orders_api(url).search_orders(createdAfter="2020-01-01T00:00:00Z", includedData="BUYER")
    assert all("buyerEmail" not in o["buyer"] for o in found.payload["orders"])

    assert control(url, "PUT", "application/roles", json={"roles": [ROLE]})["roles"] == [ROLE]
    assert buyer_of(url, "113-0000031-0000031")["buyerEmail"] == "buyer-31@marketplace.amazon.com"
    # Even with the role, Amazon shows it only for UNSHIPPED, PARTIALLY_SHIPPED, SHIPPED orders.
    control(
        url,
        "PATCH",
        "orders/113-0000031-0000031",
        json={"fulfillment": {"fulfillmentStatus": "PENDING"}},
    )
    assert "buyerEmail" not in buyer_of(url, "113-0000031-0000031")

    refused = http.put(f"{url}/_emulator/application/roles", json={"roles": ["PII_ALL"]})
    assert refused.status_code == 400 and ROLE in refused.json()["error"]
    control(url, "POST", "reset")
    assert control(url, "GET", "application/roles")["roles"] == []


def test_demo_account_has_the_role_and_a_buyer_asking_to_cancel_by_email(url: str) -> None:
    seeded = control(url, "POST", "seed-demo")
    assert seeded["buyerMessages"] == {"created": 1}
    assert control(url, "GET", "application/roles")["roles"] == [ROLE]
    assert buyer_of(url, US_UNSHIPPED_HIGH)["buyerEmail"].endswith("@marketplace.example.invalid")
    assert "buyerEmail" not in buyer_of(url, US_PENDING)  # PENDING: not shown even so

    [message] = control(url, "GET", "buyer-messages")
    assert message["orderId"] == DEMO_MESSAGE_ORDER and "stornieren" in message["text"]
    assert message["from"] == "demo-buyer-11@marketplace.example.invalid"
    assert control(url, "POST", "seed-demo")["buyerMessages"] == {"created": 0}  # not twice
    assert control(url, "GET", "buyer-messages", params={"orderId": US_PENDING}) == []

    added = control(
        url, "POST", "buyer-messages", json=[{"orderId": US_PENDING, "text": "Please cancel."}]
    )
    assert added["created"] == 1 and added["messages"][0]["marketplaceId"] == US
    bad = http.post(f"{url}/_emulator/buyer-messages", json=[{"orderId": "113-0000000-0000000"}])
    assert bad.status_code == 400


def test_get_attributes_gives_the_buyers_language_as_the_model_says(url: str) -> None:
    control(url, "POST", "seed-demo")
    german = messaging_api(url, "A1PA6795UKMFR9")
    answer = german.get_attributes(DEMO_MESSAGE_ORDER).payload
    assert answer == {"buyer": {"locale": "de-DE"}}
    assert_valid("messaging.json", ATTRIBUTES, answer)
    assert messaging_api(url, JP).get_attributes("503-9000012-0000012").payload == {
        "buyer": {"locale": "ja-JP"}
    }

    # An English-speaking buyer on Amazon.co.jp.
    forced = control(
        url, "PUT", "orders/503-9000012-0000012/buyer-locale", json={"locale": "en-US"}
    )
    assert forced == {"locale": "en-US", "forced": True}
    answer = messaging_api(url, JP).get_attributes("503-9000012-0000012").payload
    assert answer == {"buyer": {"locale": "en-US"}}
    assert_valid("messaging.json", ATTRIBUTES, answer)
    control(url, "DELETE", "orders/503-9000012-0000012/buyer-locale")
    assert control(url, "GET", "orders/503-9000012-0000012/buyer-locale") == {
        "locale": "ja-JP",
        "forced": False,
    }
    wrong = http.put(
        f"{url}/_emulator/orders/503-9000012-0000012/buyer-locale", json={"locale": "Japanese"}
    )
    assert wrong.status_code == 400
    with pytest.raises(SellingApiNotFoundException):
        german.get_attributes("503-9000012-0000012")  # a JP order asked in DE
