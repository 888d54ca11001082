"""Every refund path, end to end on real parts (Prefect server, the emulator over HTTP through
python-amazon-sp-api, SQLite case store), on orders whose buyer paid shipping and had a
promotion: what reaches Amazon is what the buyer paid, part by part, and the emulator (as strict
as Amazon: each component, each promotion and the item's net within what was paid) applies it.

The table has each path once, its currency rotated so USD, EUR and JPY each appear twice (the
full 6 x 3 grid runs the same code with other figures and would triple the runtime). Expected
amounts are worked out by hand in the table, not by Henpin's code:

    USD order: price 40.00, shipping 5.99, promotion 8.00 off the price       (paid 37.99)
    EUR order: price 33.33, shipping 4.99, promotion 3.33 off, free shipping  (paid 30.00)
    JPY order: price 4800, shipping 500, promotion 480 off the price          (paid 4820)
"""

# ruff: noqa: F811 - the e2e fixtures of test_case_types_e2e are imported and used by name

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.support import drive_case_runs, order_json
from tests.test_case_types_e2e import (  # noqa: F401 - fixtures used by name
    answer,
    control,
    emulator,
    henpin,
    mailbox,
    settle_amazon,
    the_case,
)

pytestmark = [pytest.mark.e2e]

ORDERS = {
    # currency: (marketplace, price, shipping, (promotion id, off the price, off shipping))
    "USD": ("ATVPDKIKX0DER", "40.00", "5.99", ("PROMO-US-20", "8.00", "0")),
    "EUR": ("A1PA6795UKMFR9", "33.33", "4.99", ("PROMO-DE-GRATIS", "3.33", "4.99")),
    "JPY": ("A1VC38T7YXB528", "4800", "500", ("PROMO-JP-10", "480", "0")),
}
REFUSED = {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"}
ADDRESS = {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"}


@dataclass(frozen=True)
class Path:
    """One refund path: how the case is driven, and what Amazon must receive."""

    name: str
    currency: str
    reason: str  # AdjustmentReason at Amazon
    components: dict[str, str]  # ItemPriceAdjustments
    promotions: dict[str, str] = field(default_factory=dict)  # PromotionAdjustments


PATHS = [
    # Condition "used": 100% less a 20% restocking fee on the 32.00 paid; US keeps the shipping.
    Path(
        "return-condition-tier",
        "USD",
        "CustomerReturn",
        {"Principal": "40.00", "RestockingFee": "-6.40"},
        {"Principal": "-8.00"},
    ),
    # CR-DEFECTIVE: the seller's fault, so no fee and the shipping back (help G202175040).
    Path(
        "return-seller-fault",
        "EUR",
        "CustomerReturn",
        {"Principal": "33.33", "Shipping": "4.99"},
        {"Principal": "-3.33", "Shipping": "-4.99"},
    ),
    # The policy's refund: the price paid, outbound shipping kept.
    Path(
        "refused-delivery", "JPY", "RefusedDelivery", {"Principal": "4800"}, {"Principal": "-480"}
    ),
    # 20.00 agreed with the buyer, split over price and shipping paid: 40x, -8x, 5.99x with
    # x = 20/37.99 -> 21.06, -4.21, 3.15 (adds up to 20.00).
    Path(
        "address-partial",
        "USD",
        "CustomerAddressIncorrect",
        {"Principal": "21.06", "Shipping": "3.15"},
        {"Principal": "-4.21"},
    ),
    # Everything the buyer paid, shipping included.
    Path(
        "address-cancel-for-reorder",
        "EUR",
        "CustomerCancel",
        {"Principal": "33.33", "Shipping": "4.99"},
        {"Principal": "-3.33", "Shipping": "-4.99"},
    ),
    # An operator's other amount, 3000 yen of the 4820 paid: x = 3000/4820 -> 2988, 311, -299.
    Path(
        "operator-other-amount",
        "JPY",
        "CustomerReturn",
        {"Principal": "2988", "Shipping": "311"},
        {"Principal": "-299"},
    ),
]


def the_order(order_id: str, currency: str, parcel: dict[str, str] | None) -> dict[str, Any]:
    marketplace, price, shipping, promotion = ORDERS[currency]
    order = order_json(
        order_id,
        marketplace_id=marketplace,
        status="SHIPPED",
        price=price,
        currency=currency,
        cancel_reason=None,
        created=datetime.now(UTC) - timedelta(days=3),
        shipping=shipping,
        promotion=promotion,
    )
    order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": "buyer-test@marketplace.example"}
    if parcel:
        order["packages"] = [
            {
                "packageReferenceId": "1",
                "packageStatus": parcel,
                "packageItems": [
                    {"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}
                ],
            }
        ]
    return order


def returned(url: str, amazon: Any, order_id: str, reason: str, condition: str) -> Any:
    """A return the seller authorizes, receives and inspects: the refund question comes next."""
    from flows.ingest import ingest

    control(
        amazon,
        "POST",
        "returns",
        json=[
            {
                "orderId": order_id,
                "sku": "MUG-001",
                "returnReason": reason,
                "returnRequestDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "inPolicy": False,  # left to the seller
            }
        ],
    )
    control(amazon, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    drive_case_runs()
    answer(url, the_case(url, order_id, "return-request"), "authorized")
    answer(url, the_case(url, order_id, "return-request"), "received")
    answer(url, the_case(url, order_id, "return-request"), "inspected", condition=condition)
    return the_case(url, order_id, "return-request")


def parcel_case(url: str, amazon: Any, order_id: str, case_type: str) -> Any:
    from flows.ingest import ingest

    control(amazon, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    drive_case_runs()
    settle_amazon(amazon, rounds=2)  # an address case's message to the buyer goes out
    return the_case(url, order_id, case_type)


def drive(url: str, amazon: Any, path: Path, order_id: str) -> Any:
    """Run the path's case to its refund; returns the case."""
    parcel = {"refused-delivery": REFUSED, "address-partial": ADDRESS}.get(path.name)
    if path.name == "address-cancel-for-reorder":
        parcel = ADDRESS
    control(amazon, "POST", "orders", json=[the_order(order_id, path.currency, parcel)])
    if path.name == "return-condition-tier":
        case = returned(url, amazon, order_id, "CR-UNWANTED_ITEM", "used")
        answer(url, case, "refund_proposed")
    elif path.name == "return-seller-fault":
        case = returned(url, amazon, order_id, "CR-DEFECTIVE", "used")
        answer(url, case, "refund_proposed")
    elif path.name == "operator-other-amount":
        case = returned(url, amazon, order_id, "CR-UNWANTED_ITEM", "opened_like_new")
        answer(url, case, "refund_other_amount", amount="3000", note="agreed with the buyer")
    elif path.name == "refused-delivery":
        case = parcel_case(url, amazon, order_id, "refused-delivery")
        answer(url, case, "buyer_asked")
        answer(url, the_case(url, order_id, "refused-delivery"), "refund_proposed")
    else:
        case = parcel_case(url, amazon, order_id, "address-error")
        answer(url, case, "address_confirmed", confirmed_address="1 Test Street")
        case = the_case(url, order_id, "address-error")
        if path.name == "address-partial":
            answer(url, case, "partial_refund", refund_amount="20.00", note="postage shared")
        else:
            answer(url, case, "cancel_for_reorder")
    settle_amazon(amazon)
    return case


def adjusted_item(amazon: Any, order_id: str) -> ET.Element:
    """The one AdjustedItem of the order in the payment adjustment feeds Amazon received."""
    feeds = [
        f
        for f in control(amazon, "GET", "feeds")
        if f["feedType"] == "POST_PAYMENT_ADJUSTMENT_DATA" and order_id in (f["document"] or "")
    ]
    assert len(feeds) == 1
    root = ET.fromstring(feeds[0]["document"])
    [item] = [
        a
        for m in root.iter("OrderAdjustment")
        if m.findtext("AmazonOrderID") == order_id
        for a in m.iter("AdjustedItem")
    ]
    return item


def amounts(parent: ET.Element | None, currency: str) -> dict[str, str]:
    if parent is None:
        return {}
    found = {}
    for c in parent.findall("Component"):
        amount = c.find("Amount")
        assert amount is not None and amount.get("currency") == currency
        found[c.findtext("Type") or ""] = (amount.text or "").strip()
    return found


@pytest.mark.parametrize("path", PATHS, ids=[f"{p.name}-{p.currency}" for p in PATHS])
def test_every_refund_path_sends_what_the_buyer_paid(
    henpin: str, emulator: Any, path: Path
) -> None:
    from henpin.app.cases import show_case

    number = PATHS.index(path) + 1
    order_id = f"113-00006{number:02d}-00006{number:02d}"
    case = drive(henpin, emulator, path, order_id)

    item = adjusted_item(emulator, order_id)
    assert item.findtext("AdjustmentReason") == path.reason
    assert amounts(item.find("ItemPriceAdjustments"), path.currency) == path.components
    assert amounts(item.find("PromotionAdjustments"), path.currency) == path.promotions
    # The XSD's order: the promotion's block follows the item price's.
    children = [child.tag for child in item]
    assert children.index("PromotionAdjustments") == children.index("ItemPriceAdjustments") + 1

    # Amazon (the emulator) applied it: one refund, the components and promotions as sent.
    [refund] = control(emulator, "GET", f"orders/{order_id}/refunds")
    assert refund["adjustmentReason"] == path.reason
    assert {c["type"]: c["amount"] for c in refund["components"]} == path.components
    assert {p["type"]: p["amount"] for p in refund["promotions"]} == path.promotions
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.state == "closed"
    assert detail.outcome not in ("amazon-rejected", "already-refunded")
    total = sum(
        (Decimal(v) for v in [*path.components.values(), *path.promotions.values()]), Decimal(0)
    )
    closing = [e for e in detail.timeline if e.kind == "closed"][-1]
    assert f"Amazon refunded {total:,} {path.currency}" in closing.message


def test_the_full_price_to_a_buyer_who_had_a_promotion_is_refused_by_amazon() -> None:
    """The emulator is as strict as Amazon: Principal 40.00 with no promotion adjustment gives
    back more than the 37.99 the buyer paid for the item in all (32.00 and 5.99 shipping)."""
    from emulator.order_feeds import FeedContext, apply_feed

    order_id = "113-0000699-0000699"
    item_id = f"{order_id[-7:]}01"
    document = (
        '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header><DocumentVersion>1.01'
        "</DocumentVersion><MerchantIdentifier>A1HENPINDEMONA</MerchantIdentifier></Header>"
        "<MessageType>OrderAdjustment</MessageType><Message><MessageID>1</MessageID>"
        f"<OrderAdjustment><AmazonOrderID>{order_id}</AmazonOrderID><AdjustedItem>"
        f"<AmazonOrderItemCode>{item_id}</AmazonOrderItemCode>"
        "<AdjustmentReason>CustomerReturn</AdjustmentReason><ItemPriceAdjustments><Component>"
        '<Type>Principal</Type><Amount currency="USD">40.00</Amount></Component><Component>'
        '<Type>Shipping</Type><Amount currency="USD">5.99</Amount></Component>'
        "</ItemPriceAdjustments></AdjustedItem></OrderAdjustment></Message></AmazonEnvelope>"
    )
    orders = {order_id: the_order(order_id, "USD", None)}
    context = FeedContext("F1", ["ATVPDKIKX0DER"], orders, [], datetime.now(UTC))
    [result] = apply_feed("POST_PAYMENT_ADJUSTMENT_DATA", document, context)
    assert result.result_code == "Error"
    assert "45.99 USD refunded in all, more than the 37.99 USD" in result.description
    assert context.refunds == []
    # A promotion's share larger than the discount is refused too.
    too_big = document.replace(
        "</ItemPriceAdjustments>",
        "</ItemPriceAdjustments><PromotionAdjustments><Component><Type>Principal</Type>"
        '<Amount currency="USD">-9.00</Amount></Component></PromotionAdjustments>',
    )
    [result] = apply_feed("POST_PAYMENT_ADJUSTMENT_DATA", too_big, context)
    assert result.result_code == "Error" and "8.00 discount" in result.description
    # With the promotion's share it goes through, and is recorded.
    fixed = too_big.replace("-9.00", "-8.00")
    [result] = apply_feed("POST_PAYMENT_ADJUSTMENT_DATA", fixed, context)
    assert result.result_code == "Success", result.description
    assert context.refunds[0]["promotions"] == [
        {"type": "Principal", "amount": "-8.00", "currencyCode": "USD"}
    ]
    # Nothing is left: a second refund of a cent is refused.
    again = document.replace("40.00", "0.01").replace(
        '<Component><Type>Shipping</Type><Amount currency="USD">5.99</Amount></Component>', ""
    )
    [result] = apply_feed("POST_PAYMENT_ADJUSTMENT_DATA", again, context)
    assert result.result_code == "Error"


def test_two_cases_of_one_order_refund_once_and_the_other_is_flagged(
    henpin: str, emulator: Any
) -> None:
    """A return and an address error on one order both ask for everything the buyer paid: the
    first refund goes, the second finds nothing left, sends nothing and is flagged for a person
    with the figures."""
    from henpin.app.cases import show_case

    order_id = "113-0000698-0000698"
    control(emulator, "POST", "orders", json=[the_order(order_id, "USD", ADDRESS)])
    first = returned(henpin, emulator, order_id, "CR-DEFECTIVE", "unopened")  # 37.99 in all
    address = parcel_case(henpin, emulator, order_id, "address-error")
    answer(henpin, first, "refund_proposed")
    settle_amazon(emulator)
    answer(henpin, address, "address_confirmed", confirmed_address="1 Test Street")
    answer(henpin, the_case(henpin, order_id, "address-error"), "cancel_for_reorder")
    settle_amazon(emulator)

    refunds = control(emulator, "GET", f"orders/{order_id}/refunds")
    assert len(refunds) == 1  # one refund of 37.99, not two
    assert {c["type"]: c["amount"] for c in refunds[0]["components"]} == {
        "Principal": "40.00",
        "Shipping": "5.99",
    }
    done = show_case(henpin, first.id)
    flagged = the_case(henpin, order_id, "address-error")
    assert done is not None and done.outcome == "refunded-in-full"
    assert flagged.outcome == "already-refunded"
    assert flagged.needs_attention and "37.99 USD was already refunded" in flagged.needs_attention
    assert the_case(henpin, order_id, "return-request").needs_attention is None
