"""Case type 5, an address error: the parcel came back undeliverable because of the address.

Amazon cannot change an order's address. Henpin asks the buyer to confirm it; then the operator
chooses: reship to the confirmed address, refund part of the price by agreement (the buyer's
mistake cost the postage), or refund as buyer-caused and ask the buyer to reorder with the right
address, which gets most of the referral fee back. `options_money` puts a figure on each so the
decision form can show them side by side; they are estimates from the policy's values.

Rule names of `recommend`:
  no-answer          the buyer did not confirm the address     → `when_no_answer`
  no-item-price      the order's value is unknown               → ask_operator
  no-reship-cost     no reship cost is set for the currency     → ask_operator
  reship-costs-more  reshipping costs at least the item price   → cancel_for_reorder
  address-confirmed  the buyer confirmed the address            → `when_address_confirmed`
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator

from henpin.domain import AdjustmentReason, Order, OrderItem
from henpin.policy._base import (
    Advice,
    Amount,
    AmountByCurrency,
    Currency,
    Inputs,
    LocatedProblems,
    OperatorDeadline,
    Percent,
    PolicyModel,
    as_utc,
    exact_amounts,
    money_json,
    owner_error,
    round_money,
    share,
)
from henpin.policy.buyer_messages import DEFAULT_CONFIRM_ADDRESS, MessageText, message_in
from henpin.policy.cancel_by_message import Language
from henpin.policy.proposals import OrderRefundProposal, paid_for_units, whole_order_proposal
from henpin.policy.reasons import Phrase, Reason, amount_value, because, phrase

AddressOption = Literal["reship", "partial_refund", "cancel_for_reorder"]
AddressErrorAction = Literal["reship", "partial_refund", "cancel_for_reorder", "ask_operator"]

OPTION_LABELS: dict[AddressOption, str] = {
    "reship": "Reship to the confirmed address",
    "partial_refund": "Refund part of the item price, as agreed with the buyer",
    "cancel_for_reorder": "Refund in full as buyer-caused; the buyer reorders with the right"
    " address",
}


class RefundAdminFee(PolicyModel):
    """Amazon's refund administration fee in one currency: a share of the referral fee it gives
    back on a refund, never more than `at_most`, per refunded order item."""

    percent_of_referral_fee: Percent = Decimal(20)
    at_most: Amount = Decimal(5)


class AddressErrorOperatorPolicy(OperatorDeadline):
    """How long an operator has to choose a way out; unanswered, the owner takes over."""

    deadline_hours: float = Field(default=48, gt=0, le=24 * 14)
    on_deadline: Literal["escalate"] = "escalate"


class OptionMoney(BaseModel):
    """What one way out costs or brings, from now on, in the order's currency.

    `net` is money in (+) or out (−) of the seller's balance if this option is chosen; the first
    shipping, already spent, is the same for all options and left out. None means unknown.
    """

    model_config = ConfigDict(frozen=True)

    choice: AddressOption
    label: str
    currency: str | None
    item_price: Decimal | None
    shipping_paid: Decimal | None  # what the buyer paid for shipping
    refund_to_buyer: Decimal | None
    reship_cost: Decimal | None
    referral_fee: Decimal | None  # what Amazon charged on the sale
    referral_fee_back: Decimal | None  # what Amazon gives back of it on this refund
    refund_admin_fee: Decimal | None  # what Amazon keeps of that
    net: Decimal | None
    keeps_item: bool  # True when the item stays with the seller (to restock or resell)
    notes: list[str]  # in English, as they always were
    note_phrases: list[dict[str, JsonValue]] = []  # the same notes, coded (`money_note`)


class AddressErrorRecommendation(Advice):
    action: AddressErrorAction


def _default_admin_fees() -> dict[str, RefundAdminFee]:
    five = RefundAdminFee()
    return {
        "USD": five,
        "CAD": five,
        "GBP": five,
        "EUR": five,
        "JPY": RefundAdminFee(percent_of_referral_fee=Decimal(10), at_most=Decimal(500)),
    }


def _exact_fee_caps(fees: dict[str, RefundAdminFee]) -> dict[str, RefundAdminFee]:
    """Each fee's `at_most` in its currency's minor unit (refused at its own key otherwise)."""
    try:
        exact_amounts({currency: fee.at_most for currency, fee in fees.items()})
    except LocatedProblems as e:
        raise LocatedProblems([((*where, "at_most"), msg) for where, msg in e.problems]) from e
    return fees


class AddressErrorPolicy(PolicyModel):
    """A parcel came back because of the address: the waits and the money of each way out."""

    answer_wait_days: int = Field(default=7, ge=1, le=30)
    reship_cost: AmountByCurrency = Field(
        default_factory=lambda: {
            "USD": Decimal(15),
            "CAD": Decimal(20),
            "MXN": Decimal(300),
            "GBP": Decimal(12),
            "EUR": Decimal(15),
            "JPY": Decimal(1500),
        }
    )
    referral_fee_percent: Percent = Decimal(15)
    refund_admin_fee: Annotated[dict[Currency, RefundAdminFee], AfterValidator(_exact_fee_caps)] = (
        Field(default_factory=_default_admin_fees)
    )
    partial_refund_percent: Percent = Decimal(80)
    when_address_confirmed: AddressOption = "reship"
    when_no_answer: AddressErrorAction = "cancel_for_reorder"
    operator: AddressErrorOperatorPolicy = AddressErrorOperatorPolicy()
    confirm_address: dict[Language, MessageText] = Field(
        default_factory=lambda: dict(DEFAULT_CONFIRM_ADDRESS)
    )

    @field_validator("confirm_address")
    @classmethod
    def _english_for_the_rest(cls, texts: dict[str, str]) -> dict[str, str]:
        if "en" not in texts:
            raise owner_error(
                "give an `en` text: it is sent to buyers whose language has no text here"
            )
        return texts

    def confirm_address_text(self, order: Order, language: str) -> str:
        """The message asking the buyer to confirm their delivery address (Amazon's confirm
        delivery details), in the buyer's language; English when the policy has none in it."""
        return message_in(self.confirm_address, order, language)

    def admin_fee_rule(self, currency: str) -> tuple[RefundAdminFee, bool]:
        """The refund administration fee rule for a currency, and whether the policy lists it
        (else Amazon's usual rule applies: 20% of the referral fee, at most 5.00)."""
        listed = self.refund_admin_fee.get(currency)
        return (listed, True) if listed is not None else (RefundAdminFee(), False)

    def options_money(self, order: Order) -> list[OptionMoney]:
        """Reship, partial refund, cancel for reorder: what each costs or brings back."""
        found = [_Line.of(item, self) for item in order.items]
        lines = [line for line in found if line is not None]
        currencies = {line.currency for line in lines}
        if not lines or len(currencies) != 1 or len(lines) != len(found):
            why = "mixed-currencies" if len(currencies) > 1 else "price-unknown"
            return [_unknown(choice, phrase("money_note", why)) for choice in OPTION_LABELS]
        currency = currencies.pop()
        notes = _shared_notes(self, currency, lines)
        item_price = sum((line.price for line in lines), Decimal(0))
        shipping = (
            None
            if any(line.shipping is None for line in lines)
            else sum((line.shipping or Decimal(0) for line in lines), Decimal(0))
        )
        referral = sum((line.referral_fee for line in lines), Decimal(0))

        def option(
            choice: AddressOption,
            refunds: list[Decimal],
            *,
            reship: Decimal | None = None,
            extra: list[Phrase] | None = None,
        ) -> OptionMoney:
            back = admin = Decimal(0)
            for line, refund in zip(lines, refunds, strict=True):
                line_back, line_admin = line.fees_back(refund)
                back += line_back
                admin += line_admin
            refund_total = sum(refunds, Decimal(0))
            net = -refund_total + back - admin - (reship or Decimal(0))
            unknown_reship = choice == "reship" and reship is None
            return OptionMoney(
                choice=choice,
                label=OPTION_LABELS[choice],
                currency=currency,
                item_price=item_price,
                shipping_paid=shipping,
                refund_to_buyer=refund_total,
                reship_cost=reship,
                referral_fee=referral,
                referral_fee_back=back,
                refund_admin_fee=admin,
                net=None if unknown_reship else round_money(net, currency),
                keeps_item=choice != "reship",
                **_notes(notes + (extra or [])),
            )

        reship = self.reship_cost.get(currency)
        partial = [p.total.amount for p in self.refund_proposal(order, "partial_refund").items]
        full = [p.total.amount for p in self.refund_proposal(order, "cancel_for_reorder").items]
        return [
            option(
                "reship",
                [Decimal(0)] * len(lines),
                reship=reship,
                extra=[]
                if reship is not None
                else [phrase("money_note", "no-reship-cost", currency=currency)],
            ),
            option(
                "partial_refund",
                partial,
                extra=[
                    phrase(
                        "money_note", "partial-refund", percent=f"{self.partial_refund_percent:g}"
                    )
                ],
            ),
            option(
                "cancel_for_reorder",
                full,
                extra=[
                    phrase("money_note", "full-refund"),
                    phrase("money_note", "reorder-not-counted"),
                ],
            ),
        ]

    def refund_proposal(
        self, order: Order, choice: Literal["partial_refund", "cancel_for_reorder"]
    ) -> OrderRefundProposal:
        """The refund of a way out, as it is shown and sent: `partial_refund_percent` % of each
        item's price paid (shipping kept, reason CustomerAddressIncorrect), or everything the
        buyer paid, shipping included (cancel for reorder, reason CustomerCancel: buyer-caused,
        so Amazon gives the referral fee back less its administration fee)."""
        partial = choice == "partial_refund"
        return whole_order_proposal(
            order,
            reason=AdjustmentReason.CUSTOMER_ADDRESS_INCORRECT
            if partial
            else AdjustmentReason.CUSTOMER_CANCEL,
            rule=choice,
            explanation=phrase("explanation", f"option-{choice}"),
            inputs={"partial_refund_percent": str(self.partial_refund_percent)},
            percent=self.partial_refund_percent if partial else Decimal(100),
            shipping_percent=None if partial else Decimal(100),
        )

    def recommend(
        self, order: Order, *, address_confirmed: bool, now: datetime
    ) -> AddressErrorRecommendation:
        """Which way out to preselect on the decision form, and why."""
        options = self.options_money(order)
        value = order.value
        inputs: Inputs = {
            "order_id": order.order_id,
            "marketplace_id": order.marketplace_id,
            "address_confirmed": address_confirmed,
            "order_value": money_json(value),
            "options": [
                o.model_dump(mode="json", exclude={"label", "notes", "note_phrases"})
                for o in options
            ],
            "evaluated_at": as_utc(now).isoformat(),
        }

        def says(
            action: AddressErrorAction, rule: str, reason: Reason
        ) -> AddressErrorRecommendation:
            return AddressErrorRecommendation(
                action=action, rule=rule, inputs=inputs, **reason.fields()
            )

        if not address_confirmed:
            return says(
                self.when_no_answer,
                "no-answer",
                because("no-answer-reorder")
                if self.when_no_answer == "cancel_for_reorder"
                else because("no-answer-policy", action=self.when_no_answer),
            )
        if value is None:
            return says(
                "ask_operator",
                "no-item-price",
                because("order-value-unknown", why=order.value_unknown_because),
            )
        if self.when_address_confirmed == "reship":
            cost = self.reship_cost.get(value.currency)
            if cost is None:
                return says(
                    "ask_operator",
                    "no-reship-cost",
                    because("no-reship-cost", currency=value.currency),
                )
            if cost >= value.amount:
                return says(
                    "cancel_for_reorder",
                    "reship-costs-more",
                    because(
                        "reship-costs-more",
                        cost=amount_value(cost, value.currency),
                        price=amount_value(value.amount, value.currency),
                    ),
                )
        return says(
            self.when_address_confirmed,
            "address-confirmed",
            because("address-confirmed", action=self.when_address_confirmed),
        )


@dataclass(frozen=True)
class _Line:
    """One order item's money, as the referral and refund administration fees see it."""

    currency: str
    price: Decimal
    shipping: Decimal | None  # None: unknown
    referral_fee: Decimal
    admin: RefundAdminFee

    @classmethod
    def of(cls, item: OrderItem, policy: AddressErrorPolicy) -> _Line | None:
        """The item's money as the buyer paid it (less promotions); None when its price is
        unknown."""
        paid = paid_for_units(item, item.quantity)
        if paid is None:
            return None
        currency, price, shipping = paid.currency, paid.net_price, paid.net_shipping
        base = price + (shipping or Decimal(0))
        referral = share(base, policy.referral_fee_percent, currency)
        admin, _ = policy.admin_fee_rule(currency)
        return cls(currency, price, shipping, referral, admin)

    def fees_back(self, refund: Decimal) -> tuple[Decimal, Decimal]:
        """(referral fee Amazon gives back, administration fee it keeps) for refunding `refund`
        of this item: the referral fee in proportion to the refund, the fee a share of that,
        capped per item."""
        paid = self.price + (self.shipping or Decimal(0))
        if refund <= 0 or paid <= 0:
            return Decimal(0), Decimal(0)
        back = round_money(self.referral_fee * min(refund / paid, Decimal(1)), self.currency)
        fee = min(
            share(back, self.admin.percent_of_referral_fee, self.currency), self.admin.at_most
        )
        return back, fee


def _shared_notes(policy: AddressErrorPolicy, currency: str, lines: list[_Line]) -> list[Phrase]:
    notes = [
        phrase("money_note", "referral-fee-estimated", percent=f"{policy.referral_fee_percent:g}")
    ]
    rule, listed = policy.admin_fee_rule(currency)
    if not listed:
        notes.append(
            phrase(
                "money_note",
                "admin-fee-not-set",
                currency=currency,
                percent=f"{rule.percent_of_referral_fee:g}",
                at_most=f"{rule.at_most:g}",
            )
        )
    if any(line.shipping is None for line in lines):
        notes.append(phrase("money_note", "shipping-unknown"))
    return notes


def _notes(notes: list[Phrase]) -> dict[str, Any]:
    """An option's notes: in English (`notes`) and coded (`note_phrases`)."""
    return {"notes": [n.text for n in notes], "note_phrases": [n.as_json() for n in notes]}


def _unknown(choice: AddressOption, why: Phrase) -> OptionMoney:
    return OptionMoney(
        choice=choice,
        label=OPTION_LABELS[choice],
        currency=None,
        item_price=None,
        shipping_paid=None,
        refund_to_buyer=None,
        reship_cost=None,
        referral_fee=None,
        referral_fee_back=None,
        refund_admin_fee=None,
        net=None,
        keeps_item=choice != "reship",
        **_notes([why]),
    )
