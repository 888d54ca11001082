"""Why policy recommends what it does: a reason code and its values, worded in English here.

A recommendation keeps its reason three ways: `reason` (these English words, as it always had, for
the CLI, the Prefect UI and old readers), `reason_code` and `reason_values`, so the inbox can word
it in the operator's language (`reason.<code>` in ui/text_*.py, same placeholders). Values are
JSON: money as `{amount, currency}` (amount as a string, exact), a list of reasons as
`[{code, values}, ...]` (joined with "and"), a moment as `{utc: ISO time}`, anything else as
it is. Question prompts (henpin/questions.py) use the same values.

Other sentences Henpin records are kept the same way, as a `Phrase` of a kind (`PHRASES`): why
a case needs attention (`attention`, beside the case's `needs_attention` words), the notes of
the money of each way out (`money_note`), and how a refund proposal was reached
(`explanation`). The inbox words them as `<kind>.<code>`. A value that is itself a coded
phrase, `{code, values}`, is of its parent's kind unless it names its own (`kind`).
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

#: Why a case needs a person (the inbox's "needs attention"), by code. Values from outside
#: (Amazon's words, an error) are shown as they are.
ATTENTION_EN: dict[str, str] = {
    "unreadable-order": "Amazon sent this order in a shape Henpin cannot read: {problem}",
    "parcel-after-refund": "{report}, after this case refunded the buyer ({outcome}). Henpin"
    " opened no new parcel case, so nothing is refunded twice: check the order in Seller"
    " Central.",
    # the parcel report inside it
    "parcel-reported-by": "{source} reports the parcel is coming back: {meaning}",
    "parcel-reported-by-amazon": "Amazon reports the parcel as {status}: {meaning}",
    "parcel-refused": "the buyer refused it",
    "parcel-unclaimed": "nobody collected it",
    "parcel-address": "it could not be delivered to the address",
    "refund-over-paid": "Refund of {asked} asked, but {before} was already refunded on these"
    " items by another case of the order: together more than the buyer paid, so {sent}. Check"
    " the order's refunds.",
    "refund-over-paid-amazon": "Refund of {asked} asked, but {before} was already refunded on"
    " these items ({by_amazon} by Amazon): together more than the buyer paid, so {sent}. Check"
    " the order's refunds.",
    "only-sent": "only {sent} was sent",
    "nothing-sent": "nothing was sent",
    "refund-unverified": "Refund held back for a person: {unverified}. Check the order in Seller"
    " Central and refund there what is still due.",
    "part-unverified": "{part} of item {item}: {asked} asked, {refunded} already refunded, and"
    " the order does not show what was paid",
    "restarts-stopped": "Henpin stopped restarting this case after {restarts} restarts: {why}."
    " Look at its flow run in the Prefect UI.",
    "run-ended": "its flow run ended {state}",
    "run-never-began": "its flow run was being started {seconds} s ago and never began",
    "run-running-long": "its flow run has been running for {minutes} min",
    "run-cancelled": "Its flow run was cancelled in Prefect ({state}: {message}). Henpin withdrew"
    " {withdrawn} Amazon action(s) it had not sent yet; none of them goes to Amazon. Look at the"
    " order in Seller Central and do by hand what is still due.",
    "feed-needs-person": "Feed (Henpin feed {feed_id}) needs a person: {why}. Read its report,"
    " then say: send again, done, or not done.",
    "amazon-feed-needs-person": "Amazon feed {amazon_feed_id} (Henpin feed {feed_id}) needs a"
    " person: {why}. Read its report, then say: send again, done, or not done.",
    "feed-report-refused": "Amazon refuses to report on the feed: {error}",
    "feed-report-unreadable": "Henpin cannot read Amazon's report: {error}",
    "feed-report-gap": "Amazon's report does not add up: {gap}",
    "amazon-rejected": "Amazon rejected the {action_kind} ({code}): {message}",
    "no-description": "no description",
    "inspection-overdue": "Nobody recorded the condition of the item returned on order"
    " {order_id} in time; its refund is owed (Amazon may refund on your behalf): inspect it"
    " now.",
    "refund-held": "Refund held back by Henpin at {checks} checks in a row ({code}), never sent"
    " to Amazon: {detail} Look at the order's refunds in Seller Central, then check again or"
    " escalate.",
}

#: The notes under the money of each way out of an address error (henpin/policy/address_error).
MONEY_NOTES_EN: dict[str, str] = {
    "referral-fee-estimated": "referral fee estimated at {percent}% of price and shipping",
    "admin-fee-not-set": "no refund administration fee is set for {currency}: estimated as"
    " {percent}% of the referral fee, at most {at_most} {currency}",
    "shipping-unknown": "the shipping the buyer paid is unknown, counted as 0",
    "mixed-currencies": "the order mixes currencies, so Henpin cannot put a figure on this option",
    "price-unknown": "some item's price is unknown, so Henpin cannot put a figure on this option",
    "no-reship-cost": "no reship cost is set for {currency}: enter the real cost",
    "partial-refund": "refunds {percent}% of the item price paid (less any promotion); the"
    " buyer's shipping is kept",
    "full-refund": "refunds what the buyer paid, price and shipping, less any promotion",
    "reorder-not-counted": "the buyer's new order is a new sale, not counted here",
}

#: How a refund proposal's total was reached (henpin/policy/proposals.py and the policies that
#: make proposals), the parts of a return's joined with ", ".
EXPLANATIONS_EN: dict[str, str] = {
    # a return, by the item's condition
    "condition": "{condition}: {parts}",
    "percent-of-price": "{percent}% of {price}",
    "less-promotion": "less the promotion {promotion}",
    "less-restocking-fee": "less a {percent}% restocking fee",
    "plus-shipping": "plus shipping {shipping}",
    "shipping-unknown": "shipping price unknown, not included",
    "seller-fault": "(reason {code} is the seller's side: no restocking fee, shipping back)",
    "in-policy-no-fee": "(back in original condition within Amazon's return policy: no"
    " restocking fee)",
    "withdrawal-shipping": "(a withdrawal: the law gives the outbound shipping back)",
    # a refused or unclaimed parcel
    "parcel-refund": "parcel {what}: {refund}, reason {adjustment}",
    "refused-by-buyer": "refused by the buyer",
    "not-collected": "not collected",
    "item-refund": "{total}: {refund}",
    "price-and-shipping": "the item price paid (less any promotion) and its shipping",
    "price-only": "the item price paid (less any promotion) only (outbound shipping kept)",
    "percent-and-shipping": "{percent}% of the item price paid (less any promotion) and its"
    " shipping",
    "percent-only": "{percent}% of the item price paid (less any promotion) only (outbound"
    " shipping kept)",
    # an address error's ways out
    "option-partial_refund": "Refund part of the item price, as agreed with the buyer",
    "option-cancel_for_reorder": "Refund in full as buyer-caused; the buyer reorders with the"
    " right address",
}

#: Every table of coded words by its kind: the inbox words `<kind>.<code>` (ui/text_*.py).
PHRASES: dict[str, dict[str, str]] = {
    "reason": REASONS_EN,
    "attention": ATTENTION_EN,
    "money_note": MONEY_NOTES_EN,
    "explanation": EXPLANATIONS_EN,
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


@dataclass(frozen=True)
class Phrase:
    """A sentence Henpin records, as its kind (a key of PHRASES), code and values."""

    kind: str
    code: str
    values: dict[str, JsonValue] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Its English words (what the store, the CLI and the exports keep)."""
        return phrase_text(self.kind, self.code, self.values)

    def as_json(self) -> dict[str, JsonValue]:
        """As a stored value; a part of another phrase of the same kind needs no `kind`."""
        return {"kind": self.kind, "code": self.code, "values": self.values}


def phrase(kind: str, code: str, /, **values: JsonValue) -> Phrase:
    """A phrase by its code, with its values (a nested phrase given as `as_json()`)."""
    if code not in PHRASES[kind]:
        raise KeyError(f"unknown {kind} code {code!r}: add it to {kind} words and the inbox's")
    return Phrase(kind, code, values)


def phrase_text(kind: str, code: str, values: dict[str, Any]) -> str:
    """The English words of a phrase (its code as it is when unknown)."""
    template = PHRASES.get(kind, {}).get(code)
    if template is None:
        return code
    return template.format(**{k: english(v, kind) for k, v in values.items()})


def is_phrase(value: object) -> bool:
    """A value that is itself a coded phrase: `{code, values}`, with its `kind` or not."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("code"), str)
        and set(value) <= {"kind", "code", "values"}
    )


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


#: How a list of phrases of each kind is joined in English (the inbox: `<kind>.join`).
PHRASE_LIST_JOIN: dict[str, str] = {
    "reason": " and ",
    "attention": "; ",
    "money_note": "; ",
    "explanation": ", ",
}


def is_phrase_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(is_phrase(v) for v in value)


def is_reason_list(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, dict) and isinstance(v.get("code"), str) for v in value
    )


def reason_text(code: str, values: dict[str, Any]) -> str:
    """The English words of a reason (its code as it is when unknown)."""
    return phrase_text("reason", code, values)


def english(value: Any, kind: str = "reason") -> Any:
    """A value as the English words show it (money `1,500 JPY`, a moment `... UTC`, a list of
    reasons joined with "and", a phrase of `kind` in its words)."""
    if is_money(value):
        return f"{Decimal(str(value['amount'])):,} {value['currency']}"
    if is_time(value):
        return f"{datetime.fromisoformat(str(value['utc'])):%Y-%m-%d %H:%M} UTC"
    if is_reason_list(value) and kind == "reason":
        return " and ".join(reason_text(v["code"], v.get("values") or {}) for v in value)
    if is_phrase_list(value):
        return PHRASE_LIST_JOIN[kind].join(english(v, kind) for v in value)
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        return phrase_text(value.get("kind") or kind, value["code"], value.get("values") or {})
    if isinstance(value, str):
        return VALUE_WORDS_EN.get(value, value)
    return value
