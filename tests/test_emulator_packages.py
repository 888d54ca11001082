"""Parcels on orders (Orders 2026-01-01 ``packages``): set through the control API, read with
``includedData=PACKAGES`` by python-amazon-sp-api, merged by ``packageReferenceId``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sp_api.auth import access_token_client as token_cache

from emulator.clock import iso, parse_time
from emulator.packages import (
    ADDRESS_PROBLEM,
    DETAILED_STATUSES,
    REFUSED_BY_BUYER,
    UNCLAIMED_RETURNING,
)
from emulator.server import EmulatorServer
from tests.test_emulator import http, orders_api

ORDER_ID = "113-5550001-0000001"
ITEM_ID = "55500010000001"


def shipped_order(now: str) -> dict[str, Any]:
    """A shipped merchant-fulfilled order with one parcel in transit."""
    created = iso(parse_time(now) - timedelta(days=3))
    return {
        "orderId": ORDER_ID,
        "createdTime": created,
        "lastUpdatedTime": created,
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "SHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {
                "orderItemId": ITEM_ID,
                "quantityOrdered": 1,
                "product": {
                    "asin": "B0PKGTEST1",
                    "sellerSku": "PKG-TEST",
                    "price": {"unitPrice": {"amount": "12.00", "currencyCode": "USD"}},
                },
            }
        ],
        "packages": [
            {
                "packageReferenceId": "PKG-1",
                "packageStatus": {"status": "IN_TRANSIT", "detailedStatus": "PICKED_UP"},
                "carrier": "Demo Carrier",
                "trackingNumber": "DEMO0000000001",
                "packageItems": [{"orderItemId": ITEM_ID, "quantity": 1}],
            }
        ],
    }


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def url(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()
    now = http.get(f"{server.url}/_emulator/clock").json()["now"]
    http.post(f"{server.url}/_emulator/orders", json=[shipped_order(now)]).raise_for_status()
    return server.url


@pytest.mark.e2e
def test_packages_only_with_included_data_packages(url: str) -> None:
    orders = orders_api(url)
    plain = orders.get_order(ORDER_ID).payload["order"]
    assert "packages" not in plain
    order = orders.get_order(ORDER_ID, includedData=["PACKAGES"]).payload["order"]
    assert order["packages"][0]["packageStatus"] == {
        "status": "IN_TRANSIT",
        "detailedStatus": "PICKED_UP",
    }
    since = iso(parse_time(order["createdTime"]) - timedelta(minutes=1))
    found = orders.search_orders(createdAfter=since, includedData=["PACKAGES"]).payload["orders"]
    assert [o["packages"][0]["packageReferenceId"] for o in found] == ["PKG-1"]


@pytest.mark.e2e
def test_patch_merges_packages_by_reference_and_is_seen_by_last_update(url: str) -> None:
    before = http.post(f"{url}/_emulator/clock/advance", json={"seconds": 180}).json()["now"]
    patched = http.patch(
        f"{url}/_emulator/orders/{ORDER_ID}",
        json={
            "packages": [
                {
                    "packageReferenceId": "PKG-1",
                    "packageStatus": {
                        "status": "UNDELIVERABLE",
                        "detailedStatus": "REJECTED_BY_BUYER",
                    },
                },
                {
                    "packageReferenceId": "PKG-2",
                    "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
                    "packageItems": [{"orderItemId": ITEM_ID, "quantity": 1}],
                },
            ]
        },
    )
    assert patched.status_code == 200, patched.text
    first, second = patched.json()["packages"]
    assert first["trackingNumber"] == "DEMO0000000001"  # merged, not replaced
    assert first["packageStatus"]["detailedStatus"] in REFUSED_BY_BUYER
    assert second["packageStatus"]["detailedStatus"] in ADDRESS_PROBLEM
    since = iso(parse_time(before) - timedelta(seconds=1))  # lastUpdatedTime has whole seconds
    changed = orders_api(url).search_orders(lastUpdatedAfter=since, includedData=["PACKAGES"])
    assert [len(o["packages"]) for o in changed.payload["orders"]] == [2]


@pytest.mark.e2e
def test_package_rules_refuse_unknown_items_and_duplicate_references(url: str) -> None:
    unknown_item = http.patch(
        f"{url}/_emulator/orders/{ORDER_ID}",
        json={
            "packages": [
                {
                    "packageReferenceId": "PKG-9",
                    "packageItems": [{"orderItemId": "99999999999999", "quantity": 1}],
                }
            ]
        },
    )
    assert unknown_item.status_code == 400
    assert unknown_item.json()["problems"][0]["path"] == "$.packages[1].packageItems[0].orderItemId"
    bad_status = http.patch(
        f"{url}/_emulator/orders/{ORDER_ID}",
        json={"packages": [{"packageReferenceId": "PKG-1", "packageStatus": {"status": "GONE"}}]},
    )
    assert bad_status.status_code == 400
    removed = http.patch(f"{url}/_emulator/orders/{ORDER_ID}", json={"packages": None}).json()
    assert "packages" not in removed


def test_detailed_statuses_are_the_models_list() -> None:
    from emulator.spec import load_model

    model = load_model("orders")
    if model is None:
        pytest.skip("SP-API models absent")
    described = model["definitions"]["PackageStatus"]["properties"]["detailedStatus"]["description"]
    listed = [line.split("`")[1] for line in described.splitlines() if line.startswith("- `")]
    assert listed == list(DETAILED_STATUSES)


@pytest.mark.e2e
def test_demo_has_a_parcel_of_each_undelivered_case(url: str) -> None:
    http.post(f"{url}/_emulator/seed-demo").raise_for_status()
    since = iso(parse_time(http.get(f"{url}/_emulator/clock").json()["now"]) - timedelta(hours=6))
    changed = orders_api(url).search_orders(
        lastUpdatedAfter=since,
        includedData=["PACKAGES", "RECIPIENT"],
        marketplaceIds=["ATVPDKIKX0DER", "A1PA6795UKMFR9"],
    )
    undelivered = {
        order["orderId"]: package["packageStatus"]
        for order in changed.payload["orders"]
        for package in order.get("packages", [])
        if package["packageStatus"]["status"] == "UNDELIVERABLE"
    }
    assert undelivered == {
        "113-9000017-0000017": {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"},
        "113-9000018-0000018": {"status": "UNDELIVERABLE", "detailedStatus": "RETURNING_TO_SELLER"},
        "304-9000019-0000019": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
    }
    details = [status["detailedStatus"] for status in undelivered.values()]
    assert [d in REFUSED_BY_BUYER for d in details] == [True, False, False]
    assert [d in UNCLAIMED_RETURNING for d in details] == [False, True, False]
    assert [d in ADDRESS_PROBLEM for d in details] == [False, False, True]
