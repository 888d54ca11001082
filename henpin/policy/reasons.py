"""Why policy recommends what it does: a reason code and its values, worded in English here.

A recommendation keeps its reason three ways: `reason` (these English words, as it always had, for
the CLI, the Prefect UI and old readers), `reason_code` and `reason_values`, so the inbox can word
it in the operator's language (`reason.<code>` in ui/text_*.py, same placeholders). Values are
JSON: money as `{amount, currency}` (amount as a string, exact), a list of reasons as
`[{code, values}, ...]` (joined with "and"), a moment as `{utc: ISO time}`, anything else as
it is. Question prompts (henpin/questions.py) use the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import JsonValue

from henpin.money import decimals_of

#: Every reason code policy can give, with its English words (the texts the inbox translates).
REASONS_EN: dict[str, str] = {
    # shared by several case types
    "order-already-cancelled": "the order is already cancelled",
    # cancel-request
    "fulfilled-by-amazon": "Amazon fulfils this order, so Amazon handles the buyer's cancel request",
    "order-shipped": "the order has shipped, and a shipped order cannot be cancelled; contact the"
    " buyer (refuse delivery or return) or cancel the unshipped items by hand",
    "order-partly-shipped": "the order has partly shipped, and a shipped order cannot be"
    " cancelled; contact the buyer (refuse delivery or return) or cancel the unshipped items"
    " by hand",
    "pre-order": "the order is a pre-order not yet released; Amazon cancels it for the buyer",
    "pending-window": "the order is still pending ({minutes} min old, within the {window}-minute"
    " window); Amazon cancels it itself",
    "pending-overdue": "the order is still pending {minutes} minutes after it was placed, longer"
    " than the {window}-minute window; check it in Seller Central",
    "unexpected-status": "the order's status is {status}, which Henpin does not decide alone",
    "default-rule": "no earlier rule matched (default rule {rule})",
    "rule-unchecked": "rule {rule} cannot be checked: {why}; a person decides",
    "rule-matched": "rule {rule}: {conditions}",
    "no-rule-matched": "no rule matched this order, so a person decides",
    "value-over": "order value {value} is over the {limit} limit",
    "value-unknown": "the order's value is unknown: {why}",
    "no-limit-for-currency": "the order is in {currency} and order_value_over sets no {currency}"
    " amount",
    "sku-prefix": "SKU {sku} starts with {prefix}",
    "sku-listed": "SKU {sku} is listed",
    "marketplace-listed": "marketplace is {country} ({name})",
    "buyer-reason-mentions": "the buyer's reason mentions {phrase!r}",
    # return-request
    "amazon-authorized": "Amazon already authorized this return (returns report: {status!r});"
    " nothing to decide: wait for the item",
    "comment-keyword": "the buyer's comment mentions {keyword!r}, so a person reads it first",
    "item-not-in-order": "the returned item ({item}) is not one of the order's items; check the"
    " return in Manage Returns",
    "item-price-zero": "the item's price is zero, so Henpin cannot weigh this return",
    "item-price-unknown": "the item's price is unknown (Amazon gave no unit price), so Henpin"
    " cannot weigh this return",
    "outside-policy-at-amazon": "Amazon's returns report marks this return as outside the return"
    " policy",
    "outside-return-window": "requested {days} days after the expected delivery ({counted_from} +"
    " {delivery_days} days), later than the {window}-day return window",
    "return-reason-listed": "the reason {code} is listed under {action}",
    "cheap-item": "the item is worth {value}, less than {under}: sending it back would cost more"
    " than it is worth; let the buyer keep or refuse it and refund the item price only",
    "no-value-limit": "no authorize_up_to amount is set for {currency}, so a person decides",
    "over-value-limit": "the item is worth {value}, more than the {limit} Henpin may recommend"
    " alone",
    "return-reason-not-listed": "the reason {code} is in no list; reasons.other says {action}",
    "no-return-reason": "the reason (none given) is in no list; reasons.other says {action}",
    # address-error
    "no-answer-reorder": "the buyer did not confirm the address; Amazon cannot change an order's"
    " address, so the buyer reorders with the right one",
    "no-answer-policy": "the buyer did not confirm the address; the policy says {action}",
    "order-value-unknown": "the order's value is unknown ({why}), so a person decides",
    "no-reship-cost": "no reship cost is set for {currency}, so a person weighs reshipping",
    "reship-costs-more": "reshipping (about {cost}) costs at least the item price ({price});"
    " refund and let the buyer reorder",
    "address-confirmed": "the buyer confirmed the address; the policy says {action}",
    # cancel-by-message
    "shipped-refuse-or-return": "the order has shipped, so it cannot be cancelled; the buyer can"
    " refuse the parcel or ask for a return",
    "remind-automatically": "the buyer has not cancelled in Your Orders yet; reminder {number} of"
    " {reminders} goes out by itself",
    "buyer-did-not-cancel-remind": "the buyer has not cancelled in Your Orders after {sent}"
    " reminder(s): remind again, cancel yourself (counts against your cancellation rate), or"
    " ship",
    "buyer-did-not-cancel": "the buyer has not cancelled in Your Orders after {sent} reminder(s):"
    " cancel yourself (counts against your cancellation rate), or ship",
    # refused-delivery
    "no-refund-until-asked": "no refund until the buyer asks for one; Henpin reminds you to look"
    " again in {days} days",
    "nothing-to-refund": "no item has a known price above zero, so a person decides what to refund",
    "refund-on-request": "the buyer asked: refund {refund} ({explanation})",
}

#: Values that are words of their own (not names from data), worded by the inbox too.
VALUE_WORDS_EN: dict[str, str] = {"shipping day": "shipping day", "order day": "order day"}


@dataclass(frozen=True)
class Reason:
    """One reason: its code (a key of REASONS_EN) and the values its words name."""

    code: str
    values: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return reason_text(self.code, self.values)

    def as_json(self) -> dict[str, JsonValue]:
        return {"code": self.code, "values": self.values}

    def fields(self) -> dict[str, Any]:
        """The recommendation's reason fields: English words, code and values."""
        return {"reason": self.text, "reason_code": self.code, "reason_values": self.values}


def because(code: str, /, **values: JsonValue) -> Reason:
    if code not in REASONS_EN:
        raise KeyError(f"unknown reason code {code!r}: add it to REASONS_EN and the inbox's texts")
    return Reason(code, values)


def amount_value(amount: Decimal, currency: str, *, exact: bool = True) -> dict[str, JsonValue]:
    """Money as a reason value: with the currency's decimals (`exact`), or as the owner wrote it
    in policies.yaml (a limit of 200 USD reads "200 USD")."""
    shown = f"{amount:.{decimals_of(currency)}f}" if exact else str(amount)
    return {"amount": shown, "currency": currency}


def is_money(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"amount", "currency"}


def is_time(value: object) -> bool:
    return isinstance(value, dict) and set(value) == {"utc"}


def time_value(moment: datetime) -> dict[str, JsonValue]:
    """A moment as a value: the page shows it in the operator's time zone."""
    return {"utc": moment.astimezone(UTC).isoformat()}


def is_reason_list(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, dict) and isinstance(v.get("code"), str) for v in value
    )


def reason_text(code: str, values: dict[str, Any]) -> str:
    """The English words of a reason (its code as it is when unknown)."""
    template = REASONS_EN.get(code)
    if template is None:
        return code
    return template.format(**{k: english(v) for k, v in values.items()})


def english(value: Any) -> Any:
    """A value as the English words show it (money `1,500 JPY`, a moment `... UTC`)."""
    if is_money(value):
        return f"{Decimal(str(value['amount'])):,} {value['currency']}"
    if is_time(value):
        return f"{datetime.fromisoformat(str(value['utc'])):%Y-%m-%d %H:%M} UTC"
    if is_reason_list(value):
        return " and ".join(reason_text(v["code"], v.get("values") or {}) for v in value)
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        return reason_text(value["code"], value.get("values") or {})
    if isinstance(value, str):
        return VALUE_WORDS_EN.get(value, value)
    return value
