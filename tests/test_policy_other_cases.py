"""Cancel by message, refused delivery and address error under policy: the replies to buyers,
the recommendations, the refunds and the money of each way out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from henpin.domain import (
    AdjustmentReason,
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    PaidAmounts,
)
from henpin.policy import (
    AddressErrorPolicy,
    CancelByMessagePolicy,
    OptionMoney,
    RefusedDeliveryPolicy,
    parse_policy,
)

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
US, UK, DE, FR, IT, ES, MX, JP, CA = (
    "ATVPDKIKX0DER",
    "A1F83G8C2ARO7P",
    "A1PA6795UKMFR9",
    "A13V1IB3VIYZZH",
    "APJ6JRA9NG5V4",
    "A1RKKUPIHCS9HS",
    "A1AM78C64UM0Y8",
    "A1VC38T7YXB528",
    "A2EUQ1WTGCTBG2",
)


def order(
    *prices: tuple[str | None, str],
    marketplace_id: str = US,
    status: FulfillmentStatus = FulfillmentStatus.UNSHIPPED,
    buyer_name: str | None = "Alex Doe",
    quantity: int = 1,
) -> Order:
    """An order; each item is (unit price or None, currency)."""
    return Order(
        order_id="113-1234567-1234567",
        marketplace_id=marketplace_id,
        created_time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        last_updated_time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        fulfillment_status=status,
        buyer_name=buyer_name,
        items=[
            OrderItem(
                order_item_id=f"item-{n}",
                sku=f"SKU-{n}",
                quantity=quantity,
                unit_price=Money(amount=Decimal(price), currency=currency) if price else None,
            )
            for n, (price, currency) in enumerate(prices or (("100.00", "USD"),))
        ],
    )


# --- Cancel by message ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def by_message() -> CancelByMessagePolicy:
    return CancelByMessagePolicy()


@pytest.mark.parametrize(
    ("marketplace_id", "subject", "greeting"),
    [
        (US, "Your cancellation request for order 113-1234567-1234567", "Hello Alex Doe,"),
        (UK, "Your cancellation request for order 113-1234567-1234567", "Hello Alex Doe,"),
        (JP, "ご注文 113-1234567-1234567 のキャンセルについて", "Alex Doe様"),
        (DE, "Ihre Stornierungsanfrage zur Bestellung 113-1234567-1234567", "Hallo Alex Doe,"),
        (FR, "Votre demande d'annulation de la commande 113-1234567-1234567", "Bonjour Alex Doe,"),
        (IT, "La sua richiesta di annullamento dell'ordine 113-1234567-1234567", "Gentile Alex"),
        (ES, "Su solicitud de cancelación del pedido 113-1234567-1234567", "Hola, Alex Doe:"),
        (MX, "Su solicitud de cancelación del pedido 113-1234567-1234567", "Hola, Alex Doe:"),
    ],
)
def test_reply_is_in_the_marketplace_language(
    by_message: CancelByMessagePolicy, marketplace_id: str, subject: str, greeting: str
) -> None:
    reply = by_message.reply(order(marketplace_id=marketplace_id))
    assert reply.subject == subject
    assert reply.body.startswith(greeting)
    assert "113-1234567-1234567" in reply.body
    assert "{" not in reply.subject + reply.body


def test_reply_names_the_marketplace(by_message: CancelByMessagePolicy) -> None:
    subject, body = by_message.reply(order(marketplace_id=DE))
    assert "bei Amazon.de" in body
    assert subject.endswith("113-1234567-1234567")


def test_reminder_has_its_own_text(by_message: CancelByMessagePolicy) -> None:
    reminder = by_message.reply(order(marketplace_id=JP), reminder=True)
    assert reminder.subject == "【再送】ご注文 113-1234567-1234567 のキャンセルのお願い"
    assert "まだ届いておりません" in reminder.body


@pytest.mark.parametrize(
    ("marketplace_id", "greeting"),
    [(US, "Hello customer,"), (JP, "お客様"), (DE, "Hallo liebe Kundin, lieber Kunde,")],
)
def test_an_unknown_buyer_name_is_replaced_by_a_polite_one(
    by_message: CancelByMessagePolicy, marketplace_id: str, greeting: str
) -> None:
    reply = by_message.reply(order(marketplace_id=marketplace_id, buyer_name=None))
    assert reply.body.startswith(greeting)


def test_a_language_without_a_reply_gets_the_english_one() -> None:
    policy = CancelByMessagePolicy.model_validate(
        {
            "replies": {
                "en": {
                    "unknown_buyer_name": "there",
                    "subject": "Order {order_id}",
                    "body": "Hi {buyer_name}, cancel {order_id} on {marketplace}: {{Your Orders}}",
                    "reminder_subject": "Order {order_id} again",
                    "reminder_body": "Still {order_id}",
                }
            }
        }
    )
    reply = policy.reply(order(marketplace_id=JP, buyer_name="{order_id}"))
    assert reply == (
        "Order 113-1234567-1234567",
        "Hi {order_id}, cancel 113-1234567-1234567 on Amazon.co.jp: {Your Orders}",
    )


def test_recommend_when_the_wait_ends(by_message: CancelByMessagePolicy) -> None:
    rec = by_message.recommend(order(), reminders_sent=0, now=NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "buyer-did-not-cancel")
    assert "remind again" in rec.reason
    assert rec.inputs["on_deadline"] == "remind"
    last = by_message.recommend(order(), reminders_sent=1, now=NOW)
    assert "remind again" not in last.reason
    assert last.inputs["on_deadline"] == "ship"
    assert json.loads(json.dumps(last.inputs))["reminders_left"] == 0


@pytest.mark.parametrize(
    ("status", "action", "rule"),
    [
        (FulfillmentStatus.CANCELLED, "nothing_to_do", "already-cancelled"),
        (FulfillmentStatus.SHIPPED, "ask_operator", "already-shipped"),
    ],
)
def test_recommend_when_the_order_moved_on(
    by_message: CancelByMessagePolicy, status: FulfillmentStatus, action: str, rule: str
) -> None:
    rec = by_message.recommend(order(status=status), reminders_sent=0, now=NOW)
    assert (rec.action, rec.rule) == (action, rule)


def test_reminders_can_go_out_by_themselves() -> None:
    policy = CancelByMessagePolicy.model_validate({"when_wait_ends": "remind", "reminders": 2})
    assert policy.recommend(order(), reminders_sent=1, now=NOW).action == "remind"
    assert policy.recommend(order(), reminders_sent=2, now=NOW).action == "ask_operator"


def test_deadline_choice_follows_the_policy() -> None:
    ship = CancelByMessagePolicy.model_validate({"operator": {"on_deadline": "ship"}})
    assert ship.deadline_choice(0) == "ship"
    cancel = CancelByMessagePolicy.model_validate(
        {"operator": {"on_deadline_after_last_reminder": "cancel_as_seller"}}
    )
    assert (cancel.deadline_choice(0), cancel.deadline_choice(1)) == ("remind", "cancel_as_seller")


# --- Refused or unclaimed delivery ---------------------------------------------------------------


@pytest.fixture(scope="module")
def refused_policy() -> RefusedDeliveryPolicy:
    return RefusedDeliveryPolicy()


@pytest.mark.parametrize(
    ("refused", "reason"),
    [(True, AdjustmentReason.REFUSED_DELIVERY), (False, AdjustmentReason.UNDELIVERABLE)],
)
def test_refund_is_the_item_price_only(
    refused_policy: RefusedDeliveryPolicy, refused: bool, reason: AdjustmentReason
) -> None:
    proposal = refused_policy.refund_for(
        order(("20.00", "USD"), ("5.50", "USD"), quantity=2), refused=refused
    )
    assert proposal.total == Money(amount=Decimal("51.00"), currency="USD")
    refund = proposal.refund()
    assert refund is not None
    assert [(i.order_item_id, i.reason) for i in refund.items] == [
        ("item-0", reason),
        ("item-1", reason),
    ]
    assert [[(c.type.value, c.amount) for c in i.components] for i in refund.items] == [
        [("Principal", Decimal("40.00"))],
        [("Principal", Decimal("11.00"))],
    ]
    assert "only (outbound shipping kept)" in proposal.explanation


def test_refused_delivery_refund_is_configurable() -> None:
    policy = RefusedDeliveryPolicy.model_validate(
        {"refund": {"item_price_percent": 50, "refused_reason": "CustomerReturn"}}
    )
    proposal = policy.refund_for(order(("1999", "JPY"), marketplace_id=JP), refused=True)
    assert proposal.total == Money(amount=Decimal(1000), currency="JPY")
    assert proposal.items[0].adjustment_reason is AdjustmentReason.CUSTOMER_RETURN


def test_zero_price_items_are_left_out_of_the_refund(refused_policy: RefusedDeliveryPolicy) -> None:
    proposal = refused_policy.refund_for(order(("0.00", "USD"), ("9.00", "USD")), refused=False)
    refund = proposal.refund()
    assert refund is not None and [i.order_item_id for i in refund.items] == ["item-1"]


def test_no_refund_until_the_buyer_asks(refused_policy: RefusedDeliveryPolicy) -> None:
    rec = refused_policy.recommend(order(), refused=True, buyer_asked=False, now=NOW)
    assert (rec.action, rec.rule) == ("wait_for_buyer", "no-refund-until-asked")
    asked = refused_policy.recommend(order(), refused=True, buyer_asked=True, now=NOW)
    assert (asked.action, asked.rule) == ("refund", "refund-on-request")
    assert asked.inputs["proposed_refund"] == {"amount": "100.00", "currency": "USD"}


@pytest.mark.parametrize("price", ["0.00", None])
def test_nothing_to_refund_goes_to_a_person(
    refused_policy: RefusedDeliveryPolicy, price: str | None
) -> None:
    rec = refused_policy.recommend(order((price, "USD")), refused=False, buyer_asked=True, now=NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "nothing-to-refund")
    assert refused_policy.refund_for(order((price, "USD")), refused=False).refund() is None


# --- Address error -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def address_policy() -> AddressErrorPolicy:
    return AddressErrorPolicy()


def by_choice(options: list[OptionMoney]) -> dict[str, OptionMoney]:
    return {o.choice: o for o in options}


def test_money_of_each_option(address_policy: AddressErrorPolicy) -> None:
    options = by_choice(address_policy.options_money(order(("100.00", "USD"))))
    assert list(options) == ["reship", "partial_refund", "cancel_for_reorder"]
    reship = options["reship"]
    assert (reship.reship_cost, reship.refund_to_buyer, reship.net) == (
        Decimal(15),
        Decimal(0),
        Decimal("-15.00"),
    )
    assert not reship.keeps_item
    partial = options["partial_refund"]
    # 80.00 refunded; Amazon gives back 80% of the 15.00 referral fee, keeps 20% of that.
    assert (partial.refund_to_buyer, partial.referral_fee_back, partial.refund_admin_fee) == (
        Decimal("80.00"),
        Decimal("12.00"),
        Decimal("2.40"),
    )
    assert partial.net == Decimal("-70.40")
    full = options["cancel_for_reorder"]
    assert (full.refund_to_buyer, full.referral_fee, full.refund_admin_fee, full.net) == (
        Decimal("100.00"),
        Decimal("15.00"),
        Decimal("3.00"),
        Decimal("-88.00"),
    )
    assert full.keeps_item
    assert full.shipping_paid is None
    assert "the shipping the buyer paid is unknown, counted as 0" in full.notes


def test_shipping_the_buyer_paid_counts_when_known(address_policy: AddressErrorPolicy) -> None:
    shipped = order().model_copy(
        update={
            "items": [
                OrderItem(
                    order_item_id="item-0",
                    unit_price=Money(amount=Decimal("100.00"), currency="USD"),
                    paid=PaidAmounts(
                        currency="USD", item_price=Decimal("100.00"), shipping=Decimal("10.00")
                    ),
                )
            ]
        }
    )
    full = by_choice(address_policy.options_money(shipped))["cancel_for_reorder"]
    # referral fee on 110.00 is 16.50; Amazon keeps 20% of it (3.30) when all is refunded.
    assert (full.shipping_paid, full.refund_to_buyer, full.referral_fee) == (
        Decimal("10.00"),
        Decimal("110.00"),
        Decimal("16.50"),
    )
    assert (full.refund_admin_fee, full.net) == (Decimal("3.30"), Decimal("-96.80"))
    assert not any("unknown" in n for n in full.notes)


def test_admin_fee_is_capped_per_item(address_policy: AddressErrorPolicy) -> None:
    one = by_choice(address_policy.options_money(order(("500.00", "USD"))))
    assert one["cancel_for_reorder"].refund_admin_fee == Decimal(5)  # not 20% of 75.00
    two = by_choice(address_policy.options_money(order(("500.00", "USD"), ("500.00", "USD"))))
    assert two["cancel_for_reorder"].refund_admin_fee == Decimal(10)


@pytest.mark.parametrize(("price", "fee"), [("20000", Decimal(300)), ("50000", Decimal(500))])
def test_amazon_co_jp_keeps_ten_percent_at_most_500_yen(
    address_policy: AddressErrorPolicy, price: str, fee: Decimal
) -> None:
    options = by_choice(address_policy.options_money(order((price, "JPY"), marketplace_id=JP)))
    assert options["cancel_for_reorder"].refund_admin_fee == fee
    assert options["reship"].net == Decimal(-1500)


def test_a_currency_without_an_admin_fee_rule_uses_amazons_usual_one(
    address_policy: AddressErrorPolicy,
) -> None:
    options = by_choice(address_policy.options_money(order(("1000.00", "MXN"), marketplace_id=MX)))
    full = options["cancel_for_reorder"]
    assert full.refund_admin_fee == Decimal(5)  # 20% of 150.00, at most 5
    assert any("no refund administration fee is set for MXN" in n for n in full.notes)


def test_a_currency_without_a_reship_cost_leaves_that_option_open() -> None:
    policy = AddressErrorPolicy.model_validate({"reship_cost": {"USD": 15}})
    options = by_choice(policy.options_money(order(("80.00", "CAD"), marketplace_id=CA)))
    assert (options["reship"].reship_cost, options["reship"].net) == (None, None)
    assert "no reship cost is set for CAD: enter the real cost" in options["reship"].notes
    assert options["cancel_for_reorder"].net is not None


def test_zero_price_items_cost_nothing_to_refund(address_policy: AddressErrorPolicy) -> None:
    options = by_choice(address_policy.options_money(order(("0.00", "USD"))))
    full = options["cancel_for_reorder"]
    assert (full.refund_to_buyer, full.referral_fee, full.refund_admin_fee, full.net) == (
        Decimal(0),
        Decimal(0),
        Decimal(0),
        Decimal(0),
    )


@pytest.mark.parametrize(
    ("prices", "why"),
    [
        ((("10.00", "USD"), (None, "USD")), "some item's price is unknown"),
        ((("10.00", "USD"), ("10.00", "EUR")), "the order mixes currencies"),
    ],
)
def test_unknown_money_is_said_not_guessed(
    address_policy: AddressErrorPolicy, prices: tuple[tuple[str | None, str], ...], why: str
) -> None:
    for option in address_policy.options_money(order(*prices)):
        assert option.net is None and option.currency is None
        assert option.notes == [f"{why}, so Henpin cannot put a figure on this option"]


def test_options_dump_for_the_decision_form(address_policy: AddressErrorPolicy) -> None:
    dumped = [o.model_dump(mode="json") for o in address_policy.options_money(order())]
    assert json.loads(json.dumps(dumped))[1]["choice"] == "partial_refund"
    assert dumped[1]["label"] and dumped[1]["net"] == "-70.40"


@pytest.mark.parametrize(
    ("confirmed", "price", "action", "rule"),
    [
        (False, "100.00", "cancel_for_reorder", "no-answer"),
        (True, "100.00", "reship", "address-confirmed"),
        (True, "12.00", "cancel_for_reorder", "reship-costs-more"),
        (True, "15.00", "cancel_for_reorder", "reship-costs-more"),
        (True, None, "ask_operator", "no-item-price"),
    ],
)
def test_address_error_recommendation(
    address_policy: AddressErrorPolicy, confirmed: bool, price: str | None, action: str, rule: str
) -> None:
    rec = address_policy.recommend(order((price, "USD")), address_confirmed=confirmed, now=NOW)
    assert (rec.action, rec.rule) == (action, rule)
    assert json.loads(json.dumps(rec.inputs))["address_confirmed"] is confirmed


def test_address_error_without_a_reship_cost_asks_a_person() -> None:
    policy = AddressErrorPolicy.model_validate({"reship_cost": {"USD": 15}})
    rec = policy.recommend(
        order(("80.00", "GBP"), marketplace_id=UK), address_confirmed=True, now=NOW
    )
    assert (rec.action, rec.rule) == ("ask_operator", "no-reship-cost")


def test_owner_can_prefer_partial_refunds() -> None:
    policy = parse_policy(
        b"version: 1\ncancel_request:\n  rules: [{name: all, then: cancel}]\n"
        b"address_error:\n  when_address_confirmed: partial_refund\n  partial_refund_percent: 50\n"
    ).address_error
    rec = policy.recommend(order(), address_confirmed=True, now=NOW)
    assert (rec.action, rec.rule) == ("partial_refund", "address-confirmed")
    partial = by_choice(policy.options_money(order()))["partial_refund"]
    assert partial.refund_to_buyer == Decimal("50.00")
