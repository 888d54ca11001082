# ruff: noqa: F811 - the api fixture of test_emulator_finances is imported and used by name
"""Amazon refunding returns on its own in the emulator (emulator.amazon_refunds), seen at the real
boundaries: the Finances API over HTTP (validated against the official model), the adapter
(python-amazon-sp-api), and the returns report's Refunded Amount."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from emulator.amazon_refunds import add_business_days
from emulator.clock import iso, parse_time
from emulator.server import EmulatorServer
from henpin.domain import PriceComponent
from tests.support import order_json
from tests.test_amazon_adapter import demo_adapter
from tests.test_emulator_finances import (  # noqa: F401 - api: a fixture used by name
    BY_ORDER,
    api,
    assert_valid,
)
from tests.test_emulator_reports import flat_report_rows

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

US = "ATVPDKIKX0DER"
ORDER = "113-0000051-0000051"
ITEM = "000005101"  # order_json: the order id's last 7 digits + "01"
DAY = 86400


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as running:
        yield running


def order_with_shipping() -> dict[str, Any]:
    """A shipped US order: a 40.00 USD item, and 4.00 USD outbound shipping the buyer paid."""
    order = order_json(ORDER, status="SHIPPED", price="40.00", cancel_reason=None)
    order["orderItems"][0]["proceeds"] = {
        "breakdowns": [{"type": "SHIPPING", "subtotal": {"amount": "4.00", "currencyCode": "USD"}}]
    }
    return order


@pytest.fixture
def control(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/_emulator", timeout=30) as client:
        client.post("/reset").raise_for_status()
        client.post("/orders", json=[order_with_shipping()]).raise_for_status()
        yield client


def post_return(control: httpx.Client, **fields: Any) -> dict[str, Any]:
    entry = {"orderId": ORDER, "orderItemId": ITEM, "returnReason": "CR-UNWANTED_ITEM", **fields}
    answer = control.post("/returns", json=[entry])
    assert answer.status_code == 200, answer.text
    (record,) = answer.json()["returns"]
    return dict(record)


def advance(control: httpx.Client, seconds: float) -> None:
    control.post("/clock/advance", json={"seconds": seconds}).raise_for_status()


def charges(api: httpx.Client) -> dict[str, float]:
    """The order's refund charges in listFinancialEventsByOrderId, validated by the model."""
    answer = api.get(f"/finances/v0/orders/{ORDER}/financialEvents")
    assert answer.status_code == 200, answer.text
    assert_valid(BY_ORDER, answer)
    found: dict[str, float] = {}
    for event in answer.json()["payload"]["FinancialEvents"]["RefundEventList"]:
        for adjustment in event["ShipmentItemAdjustmentList"]:
            for charge in adjustment["ItemChargeAdjustmentList"]:
                amount = charge["ChargeAmount"]["CurrencyAmount"]
                found[charge["ChargeType"]] = found.get(charge["ChargeType"], 0) + amount
    return found


def test_first_scan_refunds_price_and_shipping_less_the_label_for_a_buyer_fault_return(
    server: EmulatorServer, control: httpx.Client, api: httpx.Client
) -> None:
    record = post_return(control, labelCost="6.50")  # US, in policy: authorized by Amazon
    assert (record["authorizedBy"], record["refundAtFirstScan"]) == ("amazon", None)
    assert charges(api) == {}  # not scanned yet
    advance(control, 1.5 * DAY)  # the buyer hands the parcel in: first scan
    assert charges(api) == {"Principal": -40.0, "ShippingCharge": -4.0, "ReturnShipping": 6.5}
    [refund] = control.get(f"/orders/{ORDER}/refunds").json()
    assert (refund["refundedBy"], refund["amazonReason"]) == ("AMAZON", "refund at first scan")
    assert refund["time"] == record["shippedAt"]  # posted at the scan, not when it was seen

    shown = demo_adapter(server.url).refunds_for_order(ORDER, marketplace_id=US)
    assert shown.amount(ITEM, PriceComponent.PRINCIPAL) == Decimal("40.00")
    [line] = flat_report_rows(server.url, 7)
    assert line["Refunded Amount"] == "37.50"  # 40.00 + 4.00 - 6.50 label
    advance(control, 3 * DAY)  # delivered later: nothing more is refunded
    assert len(control.get(f"/orders/{ORDER}/refunds").json()) == 1


def test_seller_fault_return_is_refunded_in_full_at_first_scan(
    control: httpx.Client, api: httpx.Client
) -> None:
    post_return(control, labelCost="6.50", returnReason="CR-DEFECTIVE")
    advance(control, 1.5 * DAY)
    assert charges(api) == {"Principal": -40.0, "ShippingCharge": -4.0}


def test_no_refund_at_first_scan_when_amazon_excluded_it_or_part_was_refunded(
    control: httpx.Client, api: httpx.Client
) -> None:
    post_return(control, refundAtFirstScan=False)
    advance(control, 1.5 * DAY)
    assert charges(api) == {}

    control.post("/reset").raise_for_status()
    control.post("/orders", json=[order_with_shipping()]).raise_for_status()
    made = control.post(
        f"/orders/{ORDER}/refunds",
        json={
            "reason": "other",
            "items": [{"orderItemId": ITEM, "components": {"Principal": "5.00"}}],
        },
    )
    assert made.status_code == 200, made.text
    post_return(control)
    advance(control, 1.5 * DAY)
    assert charges(api) == {"Principal": -5.0}  # "a partial refund": no RFS


def test_missed_refund_window_amazon_refunds_two_business_days_after_delivery(
    server: EmulatorServer, control: httpx.Client, api: httpx.Client
) -> None:
    assert control.get("/amazon-refund-settings").json()["marketplaces"][US] == {
        "refundAtFirstScan": True,
        "missedRefundWindow": False,
    }
    bad = control.put("/amazon-refund-settings", json={"marketplaces": {US: {"often": True}}})
    assert bad.status_code == 400
    control.put(
        "/amazon-refund-settings", json={"marketplaces": {US: {"missedRefundWindow": True}}}
    ).raise_for_status()
    record = post_return(control, refundAtFirstScan=False)
    advance(control, 600)
    answer = control.post(f"/returns/{record['amazonRmaId']}/advance", json={"to": "delivered"})
    assert answer.status_code == 200, answer.text
    delivered = parse_time(answer.json()["returns"][0]["returnDeliveryDate"])
    deadline = add_business_days(delivered, 2, US)
    now = parse_time(control.get("/clock").json()["now"])

    advance(control, (deadline - now).total_seconds() - 60)  # a minute before the deadline
    assert charges(api) == {}
    advance(control, 120)
    assert charges(api) == {"Principal": -40.0, "ShippingCharge": -4.0}
    [refund] = control.get(f"/orders/{ORDER}/refunds").json()
    assert (refund["amazonReason"], refund["time"]) == ("missed refund window", iso(deadline))
    assert deadline - delivered >= timedelta(days=2)
    [line] = flat_report_rows(server.url, 7)
    assert line["Refunded Amount"] == "44.00"
    control.delete("/amazon-refund-settings").raise_for_status()
