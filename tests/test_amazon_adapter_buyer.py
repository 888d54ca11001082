"""The adapter reads what Amazon lets Henpin know of a buyer, over HTTP from the emulator: the
relay e-mail address only with the restricted role, and the language of preference
(GetAttributes)."""

from __future__ import annotations

import httpx
import pytest

import tests.test_amazon_adapter_returns as returns_tests
from henpin.amazon import AmazonRequestRejected
from tests.test_amazon_adapter_returns import DE, US, demo_adapter

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

emulator_url = returns_tests.emulator_url  # the demo emulator, one per module
emulator = returns_tests.emulator  # reset and seeded with the demo for each test

JP = "A1VC38T7YXB528"
UNSHIPPED = "113-9000005-0000005"


def test_buyer_email_needs_the_direct_to_consumer_delivery_role(
    emulator: httpx.Client, emulator_url: str
) -> None:
    with demo_adapter(emulator_url, emulator) as adapter:
        with_role = adapter.get_order(UNSHIPPED, ("FULFILLMENT", "BUYER"), marketplace_id=US)
        emulator.put("/_emulator/application/roles", json={"roles": []}).raise_for_status()
        without = adapter.get_order(UNSHIPPED, ("FULFILLMENT", "BUYER"), marketplace_id=US)
    assert with_role.buyer_email == "demo-buyer-05@marketplace.example.invalid"
    assert without.buyer_email is None and without.buyer_name == with_role.buyer_name


def test_buyer_locale_from_get_attributes(emulator: httpx.Client, emulator_url: str) -> None:
    japanese = "503-9000012-0000012"
    with demo_adapter(emulator_url, emulator) as adapter:
        assert adapter.buyer_locale("304-9000011-0000011", DE) == "de-DE"
        assert adapter.buyer_locale(japanese, JP) == "ja-JP"
        emulator.put(
            f"/_emulator/orders/{japanese}/buyer-locale", json={"locale": "en-GB"}
        ).raise_for_status()
        assert adapter.buyer_locale(japanese, JP) == "en-GB"
        with pytest.raises(AmazonRequestRejected):
            adapter.buyer_locale(japanese, US)  # not an order of that marketplace: 404
    attributes = [
        c for c in emulator.get("/_emulator/calls").json() if c["operation"] == "GetAttributes"
    ]
    assert [c["status"] for c in attributes] == [200, 200, 200, 404]
