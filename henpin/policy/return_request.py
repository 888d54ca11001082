"""Case type 2, a return request (Return Center): recommend authorizing or declining, wait for the
item, then refund by the condition it came back in.

SP-API cannot authorize a merchant-fulfilled return, so `recommend` only advises; the operator
clicks in Seller Central. A return Amazon authorized itself (US in-policy returns since 2021, or a
marketplace set to authorize automatically) is not a question: it is recommended as authorized. The checks run in a fixed order, and each has a rule name that is
recorded on the case:

  amazon-authorized      Amazon already authorized the return (the report's
                         status): nothing to decide, never decline             → authorize
  comment-keyword        the buyer's comment mentions a listed word        → ask_operator
  item-not-in-order      the returned item is not one of the order's items → ask_operator
  no-item-price          the item's price is unknown or zero               → ask_operator
  outside-return-window  requested later than the window allows            → `outside_window`
  reason-decline         the reason code is listed under reasons.decline    → decline
  reason-ask-operator    the reason code is listed under reasons.ask_operator → ask_operator
  cheap-item             worth less than `keep_item_under` (return shipping
                         would cost more than the item)                      → keep_item_refund
  no-value-limit         no `authorize_up_to` for the currency              → ask_operator
  over-value-limit       worth more than `authorize_up_to`                  → ask_operator
  reason-authorize       the reason code is listed under reasons.authorize  → authorize
  reason-not-listed      any other reason code                              → reasons.other
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, model_validator

from henpin.domain import (
    AdjustmentReason,
    AuthorizationStatus,
    Order,
    OrderItem,
    PriceComponent,
    ReturnRequest,
)
from henpin.policy._base import (
    Advice,
    AmountByCurrency,
    Inputs,
    Loc,
    LocatedProblems,
    OperatorDeadline,
    Percent,
    PolicyModel,
    Text,
    as_utc,
    mentions,
    money,
    money_json,
    owner_error,
)
from henpin.policy.business_days import add_business_days
from henpin.policy.proposals import (
    RefundProposal,
    check_quantity,
    explained,
    paid_for_units,
    parts_total,
    refund_parts,
    shipping_paid,
    units_value,
)
from henpin.policy.reasons import Reason, amount_value, because, phrase

ReturnAction = Literal["authorize", "decline", "keep_item_refund", "ask_operator"]
ReasonAction = Literal["authorize", "decline", "ask_operator"]

_REASON_CODE = re.compile(r"^(CR|AMZ-PG)-[A-Z0-9_-]+$")
_CONDITION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Amazon's ceilings on a restocking fee, in percent of the item price, by the condition the item
#: came back in (`in_original_condition`). From Amazon's US guidance; no marketplace-specific
#: ceiling was found for the other marketplaces, so the US ones apply there too (conservative):
#: - seller-fault returns (defective, damaged, wrong item, not as described): no fee, full refund
#:   with shipping (Seller Central help G202175040,
#:   https://sellercentral.amazon.com/gp/help/external/G202175040): see `seller_fault_reasons`;
#: - in original condition (unopened, or opened but complete and unused: buyer's remorse): none
#:   on a return within Amazon's return policy (Amazon's policy update of 30 Sep 2020: "Items
#:   returned within Amazon's return policy and in original condition will no longer be eligible
#:   for restocking fees", https://sellercentral.amazon.com/forums/t/policy-update-updates-to-
#:   the-seller-fulfilled-returns-refund-workflow/698297); at most 20% on one outside it
#:   (Amazon's partial-refund guidance for items in original condition returned late, quoted at
#:   https://www.ecommercebytes.com/cab/abn/y12/m10/i09/s02; Amazon's own late fee is 20%);
#: - not in original condition (damaged, used, parts missing, for reasons not the seller's or
#:   Amazon's): at most 50% (the same guidance, and Amazon's damage fee, "up to 50% of the item
#:   price", in its customer Refunds help). A fee of 20% or more needs a photo of the item in
#:   Seller Central (the 2020 update).
MAX_RESTOCKING_FEE_PERCENT = {True: Decimal(20), False: Decimal(50)}


def _reason_code(code: str) -> str:
    wanted = code.strip().upper()
    if not _REASON_CODE.match(wanted):
        raise owner_error(
            f"Amazon return reason codes look like CR-DEFECTIVE or AMZ-PG-BAD-DESC (got {code!r})"
        )
    return wanted


def _condition_name(name: str) -> str:
    if not _CONDITION_NAME.match(name):
        raise owner_error(
            "condition names use lowercase letters, digits and underscores, e.g. opened_like_new"
            f" (got {name!r})"
        )
    return name


ReasonCode = Annotated[str, AfterValidator(_reason_code)]
ConditionName = Annotated[str, AfterValidator(_condition_name)]


class ReturnReasons(PolicyModel):
    """Amazon's return reason codes, sorted into what Henpin recommends for each."""

    authorize: tuple[ReasonCode, ...] = (
        "CR-DEFECTIVE",
        "CR-DAMAGED_BY_CARRIER",
        "CR-DAMAGED_BY_FC",
        "CR-SWITCHEROO",
        "CR-NOT_AS_DESCRIBED",
        "AMZ-PG-BAD-DESC",
        "CR-MISSING_PARTS",
        "CR-QUALITY_UNACCEPTABLE",
        "CR-MISSED_ESTIMATED_DELIVERY",
        "CR-UNWANTED_ITEM",
        "CR-ORDERED_WRONG_ITEM",
        "CR-NOT_COMPATIBLE",
        "CR-FOUND_BETTER_PRICE",
        "CR-EXTRA_ITEM",
    )
    decline: tuple[ReasonCode, ...] = ()
    ask_operator: tuple[ReasonCode, ...] = ("CR-UNAUTHORIZED_PURCHASE",)
    other: ReasonAction = "ask_operator"  # for a reason code in none of the lists

    @model_validator(mode="after")
    def _each_code_in_one_list(self) -> ReturnReasons:
        seen: dict[str, str] = {}
        problems: list[tuple[Loc, str]] = []
        for list_name in ("authorize", "decline", "ask_operator"):
            for index, code in enumerate(getattr(self, list_name)):
                if code in seen:
                    problems.append(
                        (
                            (list_name, index),
                            f"{code} is also listed under {seen[code]}; a reason code goes in"
                            " one list only",
                        )
                    )
                seen.setdefault(code, list_name)
        if problems:
            raise LocatedProblems(problems)
        return self

    def action_for(self, code: str | None) -> tuple[ReasonAction, str]:
        """The recommended action for a reason code, and the rule that says so."""
        if code in self.decline:
            return "decline", "reason-decline"
        if code in self.ask_operator:
            return "ask_operator", "reason-ask-operator"
        if code in self.authorize:
            return "authorize", "reason-authorize"
        return self.other, "reason-not-listed"


class ConditionRefund(PolicyModel):
    """One line of the condition table: what a returned item in this condition gets back."""

    refund_percent: Percent = Decimal(100)  # of the item price
    restocking_fee_percent: Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)] = Decimal(
        0
    )
    refund_shipping: bool = False
    description: Text | None = None  # what the operator sees next to the name
    #: Amazon's tier: the item came back as it was sent (unopened, or opened, complete and
    #: unused). True unless said otherwise: the lower ceiling is the safe guess.
    in_original_condition: bool = True

    @model_validator(mode="after")
    def _fee_within_amazons_ceiling(self) -> ConditionRefund:
        ceiling = MAX_RESTOCKING_FEE_PERCENT[self.in_original_condition]
        if self.restocking_fee_percent > ceiling:
            tier = (
                "an item returned in its original condition (in_original_condition: true), and"
                " none on one returned within Amazon's return policy"
                if self.in_original_condition
                else "an item returned damaged, used or incomplete (in_original_condition: false)"
            )
            raise LocatedProblems(
                [
                    (
                        ("restocking_fee_percent",),
                        f"Amazon allows a restocking fee of at most {ceiling:g}% on {tier};"
                        f" {self.restocking_fee_percent:g}% is more: lower the fee",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _fee_within_refund(self) -> ConditionRefund:
        if self.restocking_fee_percent > self.refund_percent:
            raise LocatedProblems(
                [
                    (
                        ("restocking_fee_percent",),
                        f"the restocking fee ({self.restocking_fee_percent}%) is more than the"
                        f" refund ({self.refund_percent}%), so the buyer would owe you money;"
                        " lower the fee",
                    )
                ]
            )
        return self

    def summary(self) -> str:
        parts = [f"{self.refund_percent:g}% of the item price"]
        if self.restocking_fee_percent:
            parts.append(f"less a {self.restocking_fee_percent:g}% restocking fee")
        parts.append("shipping refunded" if self.refund_shipping else "shipping not refunded")
        return ", ".join(parts)


DEFAULT_CONDITIONS: dict[str, ConditionRefund] = {
    "unopened": ConditionRefund(refund_shipping=True, description="sealed, as sent"),
    "opened_like_new": ConditionRefund(description="opened, complete, no marks of use"),
    "used": ConditionRefund(
        restocking_fee_percent=Decimal(20), description="marks of use", in_original_condition=False
    ),
    "missing_parts": ConditionRefund(
        restocking_fee_percent=Decimal(20),
        description="parts or accessories missing",
        in_original_condition=False,
    ),
    "damaged_by_buyer": ConditionRefund(
        refund_percent=Decimal(50),
        description="damaged after delivery",
        in_original_condition=False,
    ),
    "wrong_item": ConditionRefund(
        refund_percent=Decimal(0),
        description="not the item you sent: refund nothing, file a SAFE-T claim",
        in_original_condition=False,
    ),
}


def _table_not_empty(table: dict[str, ConditionRefund]) -> dict[str, ConditionRefund]:
    if not table:
        raise owner_error("list at least one condition, e.g. unopened")
    return table


class ReturnOperatorPolicy(OperatorDeadline):
    """How long an operator has to record what they did in Manage Returns (Amazon expects an
    answer within 24 hours). Henpin cannot authorize or decline by itself, so an unanswered case
    is escalated to the owner."""

    on_deadline: Literal["escalate"] = "escalate"
    #: The least time a person gets to answer a question whose due time Amazon fixed (the 24
    #: hours after the request, the refund deadline), counted from when Henpin asks: a question
    #: asked after Amazon's due time is not timed out before anyone could see it.
    minimum_hours: float = Field(default=4, gt=0, le=72)


class ReturnRecommendation(Advice):
    """What policy recommends for a return request."""

    action: ReturnAction


class ReturnRequestPolicy(PolicyModel):
    """A buyer asked to return an item: what to recommend, how long to wait, what to refund."""

    return_window_days: int = Field(default=30, ge=1, le=365)
    delivery_days_assumed: int = Field(default=7, ge=0, le=60)
    outside_window: Literal["decline", "ask_operator"] = "ask_operator"
    reasons: ReturnReasons = ReturnReasons()
    authorize_up_to: AmountByCurrency = Field(
        default_factory=lambda: {
            "USD": Decimal(200),
            "CAD": Decimal(250),
            "MXN": Decimal(4000),
            "GBP": Decimal(150),
            "EUR": Decimal(180),
            "JPY": Decimal(30000),
        }
    )
    comment_keywords: tuple[Text, ...] = (
        "lawyer",
        "chargeback",
        "A-to-z",
        "fraud",
        "police",
        "弁護士",
        "Anwalt",
        "avocat",
        "avvocato",
        "abogado",
    )
    keep_item_under: AmountByCurrency = Field(
        default_factory=lambda: {
            "USD": Decimal(15),
            "CAD": Decimal(20),
            "MXN": Decimal(250),
            "GBP": Decimal(12),
            "EUR": Decimal(15),
            "JPY": Decimal(1500),
        }
    )
    operator: ReturnOperatorPolicy = ReturnOperatorPolicy()
    reminder_after_days: int = Field(default=14, ge=1, le=90)
    receipt_wait_days: int = Field(default=30, ge=2, le=120)
    conditions: Annotated[
        dict[ConditionName, ConditionRefund], AfterValidator(_table_not_empty)
    ] = Field(default_factory=lambda: dict(DEFAULT_CONDITIONS))
    seller_fault_reasons: tuple[ReasonCode, ...] = (
        "CR-DEFECTIVE",
        "CR-DAMAGED_BY_CARRIER",
        "CR-DAMAGED_BY_FC",
        "CR-SWITCHEROO",
        "CR-NOT_AS_DESCRIBED",
        "AMZ-PG-BAD-DESC",
        "CR-MISSING_PARTS",
        "CR-QUALITY_UNACCEPTABLE",
    )
    refund_deadline_business_days: int = Field(default=2, ge=1, le=10)
    #: Countries (Henpin's storefront codes, henpin/marketplaces.py) whose law gives a buyer who withdraws from the
    #: sale the standard outbound delivery cost back: the EU (Directive 2011/83/EU art. 13(1))
    #: and the UK (Consumer Contracts Regulations 2013, reg. 34). Every return there is taken
    #: as a withdrawal. Empty: only the condition table and seller-fault reasons decide.
    shipping_refunded_by_law_in: tuple[Annotated[str, Field(pattern=r"^[A-Z]{2}$")], ...] = (
        "UK",
        "IE",
        "DE",
        "FR",
        "IT",
        "ES",
        "NL",
        "SE",
        "PL",
        "BE",
    )

    @model_validator(mode="after")
    def _reminder_before_escalation(self) -> ReturnRequestPolicy:
        if self.reminder_after_days >= self.receipt_wait_days:
            raise LocatedProblems(
                [
                    (
                        ("reminder_after_days",),
                        f"the reminder ({self.reminder_after_days} days) must come before the"
                        f" wait ends ({self.receipt_wait_days} days, receipt_wait_days); lower"
                        " it or raise receipt_wait_days",
                    )
                ]
            )
        return self

    # --- The waits -------------------------------------------------------------------------------

    @property
    def reminder_wait_days(self) -> int:
        """Days from the reminder to the end of the wait (then the case escalates)."""
        return self.receipt_wait_days - self.reminder_after_days

    def refund_deadline(self, received_at: datetime, time_zone: str = "UTC") -> datetime:
        """When the refund is due: `refund_deadline_business_days` business days after the item
        came back, counted in the marketplace's local time (`time_zone`, IANA name): a Saturday
        morning in Tokyo is still Friday in UTC, and Saturday is no business day there. The
        answer is that instant, in UTC."""
        local = as_utc(received_at).astimezone(ZoneInfo(time_zone))
        return as_utc(add_business_days(local, self.refund_deadline_business_days))

    # --- Authorize or decline --------------------------------------------------------------------

    def recommend(self, ret: ReturnRequest, order: Order, now: datetime) -> ReturnRecommendation:
        """Recommend authorizing, declining, or letting the buyer keep a cheap item (refunding its
        price), or ask a person. The first check that applies decides (see the module's list)."""
        now = as_utc(now)
        item = returned_item(ret, order)
        quantity = _returned_quantity(ret, item)
        value = units_value(item, quantity) if item is not None else None
        requested = as_utc(ret.requested_at) if ret.requested_at else now
        delivered, counted_from = _window_start(order, self.delivery_days_assumed)
        days = (requested - delivered).total_seconds() / 86400
        inputs: Inputs = {
            "order_id": order.order_id,
            "marketplace_id": order.marketplace_id,
            "order_item_id": item.order_item_id if item else ret.order_item_id,
            "sku": ret.sku,
            "quantity": quantity,
            "requested_quantity": ret.quantity,
            "returned_value": money_json(value),
            "reason_code": ret.reason_code,
            "buyer_comment": ret.buyer_comment,
            "requested_at": requested.isoformat(),
            "amazon_in_policy": ret.in_policy,
            "amazon_status": ret.status,
            "expected_delivery": delivered.isoformat(),
            "expected_delivery_counted_from": counted_from,
            "days_after_expected_delivery": round(days, 1),
            "evaluated_at": now.isoformat(),
        }

        def says(action: ReturnAction, rule: str, reason: Reason) -> ReturnRecommendation:
            return ReturnRecommendation(action=action, rule=rule, inputs=inputs, **reason.fields())

        if ret.authorization_status is AuthorizationStatus.AUTHORIZED:
            return says(
                "authorize", "amazon-authorized", because("amazon-authorized", status=ret.status)
            )

        keyword = mentions(ret.buyer_comment, self.comment_keywords)
        if keyword is not None:
            return says(
                "ask_operator", "comment-keyword", because("comment-keyword", keyword=keyword)
            )
        if item is None:
            return says(
                "ask_operator",
                "item-not-in-order",
                because("item-not-in-order", item=ret.order_item_id or ret.sku),
            )
        if value is None or value.amount == 0:
            return says(
                "ask_operator",
                "no-item-price",
                because("item-price-zero" if value is not None else "item-price-unknown"),
            )
        if ret.in_policy is False:
            return says(
                self.outside_window, "outside-return-window", because("outside-policy-at-amazon")
            )
        if days > self.return_window_days:
            return says(
                self.outside_window,
                "outside-return-window",
                because(
                    "outside-return-window",
                    days=f"{days:.0f}",
                    counted_from=counted_from,
                    delivery_days=self.delivery_days_assumed,
                    window=self.return_window_days,
                ),
            )
        code = (ret.reason_code or "").strip().upper() or None
        reason_action, reason_rule = self.reasons.action_for(code)
        if reason_rule in ("reason-decline", "reason-ask-operator"):
            return says(
                reason_action,
                reason_rule,
                because("return-reason-listed", code=code, action=reason_action),
            )
        shown = amount_value(value.amount, value.currency)
        cheap = self.keep_item_under.get(value.currency)
        if cheap is not None and value.amount < cheap:
            return says(
                "keep_item_refund",
                "cheap-item",
                because("cheap-item", value=shown, under=amount_value(cheap, value.currency)),
            )
        limit = self.authorize_up_to.get(value.currency)
        if limit is None:
            return says(
                "ask_operator", "no-value-limit", because("no-value-limit", currency=value.currency)
            )
        if value.amount > limit:
            return says(
                "ask_operator",
                "over-value-limit",
                because("over-value-limit", value=shown, limit=amount_value(limit, value.currency)),
            )
        if reason_rule == "reason-authorize":
            return says(
                "authorize",
                reason_rule,
                because("return-reason-listed", code=code, action="authorize"),
            )
        if code is None:
            return says(
                reason_action, reason_rule, because("no-return-reason", action=reason_action)
            )
        return says(
            reason_action,
            reason_rule,
            because("return-reason-not-listed", code=code, action=reason_action),
        )

    # --- Refund by condition ---------------------------------------------------------------------

    def condition_names(self) -> list[str]:
        return list(self.conditions)

    def condition_descriptions(self) -> dict[str, str]:
        """Each condition's description, where policies.yaml gives one."""
        return {name: row.description for name, row in self.conditions.items() if row.description}

    def condition_table_lines(self) -> list[str]:
        """The condition table in plain words, one line per condition, for the operator."""
        lines = []
        for name, row in self.conditions.items():
            about = f" ({row.description})" if row.description else ""
            lines.append(f"- {name}{about}: {row.summary()}")
        return lines

    def refund_for_condition(
        self,
        order_item: OrderItem,
        condition: str,
        quantity: int,
        *,
        reason_code: str | None = None,
        in_policy: bool | None = None,
        country: str | None = None,
    ) -> RefundProposal:
        """The refund for `quantity` returned units of an item in `condition`, by the table:
        Principal (the refund share of the price), Shipping (that share of the units' shipping,
        if the condition refunds it), the promotions' shares (negative: the buyer gets back
        what they paid, not the price before the discount) and RestockingFee (negative, a share
        of the price paid). `refund_parts` makes them; they add up exactly to the total.

        When `reason_code` is one of `seller_fault_reasons` (defective, not as described, ...),
        Amazon allows no restocking fee and the buyer gets the shipping back (help G202175040):
        the table's fee and shipping are overridden, and the rule says so. An item back in its
        original condition on a return within Amazon's return policy (`in_policy`: the returns
        report's word; unknown counts as within) carries no restocking fee either: Amazon allows
        none there (`MAX_RESTOCKING_FEE_PERCENT`). In a marketplace whose `country` is in
        `shipping_refunded_by_law_in`, a return is a withdrawal and the outbound shipping goes
        back in full (rule `withdrawal-shipping` when the table would have kept it).
        """
        row = self.conditions.get(condition)
        if row is None:
            known = ", ".join(self.conditions)
            raise ValueError(f"unknown condition {condition!r}; the condition table has: {known}")
        check_quantity(order_item, quantity)
        paid = paid_for_units(order_item, quantity)
        if paid is None:
            raise ValueError(
                f"order item {order_item.order_item_id} has no price, so no refund can be computed"
            )
        currency = paid.currency
        code = (reason_code or "").strip().upper()
        seller_fault = code in self.seller_fault_reasons
        overridden = seller_fault and (row.restocking_fee_percent > 0 or not row.refund_shipping)
        as_sent_in_policy = (
            not seller_fault
            and row.in_original_condition
            and in_policy is not False
            and row.restocking_fee_percent > 0
        )
        by_law = (
            not seller_fault
            and row.refund_percent > 0
            and (country or "").upper() in self.shipping_refunded_by_law_in
        )
        no_fee = seller_fault or as_sent_in_policy
        fee_percent = Decimal(0) if no_fee else row.restocking_fee_percent
        if seller_fault or by_law:
            shipping_percent: Decimal | None = Decimal(100)
        else:
            shipping_percent = row.refund_percent if row.refund_shipping else None
        components, promotions = refund_parts(
            paid,
            percent=row.refund_percent,
            fee_percent=fee_percent,
            shipping_percent=shipping_percent,
        )
        total = money(parts_total(components, promotions), currency)

        def amount_of(kind: PriceComponent) -> Decimal:
            return sum((c.amount for c in components if c.type is kind), Decimal(0))

        shipping_back = amount_of(PriceComponent.SHIPPING)
        said = [
            phrase(
                "explanation",
                "percent-of-price",
                percent=f"{row.refund_percent:g}",
                price=amount_value(paid.price, currency),
            )
        ]
        if promotions:
            promotion = -sum((p.amount for p in promotions), Decimal(0))
            said.append(
                phrase("explanation", "less-promotion", promotion=amount_value(promotion, currency))
            )
        if fee_percent and amount_of(PriceComponent.RESTOCKING_FEE):
            said.append(phrase("explanation", "less-restocking-fee", percent=f"{fee_percent:g}"))
        if shipping_back:
            said.append(
                phrase(
                    "explanation", "plus-shipping", shipping=amount_value(shipping_back, currency)
                )
            )
        elif shipping_percent is not None and paid.shipping is None:
            said.append(phrase("explanation", "shipping-unknown"))
        if overridden:
            said.append(phrase("explanation", "seller-fault", code=code))
        if as_sent_in_policy:
            said.append(phrase("explanation", "in-policy-no-fee"))
        if by_law and not row.refund_shipping:
            said.append(phrase("explanation", "withdrawal-shipping"))
        if overridden:
            rule = "seller-fault-reason"
        elif by_law and not row.refund_shipping:
            rule = "withdrawal-shipping"
        elif as_sent_in_policy:
            rule = "no-fee-in-policy"
        else:
            rule = f"conditions.{condition}"
        return RefundProposal(
            order_item_id=order_item.order_item_id,
            quantity=quantity,
            condition=condition,
            adjustment_reason=AdjustmentReason.CUSTOMER_RETURN,
            components=components,
            promotions=promotions,
            total=total,
            rule=rule,
            **explained(
                phrase(
                    "explanation",
                    "condition",
                    condition=condition,
                    parts=[s.as_json() for s in said],
                )
            ),
            inputs={
                "order_item_id": order_item.order_item_id,
                "condition": condition,
                "quantity": quantity,
                "bought_quantity": order_item.quantity,
                "unit_price": money_json(order_item.unit_price),
                "price_paid": str(paid.net_price),
                "promotion_discount": str(paid.item_discount + paid.shipping_discount),
                "shipping_paid": money_json(shipping_paid(order_item, quantity)),
                "reason_code": code or None,
                "amazon_in_policy": in_policy,
                "country": country,
                "refund_percent": str(row.refund_percent),
                "restocking_fee_percent": str(fee_percent),
                "refund_shipping": shipping_percent is not None,
            },
        )


def returned_item(ret: ReturnRequest, order: Order) -> OrderItem | None:
    """The order item a return is about: by order item id, else by SKU; None if neither fits."""
    for item in order.items:
        if ret.order_item_id and item.order_item_id == ret.order_item_id:
            return item
    for item in order.items:
        if ret.sku and item.sku == ret.sku:
            return item
    return None


def _returned_quantity(ret: ReturnRequest, item: OrderItem | None) -> int:
    wanted = ret.quantity or 1
    return min(wanted, item.quantity) if item is not None else wanted


def _window_start(order: Order, delivery_days: int) -> tuple[datetime, str]:
    """The expected delivery day, where the return window starts. Henpin is not told the delivery
    day, so it takes the last parcel's shipping day (else the order day) plus `delivery_days`."""
    shipped = [as_utc(p.ship_time) for p in order.packages if p.ship_time is not None]
    if shipped:
        return max(shipped) + timedelta(days=delivery_days), "shipping day"
    return as_utc(order.created_time) + timedelta(days=delivery_days), "order day"
