"""Demo orders: an obviously synthetic seller account with buyer cancel requests to work on.

Thirteen merchant-fulfilled orders in the US, UK, DE and JP marketplaces. Most carry a buyer's
cancel request: one still PENDING (placed minutes ago), several UNSHIPPED of low value, some of
high value (above 200 USD / 150 GBP / 180 EUR / 30000 JPY), one for a handmade SKU; a few have no
request at all, one of them already shipped. Names, addresses and ASINs are placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from emulator.clock import iso


@dataclass(frozen=True)
class Market:
    """A marketplace as the demo needs it."""

    marketplace_id: str
    name: str
    currency: str
    country: str


US = Market("ATVPDKIKX0DER", "Amazon.com", "USD", "US")
UK = Market("A1F83G8C2ARO7P", "Amazon.co.uk", "GBP", "GB")
DE = Market("A1PA6795UKMFR9", "Amazon.de", "EUR", "DE")
JP = Market("A1VC38T7YXB528", "Amazon.co.jp", "JPY", "JP")

#: Placeholder buyers and addresses per country (obviously not real people).
ADDRESSES: dict[str, dict[str, str]] = {
    "US": {
        "name": "Jane Doe (demo)",
        "addressLine1": "100 Example Avenue",
        "city": "Testville",
        "stateOrRegion": "WA",
        "postalCode": "98000",
        "countryCode": "US",
    },
    "GB": {
        "name": "Joe Bloggs (demo)",
        "addressLine1": "1 Sample Road",
        "city": "Exampleton",
        "stateOrRegion": "Demoshire",
        "postalCode": "EX1 1AA",
        "countryCode": "GB",
    },
    "DE": {
        "name": "Erika Mustermann (demo)",
        "addressLine1": "Musterstraße 1",
        "city": "Musterstadt",
        "stateOrRegion": "Berlin",
        "postalCode": "12345",
        "countryCode": "DE",
    },
    "JP": {
        "name": "Taro Yamada (demo)",
        "addressLine1": "1-2-3 Sample-cho",
        "city": "Chiyoda-ku",
        "stateOrRegion": "Tokyo",
        "postalCode": "100-0001",
        "countryCode": "JP",
    },
}


@dataclass(frozen=True)
class Line:
    """One order item: what was bought, at what unit price, how many."""

    sku: str
    title: str
    unit_price: str
    quantity: int = 1


@dataclass(frozen=True)
class DemoOrder:
    """A demo order: where, how old, its status, its items and the buyer's cancel reason if any."""

    number: int
    market: Market
    age: timedelta
    status: str
    lines: tuple[Line, ...]
    cancel_reason: str | None = None


_PREFIX = {"US": "113", "GB": "204", "DE": "304", "JP": "503"}

DEMO_ORDERS = (
    DemoOrder(1, US, timedelta(minutes=10), "PENDING",
              (Line("DEMO-MUG-WHITE", "Demo Coffee Mug, White", "14.99"),), "Ordered by mistake"),
    DemoOrder(2, US, timedelta(hours=3), "UNSHIPPED",
              (Line("DEMO-CASE-BLACK", "Demo Phone Case, Black", "9.99", 2),),
              "Found a better price elsewhere"),
    DemoOrder(3, US, timedelta(hours=6), "UNSHIPPED",
              (Line("DEMO-ESPRESSO-PRO", "Demo Espresso Machine Pro", "329.00"),),
              "No longer needed"),
    DemoOrder(4, US, timedelta(hours=2), "UNSHIPPED",
              (Line("HANDMADE-CERAMIC-VASE-BLUE", "Demo Handmade Ceramic Vase, Blue", "48.00"),),
              "Wrong colour ordered"),
    DemoOrder(5, US, timedelta(hours=1), "UNSHIPPED",
              (Line("DEMO-NOTEBOOK-A5", "Demo Notebook A5", "25.50"),)),
    DemoOrder(6, US, timedelta(days=2), "SHIPPED",
              (Line("DEMO-SOCKS-3PK", "Demo Socks, 3 Pack", "19.99"),)),
    DemoOrder(7, UK, timedelta(hours=4), "UNSHIPPED",
              (Line("DEMO-TEA-TIN", "Demo Tea Tin", "12.49"),), "Delivery date too late"),
    DemoOrder(8, UK, timedelta(hours=5), "UNSHIPPED",
              (Line("DEMO-HEADPHONES-ANC", "Demo Noise-Cancelling Headphones", "189.00"),),
              "Changed my mind"),
    DemoOrder(9, DE, timedelta(hours=3), "UNSHIPPED",
              (Line("DEMO-KERZE-ROT", "Demo Kerze, Rot", "19.90", 2),), "Ordered by mistake"),
    DemoOrder(10, DE, timedelta(hours=7), "UNSHIPPED",
              (Line("DEMO-MIXER-500", "Demo Standmixer 500", "129.00"),
               Line("DEMO-MIXER-BOWL", "Demo Rührschüssel", "89.00")), "No longer needed"),
    DemoOrder(11, DE, timedelta(minutes=90), "UNSHIPPED",
              (Line("DEMO-TASSE-BLAU", "Demo Tasse, Blau", "34.95"),)),
    DemoOrder(12, JP, timedelta(hours=2), "UNSHIPPED",
              (Line("DEMO-CHOPSTICKS", "Demo Chopsticks Set", "2480"),), "Shipping cost too high"),
    DemoOrder(13, JP, timedelta(hours=8), "UNSHIPPED",
              (Line("DEMO-RICE-COOKER", "Demo Rice Cooker Deluxe", "34800"),),
              "Ordered the wrong model"),
)  # fmt: skip


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    # Yen have no minor unit; the other demo currencies have cents.
    text = f"{amount:.0f}" if currency == "JPY" else f"{amount:.2f}"
    return {"amount": text, "currencyCode": currency}


def _order_id(demo: DemoOrder) -> str:
    return f"{_PREFIX[demo.market.country]}-9{demo.number:06d}-{demo.number:07d}"


def _item(demo: DemoOrder, position: int, line: Line) -> dict[str, Any]:
    currency = demo.market.currency
    total = Decimal(line.unit_price) * line.quantity
    shipped = demo.status == "SHIPPED"
    item: dict[str, Any] = {
        "orderItemId": f"9{demo.number:06d}{position:07d}",
        "quantityOrdered": line.quantity,
        "product": {
            "asin": f"B0DEMO{demo.number:02d}{position:02d}",
            "title": line.title,
            "sellerSku": line.sku,
            "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
            "price": {"unitPrice": _money(Decimal(line.unit_price), currency)},
        },
        "proceeds": {
            "proceedsTotal": _money(total, currency),
            "breakdowns": [{"type": "ITEM", "subtotal": _money(total, currency)}],
        },
        "fulfillment": {
            "quantityFulfilled": line.quantity if shipped else 0,
            "quantityUnfulfilled": 0 if shipped else line.quantity,
        },
    }
    if demo.cancel_reason:
        item["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": demo.cancel_reason}
        }
    return item


def _last_update(demo: DemoOrder, created: datetime) -> datetime:
    # A shipped order last changed when it shipped; the others shortly after they were placed.
    if demo.status == "SHIPPED":
        return created + timedelta(hours=22)
    return created + min(demo.age / 2, timedelta(minutes=5))


def demo_order(demo: DemoOrder, now: datetime) -> dict[str, Any]:
    """One demo order in the Orders API 2026-01-01 shape, with every dataset filled in."""
    created = now - demo.age
    currency = demo.market.currency
    total = sum((Decimal(line.unit_price) * line.quantity for line in demo.lines), Decimal(0))
    address = dict(ADDRESSES[demo.market.country], addressType="RESIDENTIAL")
    items = [_item(demo, position, line) for position, line in enumerate(demo.lines, start=1)]
    order: dict[str, Any] = {
        "orderId": _order_id(demo),
        "createdTime": iso(created),
        "lastUpdatedTime": iso(_last_update(demo, created)),
        "salesChannel": {
            "channelName": "AMAZON",
            "marketplaceId": demo.market.marketplace_id,
            "marketplaceName": demo.market.name,
        },
        "buyer": {
            "buyerName": address["name"],
            "buyerEmail": f"demo-buyer-{demo.number:02d}@marketplace.example.invalid",
        },
        "recipient": {"deliveryAddress": address},
        "proceeds": {
            "grandTotal": _money(total, currency),
            "breakdowns": [{"type": "ITEM", "subtotal": _money(total, currency)}],
        },
        "fulfillment": {
            "fulfillmentStatus": demo.status,
            "fulfilledBy": "MERCHANT",
            "fulfillmentServiceLevel": "STANDARD",
            "shipByWindow": {
                "earliestDateTime": iso(created),
                "latestDateTime": iso(created + timedelta(days=2)),
            },
            "deliverByWindow": {
                "earliestDateTime": iso(created + timedelta(days=3)),
                "latestDateTime": iso(created + timedelta(days=7)),
            },
        },
        "orderItems": items,
    }
    if demo.status == "SHIPPED":
        order["packages"] = [
            {
                "packageReferenceId": f"DEMO-PKG-{demo.number:04d}",
                "createdTime": iso(created + timedelta(hours=20)),
                "packageStatus": {"status": "IN_TRANSIT"},
                "carrier": "Demo Carrier",
                "shipTime": iso(created + timedelta(hours=22)),
                "trackingNumber": f"DEMO{demo.number:010d}",
                "packageItems": [
                    {"orderItemId": item["orderItemId"], "quantity": item["quantityOrdered"]}
                    for item in items
                ],
            }
        ]
    return order


def demo_orders(now: datetime) -> list[dict[str, Any]]:
    """The demo account's orders, with times relative to ``now``."""
    return [demo_order(demo, now) for demo in DEMO_ORDERS]
