"""Demo data: an obviously synthetic seller account with a live example of every case type.

Nineteen merchant-fulfilled orders in the US, UK, DE and JP marketplaces (``demo_orders``):

- buyer cancel requests (1-4, 7-10, 12-13): one still PENDING (placed minutes ago), several
  UNSHIPPED of low value, some of high value (above 200 USD / 150 GBP / 180 EUR / 30000 JPY), one
  for a handmade SKU; orders 5, 6 and 11 have no request (6 is shipped, its parcel in transit);
- return requests (``demo_returns``) on delivered orders: a cheap item (14, 7.99 USD), a normal one
  (15, defective), and one whose buyer asks for a refund without sending the item back (16, UK);
  Amazon authorizes the two US ones itself (in policy), the UK one waits for the seller;
- parcels that came back UNDELIVERABLE: refused by the buyer (17), unclaimed and returning to the
  seller (18), undeliverable because of the address (19, DE, house number missing);
- shipping charges and promotions, in the proceeds breakdown (``item_proceeds``): 15 (shipping,
  10% off the price), 16 (shipping), 17 (shipping, 5.00 off), 19 (free-shipping promotion);
- a buyer who wrote instead of pressing "Cancel items" (``demo_buyer_messages``): order 11's
  buyer asks by e-mail to cancel (a "cancel asked by message" case).

The demo application has the restricted Direct-to-Consumer Delivery role (``DEMO_ROLES``), so its
merchant-fulfilled orders show the buyer's e-mail (see ``emulator.buyer_contact``).

Names, addresses, e-mails and ASINs are placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from emulator.clock import iso
from emulator.returns import rma_for


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
    """One order item: what was bought, at what unit price, how many; what the buyer paid for
    its shipping, and the promotion's discounts on price and shipping, if any."""

    sku: str
    title: str
    unit_price: str
    quantity: int = 1
    shipping: str | None = None
    promotion: tuple[str, str, str] | None = None  # (promotion id, off the price, off shipping)


@dataclass(frozen=True)
class DemoOrder:
    """A demo order: where, how old, its status, its items and the buyer's cancel reason if any.

    A shipped order has one parcel, in transit unless ``parcel`` gives its (status,
    detailedStatus); ``changed_ago`` dates its last update (a parcel that just came back).
    """

    number: int
    market: Market
    age: timedelta
    status: str
    lines: tuple[Line, ...]
    cancel_reason: str | None = None
    parcel: tuple[str, str] | None = None
    changed_ago: timedelta | None = None
    address: dict[str, str] | None = None


DELIVERED = ("DELIVERED", "DELIVERED")
#: A German address whose street has no house number: why parcel 19 came back.
ADDRESS_WITHOUT_NUMBER = dict(
    ADDRESSES["DE"],
    name="Max Mustermann (demo)",
    addressLine1="Beispielweg",
    city="Beispielstadt",
    postalCode="54321",
)


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
    # Delivered orders with return requests (see demo_returns).
    DemoOrder(14, US, timedelta(days=12), "SHIPPED",
              (Line("DEMO-PHONE-STAND", "Demo Phone Stand", "7.99"),), parcel=DELIVERED),
    DemoOrder(15, US, timedelta(days=9), "SHIPPED",
              (Line("DEMO-SPEAKER-BT", "Demo Bluetooth Speaker", "59.99", shipping="5.99",
                    promotion=("DEMO-SPRING-10", "6.00", "0")),), parcel=DELIVERED),
    DemoOrder(16, UK, timedelta(days=8), "SHIPPED",
              (Line("DEMO-LAMP-GLASS", "Demo Glass Table Lamp", "24.99", shipping="3.49"),),
              parcel=DELIVERED),
    # Parcels that did not reach the buyer (see emulator.packages for the routing).
    DemoOrder(17, US, timedelta(days=6), "SHIPPED",
              (Line("DEMO-BLENDER-MINI", "Demo Mini Blender", "44.50", shipping="4.99",
                    promotion=("DEMO-BLENDER-5OFF", "5.00", "0")),),
              parcel=("UNDELIVERABLE", "REJECTED_BY_BUYER"), changed_ago=timedelta(hours=5)),
    DemoOrder(18, US, timedelta(days=14), "SHIPPED",
              (Line("DEMO-YOGA-MAT", "Demo Yoga Mat", "29.00"),),
              parcel=("UNDELIVERABLE", "RETURNING_TO_SELLER"), changed_ago=timedelta(hours=4)),
    DemoOrder(19, DE, timedelta(days=5), "SHIPPED",
              (Line("DEMO-WASSERKOCHER", "Demo Wasserkocher", "39.90", shipping="4.90",
                    promotion=("DEMO-GRATISVERSAND", "0", "4.90")),),
              parcel=("UNDELIVERABLE", "UNDELIVERABLE"), changed_ago=timedelta(hours=3),
              address=ADDRESS_WITHOUT_NUMBER),
)  # fmt: skip


@dataclass(frozen=True)
class DemoReturn:
    """A buyer's return request on a demo order: when, why, and what they wrote."""

    order_number: int
    requested_ago: timedelta
    reason: str
    comment: str | None


DEMO_RETURNS = (
    DemoReturn(14, timedelta(hours=20), "CR-UNWANTED_ITEM", "No longer needed."),
    DemoReturn(15, timedelta(hours=6), "CR-DEFECTIVE", "It stops charging after two days of use."),
    DemoReturn(
        16,
        timedelta(hours=3),
        "CR-DAMAGED_BY_CARRIER",
        "The glass shade arrived cracked. Could you refund me without me sending it back? "
        "The postage would cost more than the lamp is worth.",
    ),
)


#: The demo application's restricted roles (emulator.buyer_contact).
DEMO_ROLES = ("DIRECT_TO_CONSUMER_DELIVERY",)


@dataclass(frozen=True)
class DemoBuyerMessage:
    """An e-mail a demo buyer sent the seller through Amazon's Buyer-Seller Messaging."""

    order_number: int
    received_ago: timedelta
    subject: str
    text: str


DEMO_BUYER_MESSAGES = (
    DemoBuyerMessage(
        11,
        timedelta(minutes=45),
        "Stornierung meiner Bestellung",
        "Hallo, ich habe die Tasse versehentlich doppelt bestellt. Können Sie diese Bestellung "
        "bitte stornieren? Vielen Dank!",
    ),
)


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    # Yen have no minor unit; the other demo currencies have cents.
    text = f"{amount:.0f}" if currency == "JPY" else f"{amount:.2f}"
    return {"amount": text, "currencyCode": currency}


def item_proceeds(
    currency: str,
    price: Decimal,
    *,
    shipping: Decimal | None = None,
    item_discount: Decimal = Decimal(0),
    shipping_discount: Decimal = Decimal(0),
) -> dict[str, Any]:
    """An item's ``proceeds`` in the Orders API 2026-01-01 shape (``ItemProceeds``): the ITEM
    subtotal (the price before promotions, as in the model's example), SHIPPING when the buyer
    paid for it, and a DISCOUNT (negative: it lowers the proceeds) split by
    ``detailedBreakdowns`` subtype ITEM and SHIPPING. ``proceedsTotal`` adds them up."""
    breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": _money(price, currency)}]
    if shipping is not None:
        breakdowns.append({"type": "SHIPPING", "subtotal": _money(shipping, currency)})
    discount = item_discount + shipping_discount
    if discount:
        details = [
            {"subtype": subtype, "value": _money(-amount, currency)}
            for subtype, amount in (("ITEM", item_discount), ("SHIPPING", shipping_discount))
            if amount
        ]
        breakdowns.append(
            {
                "type": "DISCOUNT",
                "subtotal": _money(-discount, currency),
                "detailedBreakdowns": details,
            }
        )
    total = price + (shipping or Decimal(0)) - discount
    return {"proceedsTotal": _money(total, currency), "breakdowns": breakdowns}


def _line_total(line: Line) -> Decimal:
    """What the buyer paid for a line: price and shipping less the promotion."""
    total = Decimal(line.unit_price) * line.quantity + Decimal(line.shipping or 0)
    if line.promotion:
        total -= Decimal(line.promotion[1]) + Decimal(line.promotion[2])
    return total


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
        "proceeds": item_proceeds(
            currency,
            total,
            shipping=Decimal(line.shipping) if line.shipping else None,
            item_discount=Decimal(line.promotion[1]) if line.promotion else Decimal(0),
            shipping_discount=Decimal(line.promotion[2]) if line.promotion else Decimal(0),
        ),
        "fulfillment": {
            "quantityFulfilled": line.quantity if shipped else 0,
            "quantityUnfulfilled": 0 if shipped else line.quantity,
        },
    }
    if line.promotion:
        item["promotion"] = {"breakdowns": [{"promotionId": line.promotion[0]}]}
    if demo.cancel_reason:
        item["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": demo.cancel_reason}
        }
    return item


def _last_update(demo: DemoOrder, created: datetime, now: datetime) -> datetime:
    # A shipped order last changed when it shipped (or when its parcel came back); the others
    # shortly after they were placed.
    if demo.changed_ago is not None:
        return now - demo.changed_ago
    if demo.status == "SHIPPED":
        return created + timedelta(hours=22)
    return created + min(demo.age / 2, timedelta(minutes=5))


def demo_order(demo: DemoOrder, now: datetime) -> dict[str, Any]:
    """One demo order in the Orders API 2026-01-01 shape, with every dataset filled in."""
    created = now - demo.age
    currency = demo.market.currency
    total = sum((_line_total(line) for line in demo.lines), Decimal(0))
    address = dict(demo.address or ADDRESSES[demo.market.country], addressType="RESIDENTIAL")
    items = [_item(demo, position, line) for position, line in enumerate(demo.lines, start=1)]
    order: dict[str, Any] = {
        "orderId": _order_id(demo),
        "createdTime": iso(created),
        "lastUpdatedTime": iso(_last_update(demo, created, now)),
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
            "breakdowns": _order_breakdowns(items, currency),
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
                "packageStatus": _parcel_status(demo),
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


def _order_breakdowns(items: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The order's proceeds by category, each the sum over its items (OrderProceedsBreakdown)."""
    sums: dict[str, Decimal] = {}
    for item in items:
        for line in item["proceeds"]["breakdowns"]:
            sums[line["type"]] = sums.get(line["type"], Decimal(0)) + Decimal(
                line["subtotal"]["amount"]
            )
    return [{"type": kind, "subtotal": _money(amount, currency)} for kind, amount in sums.items()]


def _parcel_status(demo: DemoOrder) -> dict[str, str]:
    if demo.parcel is None:
        return {"status": "IN_TRANSIT"}
    status, detailed = demo.parcel
    return {"status": status, "detailedStatus": detailed}


def demo_orders(now: datetime) -> list[dict[str, Any]]:
    """The demo account's orders, with times relative to ``now``."""
    return [demo_order(demo, now) for demo in DEMO_ORDERS]


def demo_returns(now: datetime) -> list[dict[str, Any]]:
    """The demo buyers' return requests (``POST /_emulator/returns`` shape), relative to ``now``.

    Their RMA ids are fixed per order, so seeding again updates them rather than adding more.
    """
    by_number = {demo.number: demo for demo in DEMO_ORDERS}
    requests = []
    for wanted in DEMO_RETURNS:
        demo = by_number[wanted.order_number]
        order_id, item_id = _order_id(demo), f"9{demo.number:06d}{1:07d}"
        requests.append(
            {
                "amazonRmaId": rma_for(order_id, item_id, "demo"),
                "orderId": order_id,
                "orderItemId": item_id,
                "returnRequestDate": iso(now - wanted.requested_ago),
                "quantity": demo.lines[0].quantity,
                "returnReason": wanted.reason,
                "customerComments": wanted.comment,
                # No status: Amazon decides by the marketplace's return settings (the US
                # requests are authorized at once, the UK one waits for the seller).
                "inPolicy": True,
            }
        )
    return requests


def demo_buyer_messages(now: datetime) -> list[dict[str, Any]]:
    """The demo buyers' e-mails to the seller (``POST /_emulator/buyer-messages`` shape)."""
    by_number = {demo.number: demo for demo in DEMO_ORDERS}
    return [
        {
            "orderId": _order_id(by_number[wanted.order_number]),
            "subject": wanted.subject,
            "text": wanted.text,
            "receivedTime": iso(now - wanted.received_ago),
        }
        for wanted in DEMO_BUYER_MESSAGES
    ]


def order_json(
    order_id: str,
    *,
    marketplace_id: str = "ATVPDKIKX0DER",
    status: str = "UNSHIPPED",
    price: str = "25.00",
    currency: str = "USD",
    sku: str = "MUG-001",
    cancel_reason: str | None = "Found a better price",
    created: datetime | None = None,
    shipping: str | None = None,
    promotion: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """A merchant-fulfilled order in the Orders API 2026-01-01 shape, to post to the emulator
    (`POST /_emulator/orders`): what tests and benchmarks build their orders with. With
    `shipping` (what the buyer paid for it) or `promotion` (its id, the discount off the price,
    the discount off shipping) the item carries Amazon's proceeds breakdown and promotion."""
    created = created or datetime.now(UTC) - timedelta(hours=3)
    item: dict[str, Any] = {
        "orderItemId": f"{order_id[-7:]}01",
        "quantityOrdered": 1,
        "product": {
            "asin": "B0HENPIN01",
            "title": "Test item",
            "sellerSku": sku,
            "price": {"unitPrice": {"amount": price, "currencyCode": currency}},
        },
    }
    if shipping is not None or promotion is not None:
        item["proceeds"] = item_proceeds(
            currency,
            Decimal(price),
            shipping=Decimal(shipping) if shipping is not None else None,
            item_discount=Decimal(promotion[1]) if promotion else Decimal(0),
            shipping_discount=Decimal(promotion[2]) if promotion else Decimal(0),
        )
    if promotion is not None:
        item["promotion"] = {"breakdowns": [{"promotionId": promotion[0]}]}
    if cancel_reason is not None:
        item["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": cancel_reason}
        }
    iso = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "orderId": order_id,
        "createdTime": iso,
        "lastUpdatedTime": iso,
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id},
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "orderItems": [item],
    }
