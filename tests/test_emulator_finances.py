"""The emulator's Finances API: every refund of an order (the seller's feeds and Amazon's own),
answered as Amazon's official models say, read back through python-amazon-sp-api by the adapter;
and the control route that makes Amazon refund on the seller's behalf, refusing an over-refund.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft4Validator

from emulator.server import EmulatorServer
from emulator.spec import default_models_dir
from henpin.amazon.feed_xml import build_feed
from henpin.domain import (
    AdjustmentReason,
    FeedType,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from tests.support import order_json
from tests.test_amazon_adapter import demo_adapter

REPO = Path(__file__).resolve().parents[1]
MODELS = default_models_dir()
BY_ORDER = ("financesV0.json", "/finances/v0/orders/{orderId}/financialEvents")
TRANSACTIONS = ("finances_2024-06-19.json", "/finances/2024-06-19/transactions")
ORDER = "113-0000031-0000031"
ITEM = "000003101"  # order_json: the order id's last 7 digits + "01"


def validator(model: tuple[str, str], status: int) -> Draft4Validator:
    """The official model's response schema of the operation for a status code."""
    spec = json.loads((MODELS / "models" / model[0]).read_text(encoding="utf-8"))
    response = spec["paths"][model[1]]["get"]["responses"][str(status)]
    schema = dict(response["schema"], definitions=spec["definitions"])
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def assert_valid(model: tuple[str, str], answer: httpx.Response) -> None:
    """The answer validates against the official model's schema for its status code."""
    found = validator(model, answer.status_code).iter_errors(answer.json())
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in found]
    assert not problems, problems


def test_the_models_own_examples_pass_the_validator() -> None:
    """A check of the check: Amazon's sandbox answers validate against their own schemas."""
    checked = 0
    for model in (BY_ORDER, TRANSACTIONS):
        validator(model, 200)
        spec = json.loads((MODELS / "models" / model[0]).read_text(encoding="utf-8"))
        for status, response in spec["paths"][model[1]]["get"]["responses"].items():
            for case in response.get("x-amzn-api-sandbox", {}).get("static", []):
                if "response" in case and "schema" in response:
                    assert not list(validator(model, int(status)).iter_errors(case["response"]))
                    checked += 1
    assert checked >= 4


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as running:
        yield running


@pytest.fixture
def control(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/_emulator", timeout=10) as client:
        client.post("/reset").raise_for_status()
        client.post(
            "/orders", json=[order_json(ORDER, status="SHIPPED", price="40.00", cancel_reason=None)]
        ).raise_for_status()
        yield client


@pytest.fixture
def api(server: EmulatorServer, control: httpx.Client) -> Iterator[httpx.Client]:
    token = httpx.post(
        f"{server.url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "Atzr|henpin-demo-refresh-token",
            "client_id": "henpin-demo-client",
            "client_secret": "henpin-demo-secret",
        },
    ).json()["access_token"]
    with httpx.Client(base_url=server.url, headers={"x-amz-access-token": token}) as client:
        yield client


def amazon_refund(control: httpx.Client, reason: str, **components: str) -> httpx.Response:
    return control.post(
        f"/orders/{ORDER}/refunds",
        json={"reason": reason, "items": [{"orderItemId": ITEM, "components": components}]},
    )


@pytest.mark.e2e
def test_amazon_refund_shows_in_financial_events_as_the_model_says(
    control: httpx.Client, api: httpx.Client
) -> None:
    made = amazon_refund(control, "refund at first scan", Principal="15.00")
    assert made.status_code == 200, made.text
    claim = amazon_refund(control, "A-to-z claim", Principal="5.00")
    assert claim.status_code == 200, claim.text

    answer = api.get(f"/finances/v0/orders/{ORDER}/financialEvents")
    assert answer.status_code == 200
    assert_valid(BY_ORDER, answer)
    events = answer.json()["payload"]["FinancialEvents"]
    [refund] = events["RefundEventList"]
    [adjustment] = refund["ShipmentItemAdjustmentList"]
    assert adjustment["OrderItemId"] == ITEM
    charge = adjustment["ItemChargeAdjustmentList"][0]
    assert charge["ChargeType"] == "Principal"
    assert charge["ChargeAmount"] == {"CurrencyCode": "USD", "CurrencyAmount": -15.0}
    [guarantee] = events["GuaranteeClaimEventList"]  # an A-to-z claim is a guarantee claim
    assert (
        guarantee["ShipmentItemAdjustmentList"][0]["ItemChargeAdjustmentList"][0]["ChargeAmount"][
            "CurrencyAmount"
        ]
        == -5.0
    )
    # the control API lists Amazon's refunds beside the seller's, marked as Amazon's
    listed = control.get(f"/orders/{ORDER}/refunds").json()
    assert [r["refundedBy"] for r in listed] == ["AMAZON", "AMAZON"]

    for bad, status in (("BAD-ORDER", 400), (ORDER, 400)):
        wrong = api.get(
            f"/finances/v0/orders/{bad}/financialEvents",
            params={"MaxResultsPerPage": 0} if bad == ORDER else None,
        )
        assert wrong.status_code == status
        assert_valid(BY_ORDER, wrong)

    transactions = api.get(
        "/finances/2024-06-19/transactions",
        params={"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": ORDER},
    )
    assert transactions.status_code == 200
    assert_valid(TRANSACTIONS, transactions)
    amounts = [
        t["totalAmount"]["currencyAmount"] for t in transactions.json()["payload"]["transactions"]
    ]
    assert amounts == [-15.0, -5.0]
    missing = api.get("/finances/2024-06-19/transactions")
    assert missing.status_code == 400
    assert_valid(TRANSACTIONS, missing)


@pytest.mark.e2e
def test_control_route_refuses_an_over_refund(control: httpx.Client) -> None:
    assert amazon_refund(control, "missed refund window", Principal="30.00").status_code == 200
    over = amazon_refund(control, "A-to-z claim", Principal="10.01")
    assert over.status_code == 400
    assert (
        "would exceed what is left: 40.00 paid, 30.00 already refunded, 10.00 left"
        in (over.json()["error"])
    )
    for body, words in (
        ({"reason": "because", "items": []}, "reason must be one of"),
        (
            {"reason": "other", "items": [{"orderItemId": "nope", "components": {"Principal": 1}}]},
            "has no item",
        ),
        (
            {
                "reason": "other",
                "items": [{"orderItemId": ITEM, "components": {"Principal": "1.005"}}],
            },
            "minor unit",
        ),
        (
            {"reason": "other", "items": [{"orderItemId": ITEM, "components": {"Shipping": "1"}}]},
            "paid no Shipping",
        ),
    ):
        refused = control.post(f"/orders/{ORDER}/refunds", json=body)
        assert refused.status_code == 400 and words in refused.json()["error"], refused.text
    assert control.post("/orders/113-0000000-0000099/refunds", json={}).status_code == 404
    assert len(control.get(f"/orders/{ORDER}/refunds").json()) == 1  # nothing else was kept


def _seller_refund_feed(amount: str, merchant: str) -> str:
    refund = Refund(
        order_id=ORDER,
        items=[
            RefundItem(
                order_item_id=ITEM,
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal(amount), currency="USD"
                    )
                ],
            )
        ],
    )
    return build_feed(FeedType.PAYMENT_ADJUSTMENT, merchant, [(1, refund)])


@pytest.mark.e2e
def test_adapter_reads_the_sellers_and_amazons_refunds(
    server: EmulatorServer, control: httpx.Client
) -> None:
    amazon_refund(control, "refund at first scan", Principal="12.50").raise_for_status()
    with demo_adapter(server.url) as adapter:
        adapter.submit_feed(
            FeedType.PAYMENT_ADJUSTMENT,
            "ATVPDKIKX0DER",
            _seller_refund_feed("20.00", adapter.merchant_token("ATVPDKIKX0DER")),
        )
        control.post("/clock/advance", json={"seconds": 120}).raise_for_status()
        control.get("/feeds").raise_for_status()  # the feed finishes at Amazon
        shown = adapter.refunds_for_order(ORDER, marketplace_id="ATVPDKIKX0DER")
    assert sorted(line.amount for line in shown.lines) == [Decimal("12.5"), Decimal("20.0")]
    assert shown.amount(ITEM, PriceComponent.PRINCIPAL) == Decimal("32.5")
    assert {line.event for line in shown.lines} == {"refund"}
    listed = control.get(f"/orders/{ORDER}/refunds").json()
    assert sorted(r["refundedBy"] for r in listed) == ["AMAZON", "SELLER"]
    # the seller's feed now cannot refund past what Amazon refunded: 7.50 are left
    with demo_adapter(server.url) as adapter:
        adapter.submit_feed(
            FeedType.PAYMENT_ADJUSTMENT,
            "ATVPDKIKX0DER",
            _seller_refund_feed("8.00", adapter.merchant_token("ATVPDKIKX0DER")),
        )
    control.post("/clock/advance", json={"seconds": 120}).raise_for_status()
    last = control.get("/feeds").json()[-1]
    assert last["results"][0]["resultCode"] == "Error"


def _regional_token(server: EmulatorServer, region: str) -> str:
    from henpin.settings import EMULATOR_REFRESH_TOKENS

    answer = httpx.post(
        f"{server.url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": EMULATOR_REFRESH_TOKENS[region],
            "client_id": "henpin-demo-client",
            "client_secret": "henpin-demo-secret",
        },
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


@pytest.mark.e2e
def test_finances_are_per_region(server: EmulatorServer, control: httpx.Client) -> None:
    jp_order, jp = "503-0000032-0000032", "A1VC38T7YXB528"
    control.post(
        "/orders",
        json=[
            order_json(
                jp_order,
                marketplace_id=jp,
                status="SHIPPED",
                price="3000",
                currency="JPY",
                cancel_reason=None,
            )
        ],
    ).raise_for_status()
    refunded = control.post(
        f"/orders/{jp_order}/refunds",
        json={
            "reason": "returnless refund",
            "items": [{"orderItemId": f"{jp_order[-7:]}01", "components": {"Principal": "3000"}}],
        },
    )
    assert refunded.status_code < 300, refunded.text
    events = f"/finances/v0/orders/{jp_order}/financialEvents"
    transactions = "/finances/2024-06-19/transactions"
    query = {"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": jp_order}
    for region, seen in (("na", False), ("fe", True)):
        token = _regional_token(server, region.upper())
        headers = {"x-amz-access-token": token}
        answer = httpx.get(f"{server.url}/{region}{events}", headers=headers)
        assert answer.status_code == 200
        assert_valid(BY_ORDER, answer)
        found = answer.json()["payload"]["FinancialEvents"].get("RefundEventList", [])
        assert bool(found) is seen
        listed = httpx.get(f"{server.url}/{region}{transactions}", params=query, headers=headers)
        assert listed.status_code == 200
        assert bool(listed.json()["payload"]["transactions"]) is seen


def _refund_message(order_id: str, item_id: str, **components: str) -> Refund:
    return Refund(
        order_id=order_id,
        items=[
            RefundItem(
                order_item_id=item_id,
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent(kind), amount=Decimal(amount), currency="USD"
                    )
                    for kind, amount in components.items()
                ],
            )
        ],
    )


@pytest.mark.e2e
def test_a_seller_refund_feed_is_checked_per_component_against_every_refund(
    server: EmulatorServer, control: httpx.Client
) -> None:
    # A 40.00 USD item with 4.00 USD shipping paid; Amazon already gave back 3.00 of the shipping.
    order_id, item_id = "113-0000034-0000034", "000003401"
    order = order_json(order_id, status="SHIPPED", price="40.00", cancel_reason=None)
    order["orderItems"][0]["proceeds"] = {
        "breakdowns": [{"type": "SHIPPING", "subtotal": {"amount": "4.00", "currencyCode": "USD"}}]
    }
    control.post("/orders", json=[order]).raise_for_status()
    control.post(
        f"/orders/{order_id}/refunds",
        json={
            "reason": "returnless refund",
            "items": [{"orderItemId": item_id, "components": {"Shipping": "3.00"}}],
        },
    ).raise_for_status()
    with demo_adapter(server.url) as adapter:
        merchant = adapter.merchant_token("ATVPDKIKX0DER")
        messages = [
            (1, _refund_message(order_id, item_id, Shipping="2.00")),  # 3.00 + 2.00 > 4.00
            (2, _refund_message(order_id, item_id, Principal="10.00", Tax="1.00")),  # no tax paid
            (3, _refund_message(order_id, item_id, Principal="12.00")),  # made 12.005 below
            (4, _refund_message(order_id, item_id, Principal="40.00", Shipping="1.00")),  # fits
        ]
        document = build_feed(FeedType.PAYMENT_ADJUSTMENT, merchant, messages)
        document = document.replace(">12.00<", ">12.005<")
        adapter.submit_feed(FeedType.PAYMENT_ADJUSTMENT, "ATVPDKIKX0DER", document)
    control.post("/clock/advance", json={"seconds": 120}).raise_for_status()
    results = {r["messageId"]: r for r in control.get("/feeds").json()[-1]["results"]}
    for message_id in (1, 2):
        assert (results[message_id]["resultCode"], results[message_id]["code"]) == (
            "Error",
            "18028",
        )
    assert "exceeds the amount that can be refunded" in results[1]["description"]
    # An extra decimal fails the document's schema first (the emulator's per-message error).
    assert (results[3]["resultCode"], results[3]["code"]) == ("Error", "5001")
    assert "fraction digits" in results[3]["description"]
    assert results[4]["resultCode"] == "Success"
    refunded = control.get(f"/orders/{order_id}/refunds").json()
    assert sorted(r["refundedBy"] for r in refunded) == ["AMAZON", "SELLER"]
