"""Return requests under policy: what is recommended and why, the refund the condition table
gives, and the refund deadline in business days."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from henpin.domain import (
    AdjustmentReason,
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    Package,
    PaidAmounts,
    PriceComponent,
    RefundComponent,
    ReturnRequest,
)
from henpin.money import excess_decimals
from henpin.policy import ReturnRequestPolicy, add_business_days, is_business_day

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
SHIPPED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # expected delivery (default +7 days): 9 March
US, DE, JP, CA = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528", "A2EUQ1WTGCTBG2"


def item(
    price: str | None = "50.00",
    currency: str = "USD",
    quantity: int = 1,
    item_id: str = "item-1",
    sku: str = "MUG-001",
) -> OrderItem:
    unit = Money(amount=Decimal(price), currency=currency) if price is not None else None
    return OrderItem(order_item_id=item_id, sku=sku, quantity=quantity, unit_price=unit)


def order(*items: OrderItem, marketplace_id: str = US, shipped: datetime | None = SHIPPED) -> Order:
    packages = [Package(package_reference_id="1", ship_time=shipped)] if shipped else []
    return Order(
        order_id="113-1234567-1234567",
        marketplace_id=marketplace_id,
        created_time=datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        last_updated_time=SHIPPED,
        fulfillment_status=FulfillmentStatus.SHIPPED,
        fulfilled_by="MERCHANT",
        items=list(items) or [item()],
        packages=packages,
    )


def request(
    reason: str | None = "CR-DEFECTIVE",
    comment: str | None = "It stopped working after a day.",
    quantity: int = 1,
    item_id: str | None = "item-1",
    sku: str | None = None,
    requested: datetime = NOW - timedelta(days=1),
    in_policy: bool | None = True,
) -> ReturnRequest:
    return ReturnRequest(
        order_id="113-1234567-1234567",
        order_item_id=item_id,
        sku=sku,
        quantity=quantity,
        reason_code=reason,
        buyer_comment=comment,
        requested_at=requested,
        in_policy=in_policy,
    )


@pytest.fixture(scope="module")
def policy() -> ReturnRequestPolicy:
    return ReturnRequestPolicy()


# --- recommend -----------------------------------------------------------------------------------


def test_defective_item_within_limits_is_authorized(policy: ReturnRequestPolicy) -> None:
    rec = policy.recommend(request(), order(), NOW)
    assert (rec.action, rec.rule) == ("authorize", "reason-authorize")
    assert rec.reason == "the reason CR-DEFECTIVE is listed under authorize"


def test_inputs_are_json_and_enough_to_replay(policy: ReturnRequestPolicy) -> None:
    rec = policy.recommend(request(), order(), NOW)
    assert json.loads(json.dumps(rec.inputs)) == {
        "order_id": "113-1234567-1234567",
        "marketplace_id": US,
        "order_item_id": "item-1",
        "sku": None,
        "quantity": 1,
        "requested_quantity": 1,
        "returned_value": {"amount": "50.00", "currency": "USD"},
        "reason_code": "CR-DEFECTIVE",
        "buyer_comment": "It stopped working after a day.",
        "requested_at": "2026-03-19T12:00:00+00:00",
        "amazon_in_policy": True,
        "amazon_status": None,
        "expected_delivery": "2026-03-09T09:00:00+00:00",
        "expected_delivery_counted_from": "shipping day",
        "days_after_expected_delivery": 10.1,
        "evaluated_at": "2026-03-20T12:00:00+00:00",
    }


def test_a_comment_keyword_goes_to_a_person_before_anything_else(
    policy: ReturnRequestPolicy,
) -> None:
    cheap = order(item("3.00"))
    rec = policy.recommend(request(comment="I will file a CHARGEBACK"), cheap, NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "comment-keyword")
    assert "'chargeback'" in rec.reason


def test_a_japanese_keyword_matches_too(policy: ReturnRequestPolicy) -> None:
    rec = policy.recommend(
        request(comment="弁護士に相談します"), order(item("5000", "JPY"), marketplace_id=JP), NOW
    )
    assert rec.rule == "comment-keyword"


@pytest.mark.parametrize(
    ("reason", "action", "rule"),
    [
        ("CR-UNAUTHORIZED_PURCHASE", "ask_operator", "reason-ask-operator"),
        ("CR-UNWANTED_ITEM", "authorize", "reason-authorize"),
        ("cr-unwanted_item ", "authorize", "reason-authorize"),  # as typed in a report
        ("CR-SOMETHING_NEW", "ask_operator", "reason-not-listed"),
        (None, "ask_operator", "reason-not-listed"),
    ],
)
def test_reason_codes_sort_the_request(
    policy: ReturnRequestPolicy, reason: str | None, action: str, rule: str
) -> None:
    rec = policy.recommend(request(reason=reason), order(), NOW)
    assert (rec.action, rec.rule) == (action, rule)


def test_a_declined_reason_is_declined_even_for_a_cheap_item() -> None:
    policy = ReturnRequestPolicy.model_validate(
        {"reasons": {"authorize": ["CR-DEFECTIVE"], "decline": ["CR-FOUND_BETTER_PRICE"]}}
    )
    rec = policy.recommend(request(reason="CR-FOUND_BETTER_PRICE"), order(item("2.00")), NOW)
    assert (rec.action, rec.rule) == ("decline", "reason-decline")


def test_reasons_other_decides_an_unlisted_code() -> None:
    policy = ReturnRequestPolicy.model_validate({"reasons": {"other": "decline"}})
    rec = policy.recommend(request(reason="CR-SOMETHING_NEW"), order(), NOW)
    assert (rec.action, rec.rule) == ("decline", "reason-not-listed")
    assert "reasons.other says decline" in rec.reason


def test_cheap_item_is_kept_by_the_buyer_and_its_price_refunded(
    policy: ReturnRequestPolicy,
) -> None:
    rec = policy.recommend(request(), order(item("14.99")), NOW)
    assert (rec.action, rec.rule) == ("keep_item_refund", "cheap-item")
    assert "14.99 USD, less than 15.00 USD" in rec.reason


def test_an_item_worth_exactly_the_threshold_is_not_cheap(policy: ReturnRequestPolicy) -> None:
    rec = policy.recommend(request(), order(item("15.00")), NOW)
    assert rec.action == "authorize"


def test_a_currency_without_a_threshold_is_never_cheap() -> None:
    policy = ReturnRequestPolicy.model_validate(
        {"keep_item_under": {"USD": 15}, "authorize_up_to": {"EUR": 100}}
    )
    rec = policy.recommend(request(), order(item("1.00", "EUR"), marketplace_id=DE), NOW)
    assert (rec.action, rec.rule) == ("authorize", "reason-authorize")


def test_partial_quantity_counts_only_the_returned_units(policy: ReturnRequestPolicy) -> None:
    three_mugs = order(item("10.00", quantity=3))
    one = policy.recommend(request(quantity=1), three_mugs, NOW)
    assert (one.action, one.inputs["returned_value"]) == (
        "keep_item_refund",
        {"amount": "10.00", "currency": "USD"},
    )
    two = policy.recommend(request(quantity=2), three_mugs, NOW)
    assert two.action == "authorize"
    too_many = policy.recommend(request(quantity=5), three_mugs, NOW)
    assert (too_many.inputs["quantity"], too_many.inputs["requested_quantity"]) == (3, 5)


@pytest.mark.parametrize(("price", "rule"), [("250.00", "over-value-limit")])
def test_a_valuable_item_goes_to_a_person(
    policy: ReturnRequestPolicy, price: str, rule: str
) -> None:
    rec = policy.recommend(request(), order(item(price)), NOW)
    assert (rec.action, rec.rule) == ("ask_operator", rule)
    assert "more than the 200.00 USD Henpin may recommend alone" in rec.reason


def test_a_currency_without_a_value_limit_goes_to_a_person() -> None:
    policy = ReturnRequestPolicy.model_validate({"authorize_up_to": {"USD": 200}})
    rec = policy.recommend(request(), order(item("80.00", "CAD"), marketplace_id=CA), NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "no-value-limit")


@pytest.mark.parametrize("price", ["0.00", None])
def test_an_item_without_a_price_goes_to_a_person(
    policy: ReturnRequestPolicy, price: str | None
) -> None:
    rec = policy.recommend(request(), order(item(price)), NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "no-item-price")


def test_an_item_not_in_the_order_goes_to_a_person(policy: ReturnRequestPolicy) -> None:
    rec = policy.recommend(request(item_id="other", sku="OTHER-SKU"), order(), NOW)
    assert (rec.action, rec.rule) == ("ask_operator", "item-not-in-order")


def test_the_item_is_found_by_sku_when_the_report_has_no_item_id(
    policy: ReturnRequestPolicy,
) -> None:
    rec = policy.recommend(request(item_id=None, sku="MUG-001"), order(), NOW)
    assert rec.inputs["order_item_id"] == "item-1"


def test_late_request_is_outside_the_window(policy: ReturnRequestPolicy) -> None:
    late = SHIPPED + timedelta(days=7 + 31)
    rec = policy.recommend(request(requested=late), order(), late)
    assert (rec.action, rec.rule) == ("ask_operator", "outside-return-window")
    assert "31 days after the expected delivery (shipping day + 7 days)" in rec.reason
    on_the_last_day = SHIPPED + timedelta(days=7 + 30)
    assert policy.recommend(request(requested=on_the_last_day), order(), late).action == "authorize"


def test_outside_window_can_recommend_declining() -> None:
    policy = ReturnRequestPolicy.model_validate({"outside_window": "decline"})
    late = SHIPPED + timedelta(days=60)
    rec = policy.recommend(request(requested=late), order(), late)
    assert (rec.action, rec.rule) == ("decline", "outside-return-window")


def test_amazon_marking_a_return_out_of_policy_counts_as_outside(
    policy: ReturnRequestPolicy,
) -> None:
    rec = policy.recommend(request(in_policy=False), order(), NOW)
    assert rec.rule == "outside-return-window"
    assert "Amazon's returns report" in rec.reason


def test_without_a_shipping_day_the_window_counts_from_the_order(
    policy: ReturnRequestPolicy,
) -> None:
    rec = policy.recommend(request(), order(shipped=None), NOW)
    assert rec.inputs["expected_delivery_counted_from"] == "order day"
    assert rec.inputs["expected_delivery"] == "2026-03-08T08:00:00+00:00"


def test_a_request_without_a_date_is_judged_at_the_evaluation_time(
    policy: ReturnRequestPolicy,
) -> None:
    undated = request().model_copy(update={"requested_at": None})
    rec = policy.recommend(undated, order(), NOW.replace(tzinfo=None))
    assert rec.inputs["requested_at"] == "2026-03-20T12:00:00+00:00"


# --- refund_for_condition ------------------------------------------------------------------------


def amounts(components: list[RefundComponent]) -> dict[str, str]:
    return {c.type.value: str(c.amount) for c in components}


def test_used_item_is_refunded_less_a_restocking_fee(policy: ReturnRequestPolicy) -> None:
    proposal = policy.refund_for_condition(item("25.00", quantity=3), "used", 2)
    assert amounts(proposal.components) == {"Principal": "50.00", "RestockingFee": "-10.00"}
    assert (proposal.total.amount, proposal.total.currency) == (Decimal("40.00"), "USD")
    assert proposal.rule == "conditions.used"
    assert proposal.explanation == "used: 100% of 50.00 USD, less a 20% restocking fee"
    assert proposal.adjustment_reason is AdjustmentReason.CUSTOMER_RETURN


def test_proposal_becomes_a_payment_adjustment_line(policy: ReturnRequestPolicy) -> None:
    line = policy.refund_for_condition(item("25.00"), "used", 1).refund_item()
    assert line is not None
    assert line.reason is AdjustmentReason.CUSTOMER_RETURN
    assert [c.type for c in line.components] == [
        PriceComponent.PRINCIPAL,
        PriceComponent.RESTOCKING_FEE,
    ]


def test_unopened_item_is_refunded_in_full(policy: ReturnRequestPolicy) -> None:
    proposal = policy.refund_for_condition(item("25.00"), "unopened", 1)
    assert amounts(proposal.components) == {"Principal": "25.00"}
    assert "shipping price unknown, not included" in proposal.explanation


def test_shipping_is_refunded_in_proportion_when_the_item_has_a_shipping_price(
    policy: ReturnRequestPolicy,
) -> None:
    mugs = OrderItem(
        order_item_id="item-1",
        quantity=3,
        unit_price=Money(amount=Decimal("10.00"), currency="USD"),
        paid=PaidAmounts(currency="USD", item_price=Decimal("30.00"), shipping=Decimal("9.00")),
    )
    unopened = policy.refund_for_condition(mugs, "unopened", 2)
    assert amounts(unopened.components) == {"Principal": "20.00", "Shipping": "6.00"}
    assert unopened.total.amount == Decimal("26.00")
    used = policy.refund_for_condition(mugs, "used", 2)
    assert "Shipping" not in amounts(used.components)


def promoted(
    price: str, shipping: str, item_off: str, shipping_off: str, currency: str
) -> OrderItem:
    return OrderItem(
        order_item_id="item-1",
        quantity=1,
        unit_price=Money(amount=Decimal(price), currency=currency),
        paid=PaidAmounts(
            currency=currency,
            item_price=Decimal(price),
            shipping=Decimal(shipping),
            item_discount=Decimal(item_off),
            shipping_discount=Decimal(shipping_off),
            promotion_ids=["PROMO-1"],
        ),
    )


def test_a_promotion_is_kept_out_of_the_refund_as_its_own_adjustment(
    policy: ReturnRequestPolicy,
) -> None:
    item = promoted("40.00", "5.99", "8.00", "5.99", "USD")  # 20% off, free shipping
    proposal = policy.refund_for_condition(item, "unopened", 1)
    assert amounts(proposal.components) == {"Principal": "40.00", "Shipping": "5.99"}
    assert {p.type.value: str(p.amount) for p in proposal.promotions} == {
        "Principal": "-8.00",
        "Shipping": "-5.99",
    }
    assert proposal.total.amount == Decimal("32.00")  # what the buyer paid, not 45.99
    line = proposal.refund_item()
    assert line is not None and line.total == Decimal("32.00")


@pytest.mark.parametrize(
    ("currency", "price", "shipping", "off"),
    [
        ("USD", "19.99", "4.99", "3.33"),
        ("EUR", "33.33", "3.99", "6.67"),
        ("JPY", "1999", "499", "333"),
    ],
)
def test_partial_refunds_scale_every_part_and_add_up_exactly(
    policy: ReturnRequestPolicy, currency: str, price: str, shipping: str, off: str
) -> None:
    item = promoted(price, shipping, off, "0", currency)
    proposal = policy.refund_for_condition(
        item, "used", 1, reason_code="CR-UNWANTED_ITEM", country="DE"
    )
    parts = [*proposal.components, *proposal.promotions]
    assert sum((p.amount for p in parts), Decimal(0)) == proposal.total.amount
    for part in parts:
        assert excess_decimals(part.amount, currency) is None
    # 20% restocking fee on the price paid; shipping back in full (a withdrawal in DE)
    paid = Decimal(price) - Decimal(off)
    fee = -next(c.amount for c in proposal.components if c.type.value == "RestockingFee")
    assert abs(fee - paid * Decimal("0.2")) <= Decimal(1).scaleb(-2 if currency != "JPY" else 0)
    assert amounts(proposal.components)["Shipping"] == shipping
    assert proposal.rule == "withdrawal-shipping"


def test_seller_fault_gives_shipping_back_and_no_fee_in_any_country(
    policy: ReturnRequestPolicy,
) -> None:
    item = promoted("50.00", "7.50", "10.00", "0", "USD")
    proposal = policy.refund_for_condition(
        item, "used", 1, reason_code="CR-DEFECTIVE", country="US"
    )
    assert amounts(proposal.components) == {"Principal": "50.00", "Shipping": "7.50"}
    assert proposal.total.amount == Decimal("47.50")
    assert proposal.rule == "seller-fault-reason"


def test_outside_the_eu_and_uk_a_used_return_keeps_the_shipping(
    policy: ReturnRequestPolicy,
) -> None:
    item = promoted("50.00", "7.50", "0", "0", "USD")
    proposal = policy.refund_for_condition(
        item, "used", 1, reason_code="CR-UNWANTED_ITEM", country="US"
    )
    assert "Shipping" not in amounts(proposal.components)
    uk = policy.refund_for_condition(item, "used", 1, reason_code="CR-UNWANTED_ITEM", country="UK")
    assert amounts(uk.components)["Shipping"] == "7.50"


def test_yen_are_rounded_to_whole_yen(policy: ReturnRequestPolicy) -> None:
    proposal = policy.refund_for_condition(item("1999", "JPY"), "used", 1)
    assert amounts(proposal.components) == {"Principal": "1999", "RestockingFee": "-400"}
    assert proposal.total.amount == Decimal(1599)


def test_half_refund_for_an_item_the_buyer_damaged(policy: ReturnRequestPolicy) -> None:
    proposal = policy.refund_for_condition(item("19.99"), "damaged_by_buyer", 1)
    assert amounts(proposal.components) == {"Principal": "10.00"}


@pytest.mark.parametrize(("price", "condition"), [("25.00", "wrong_item"), ("0.00", "unopened")])
def test_nothing_to_refund_gives_an_empty_proposal(
    policy: ReturnRequestPolicy, price: str, condition: str
) -> None:
    proposal = policy.refund_for_condition(item(price), condition, 1)
    assert proposal.components == []
    assert proposal.total.amount == 0
    assert proposal.refund_item() is None


def test_a_seller_fault_reason_drops_the_restocking_fee(policy: ReturnRequestPolicy) -> None:
    proposal = policy.refund_for_condition(item("25.00"), "used", 1, reason_code="CR-DEFECTIVE")
    assert amounts(proposal.components) == {"Principal": "25.00"}
    assert proposal.rule == "seller-fault-reason"
    assert "CR-DEFECTIVE is the seller's side" in proposal.explanation
    buyer_remorse = policy.refund_for_condition(
        item("25.00"), "used", 1, reason_code="CR-UNWANTED_ITEM"
    )
    assert buyer_remorse.total.amount == Decimal("20.00")
    as_the_table_says = policy.refund_for_condition(
        item("25.00"), "unopened", 1, reason_code="CR-DEFECTIVE"
    )
    assert as_the_table_says.rule == "conditions.unopened"


def test_an_unknown_condition_names_the_table(policy: ReturnRequestPolicy) -> None:
    with pytest.raises(ValueError, match="unknown condition 'broken'; the condition table has:"):
        policy.refund_for_condition(item(), "broken", 1)


@pytest.mark.parametrize("quantity", [0, 4])
def test_a_quantity_the_buyer_did_not_buy_is_refused(
    policy: ReturnRequestPolicy, quantity: int
) -> None:
    with pytest.raises(ValueError, match="the buyer bought 3"):
        policy.refund_for_condition(item(quantity=3), "unopened", quantity)


def test_an_item_without_a_price_cannot_be_refunded_by_the_table(
    policy: ReturnRequestPolicy,
) -> None:
    with pytest.raises(ValueError, match="has no price"):
        policy.refund_for_condition(item(None), "unopened", 1)


def test_condition_table_reads_as_plain_lines(policy: ReturnRequestPolicy) -> None:
    assert policy.condition_names()[:3] == ["unopened", "opened_like_new", "used"]
    assert policy.condition_table_lines()[2] == (
        "- used (marks of use): 100% of the item price, less a 20% restocking fee,"
        " shipping not refunded"
    )


def test_waits_for_the_item(policy: ReturnRequestPolicy) -> None:
    assert (policy.reminder_after_days, policy.receipt_wait_days) == (14, 30)
    assert policy.reminder_wait_days == 16


# --- Business days ---------------------------------------------------------------------------------

MON = date(2026, 3, 2)


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (MON, 2, date(2026, 3, 4)),  # Monday + 2 → Wednesday
        (MON + timedelta(days=3), 2, date(2026, 3, 9)),  # Thursday → Monday
        (MON + timedelta(days=4), 2, date(2026, 3, 10)),  # Friday → Tuesday
        (MON + timedelta(days=5), 2, date(2026, 3, 10)),  # Saturday → Tuesday
        (MON + timedelta(days=6), 1, date(2026, 3, 9)),  # Sunday → Monday
        (MON + timedelta(days=4), 6, date(2026, 3, 16)),  # over two weekends
        (MON + timedelta(days=5), 0, MON + timedelta(days=5)),  # nothing to add
    ],
)
def test_add_business_days_skips_weekends(start: date, n: int, due: date) -> None:
    assert add_business_days(start, n) == due


def test_add_business_days_keeps_time_and_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    friday_evening = datetime(2026, 3, 6, 18, 30, tzinfo=tokyo)
    assert add_business_days(friday_evening, 2) == datetime(2026, 3, 10, 18, 30, tzinfo=tokyo)


def test_add_business_days_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="give 0 or more"):
        add_business_days(MON, -1)


def test_refund_deadline_after_a_weekend_receipt(policy: ReturnRequestPolicy) -> None:
    saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
    assert policy.refund_deadline(saturday) == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    assert not is_business_day(saturday) and is_business_day(policy.refund_deadline(saturday))


# --- Restocking fees as Amazon allows them -------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "fee", "allowed"),
    [(True, "20", True), (True, "21", False), (False, "50", True), (False, "50.5", False)],
)
def test_a_restocking_fee_is_held_to_amazons_ceiling_for_the_condition_tier(
    original: bool, fee: str, allowed: bool
) -> None:
    from henpin.policy import PolicyError, parse_policy

    text = (
        "version: 1\n"
        "cancel_request: {rules: [{name: all, then: ask_operator}]}\n"
        "return_request:\n"
        "  conditions:\n"
        "    opened:\n"
        "      refund_percent: 100\n"
        f"      restocking_fee_percent: {fee}\n"
        f"      in_original_condition: {str(original).lower()}\n"
    )
    if allowed:
        row = parse_policy(text.encode()).return_request.conditions["opened"]
        assert row.restocking_fee_percent == Decimal(fee)
        return
    with pytest.raises(PolicyError) as refused:
        parse_policy(text.encode(), source="policies.yaml")
    ceiling = "20%" if original else "50%"
    assert (
        f"policies.yaml:7: return_request.conditions.opened.restocking_fee_percent: Amazon allows"
        f" a restocking fee of at most {ceiling}" in str(refused.value)
    )


@pytest.mark.e2e
def test_henpin_policy_check_refuses_a_fee_amazon_would_not_allow(tmp_path: Path) -> None:
    shipped = Path(__file__).parent.parent / "policies.yaml"
    text = shipped.read_text(encoding="utf-8")
    used = "    used:\n      refund_percent: 100\n      restocking_fee_percent: 20\n"
    assert used in text
    bad = tmp_path / "policies.yaml"
    bad.write_text(text.replace(used, used.replace(": 20\n", ": 60\n")), encoding="utf-8")
    line = text[: text.index(used)].count("\n") + 3
    result = subprocess.run(
        [str(Path(sys.executable).parent / "henpin"), "policy", "check", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "HENPIN_HOME": str(tmp_path / "home")},
        check=False,
    )
    assert result.returncode == 1
    assert (
        f"{bad}:{line}: return_request.conditions.used.restocking_fee_percent: Amazon allows a"
        " restocking fee of at most 50%" in result.stderr
    )


def test_the_shipped_table_keeps_no_fee_on_items_back_as_sent() -> None:
    from henpin.policy import load_policy

    table = load_policy(Path(__file__).parent.parent / "policies.yaml").return_request.conditions
    for name, row in table.items():
        if row.in_original_condition:
            assert row.restocking_fee_percent == 0, name


def test_no_fee_on_an_item_back_as_sent_within_amazons_return_policy() -> None:
    policy = ReturnRequestPolicy.model_validate(
        {"conditions": {"opened": {"restocking_fee_percent": 15, "in_original_condition": True}}}
    )
    for in_policy in (True, None):  # the returns report says in policy, or does not say
        proposal = policy.refund_for_condition(item("40.00"), "opened", 1, in_policy=in_policy)
        assert amounts(proposal.components) == {"Principal": "40.00"}
        assert proposal.rule == "no-fee-in-policy"
        assert "within Amazon's return policy: no restocking fee" in proposal.explanation
    late = policy.refund_for_condition(item("40.00"), "opened", 1, in_policy=False)
    assert amounts(late.components) == {"Principal": "40.00", "RestockingFee": "-6.00"}
    assert late.rule == "conditions.opened"


def test_the_fee_for_an_item_not_back_as_sent_applies_within_the_policy_too(
    policy: ReturnRequestPolicy,
) -> None:
    proposal = policy.refund_for_condition(item("25.00"), "used", 1, in_policy=True)
    assert amounts(proposal.components) == {"Principal": "25.00", "RestockingFee": "-5.00"}
    seller_fault = policy.refund_for_condition(
        item("25.00"), "used", 1, reason_code="CR-DEFECTIVE", in_policy=False
    )
    assert amounts(seller_fault.components) == {"Principal": "25.00"}
