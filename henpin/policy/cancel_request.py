"""Case type 1, a buyer's cancel request (Your Orders → Cancel items): the owner's rule table.

Henpin's own checks come first (Amazon's side already settled it, or it can no longer be
cancelled); then the owner's rules, first match wins; with no match, a person decides. A rule
whose value condition cannot be checked (the order's value is unknown, or the rule sets no amount
in its currency) sends the case to a person (rule `value-unknown`): an unknown value is never
taken as a small one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, JsonValue, field_validator

from henpin.domain import FulfillmentStatus, Order
from henpin.marketplaces import MARKETPLACES
from henpin.policy._base import (
    Advice,
    Amount,
    Currency,
    Loc,
    LocatedProblems,
    MarketplaceId,
    OperatorDeadline,
    PolicyModel,
    Text,
    as_utc,
    exact_amounts,
    not_empty,
    owner_error,
)
from henpin.policy.reasons import Reason, amount_value, because

# Names Henpin itself gives to the decisions it makes before the owner's rules are consulted.
# Owner rules may not use them, so a recorded rule name always says who decided.
BUILT_IN_RULES = frozenset(
    {
        "already-cancelled",
        "fulfilled-by-amazon",
        "already-shipped",
        "pending-window",
        "pending-overdue",
        "pre-order",
        "unexpected-status",
        "no-rule-matched",
        "value-unknown",
    }
)

CancelRequestAction = Literal["nothing_to_do", "cancel", "ask_operator"]


def _rule_name(name: str) -> str:
    parts = name.split("-")
    if not name or not all(p and p.isascii() and p.isalnum() and p == p.lower() for p in parts):
        raise owner_error(
            f"rule names use lowercase letters, digits and hyphens, e.g. high-value (got {name!r})"
        )
    if name in BUILT_IN_RULES:
        raise owner_error(f"{name!r} is a name Henpin uses for its own decisions; choose another")
    return name


RuleName = Annotated[str, AfterValidator(_rule_name)]


@dataclass(frozen=True)
class _OrderFacts:
    """What the rules may look at, computed once per evaluation."""

    value_amount: Decimal | None
    value_currency: str | None
    skus: tuple[str, ...]
    marketplace_id: str
    buyer_reason: str | None
    value_unknown_because: str | None  # why the order's value is unknown; None when known


@dataclass(frozen=True)
class Undecided:
    """A condition that cannot be evaluated (the order's value is unknown, or the rule sets no
    amount for its currency): the rule neither matches nor fails; a person decides."""

    why: Reason


class Conditions(PolicyModel):
    """A rule's `when`: every condition given must hold for the rule to match."""

    order_value_over: (
        Annotated[dict[Currency, Amount], AfterValidator(not_empty), AfterValidator(exact_amounts)]
        | None
    ) = None
    sku_prefixes: Annotated[tuple[Text, ...], AfterValidator(not_empty)] | None = None
    skus: Annotated[tuple[Text, ...], AfterValidator(not_empty)] | None = None
    marketplaces: Annotated[tuple[MarketplaceId, ...], AfterValidator(not_empty)] | None = None
    buyer_reason_contains: Annotated[tuple[Text, ...], AfterValidator(not_empty)] | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)

    def explain_match(self, facts: _OrderFacts) -> list[Reason] | Undecided | None:
        """Why each condition holds, in plain words; None as soon as one does not; Undecided
        when the others hold but one cannot be evaluated."""
        checks = (
            self._value_over,
            self._sku_prefix,
            self._sku_listed,
            self._marketplace,
            self._reason_mentions,
        )
        reasons: list[Reason] = []
        undecided: Undecided | None = None
        for check in checks:
            because = check(facts)
            if because is False:
                return None
            if isinstance(because, Undecided):
                undecided = because
            elif isinstance(because, Reason):
                reasons.append(because)
        return undecided or reasons

    # Each check returns None when its condition is not set, False when it fails, else the reason.

    def _value_over(self, facts: _OrderFacts) -> Reason | bool | Undecided | None:
        if self.order_value_over is None:
            return None
        if facts.value_amount is None or facts.value_currency is None:
            # An unknown value is never taken as a small one (issue 10).
            return Undecided(because("value-unknown", why=facts.value_unknown_because))
        limit = self.order_value_over.get(facts.value_currency)
        if limit is None:
            return Undecided(because("no-limit-for-currency", currency=facts.value_currency))
        if facts.value_amount <= limit:
            return False
        return because(
            "value-over",
            value=amount_value(facts.value_amount, facts.value_currency),
            limit=amount_value(limit, facts.value_currency, exact=False),
        )

    def _sku_prefix(self, facts: _OrderFacts) -> Reason | bool | None:
        if self.sku_prefixes is None:
            return None
        for sku in facts.skus:
            for prefix in self.sku_prefixes:
                if sku.startswith(prefix):
                    return because("sku-prefix", sku=sku, prefix=prefix)
        return False

    def _sku_listed(self, facts: _OrderFacts) -> Reason | bool | None:
        if self.skus is None:
            return None
        listed = next((sku for sku in facts.skus if sku in self.skus), None)
        return because("sku-listed", sku=listed) if listed else False

    def _marketplace(self, facts: _OrderFacts) -> Reason | bool | None:
        if self.marketplaces is None:
            return None
        if facts.marketplace_id not in self.marketplaces:
            return False
        m = MARKETPLACES[facts.marketplace_id]
        return because("marketplace-listed", country=m.country, name=m.name)

    def _reason_mentions(self, facts: _OrderFacts) -> Reason | bool | None:
        if self.buyer_reason_contains is None:
            return None
        reason = (facts.buyer_reason or "").casefold()
        phrase = next((p for p in self.buyer_reason_contains if p.casefold() in reason), None)
        return because("buyer-reason-mentions", phrase=phrase) if phrase else False


class Rule(PolicyModel):
    """One line of the owner's decision table. Without `when` it is the default rule."""

    name: RuleName
    when: Conditions | None = None
    then: Literal["cancel", "ask_operator"]

    @field_validator("when")
    @classmethod
    def _when_says_something(cls, when: Conditions | None) -> Conditions | None:
        if when is not None and when.is_empty():
            raise owner_error(
                "`when` has no conditions; remove `when` to make this the default rule"
            )
        return when

    @property
    def is_default(self) -> bool:
        return self.when is None


def rule_table_problems(rules: Sequence[tuple[object, bool]]) -> list[tuple[Loc, str]]:
    """Problems of the rule list as a whole, given each rule's (name, is default), in order."""
    problems: list[tuple[Loc, str]] = []
    first_seen: dict[object, int] = {}
    for index, (name, is_default) in enumerate(rules):
        if name in first_seen:
            problems.append(
                (
                    (index, "name"),
                    f"duplicate rule name {name!r} (also rules[{first_seen[name]}]); each case"
                    " records the rule that decided it, so names must differ",
                )
            )
        first_seen.setdefault(name, index)
        if is_default and index != len(rules) - 1:
            unreachable = ", ".join(str(later) for later, _ in rules[index + 1 :])
            problems.append(
                (
                    (index,),
                    f"rule {name!r} has no `when`, so it matches every order and the rules after"
                    f" it ({unreachable}) would never be used; move it to the end or give it a"
                    " `when`",
                )
            )
    return problems


class OperatorPolicy(OperatorDeadline):
    """How long an operator has to answer a cancel request, and what happens when nobody does."""

    on_deadline: Literal["cancel", "escalate"] = "cancel"


class Recommendation(Advice):
    """What policy says to do with a cancel request, which rule said so, and what it looked at."""

    action: CancelRequestAction


class CancelRequestPolicy(PolicyModel):
    """A buyer asked Amazon to cancel a merchant-fulfilled order: carry it out, or ask a person."""

    pending_window_minutes: int = Field(default=30, ge=0, le=24 * 60)
    rules: tuple[Rule, ...]
    operator: OperatorPolicy = OperatorPolicy()

    @field_validator("rules")
    @classmethod
    def _rules_make_a_table(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        if not rules:
            raise owner_error(
                "there must be at least one rule; end with a default rule (no `when`)"
            )
        problems = rule_table_problems([(r.name, r.is_default) for r in rules])
        if problems:
            raise LocatedProblems(problems)
        return rules

    def recommend(self, order: Order, now: datetime) -> Recommendation:
        """Decide a buyer's cancel request: nothing to do, cancel as buyer-caused, or ask a person.

        Henpin's own checks come first (Amazon's side already settled it, or it can no longer be
        cancelled); then the owner's rules, first match wins. With no match, a person decides.
        """
        now = as_utc(now)
        minutes = (now - as_utc(order.created_time)).total_seconds() / 60
        facts = _facts(order)
        inputs = _inputs(order, facts, now, minutes)
        status = order.fulfillment_status

        def says(action: CancelRequestAction, rule: str, reason: Reason) -> Recommendation:
            return Recommendation(action=action, rule=rule, inputs=inputs, **reason.fields())

        if status is FulfillmentStatus.CANCELLED:
            return says("nothing_to_do", "already-cancelled", because("order-already-cancelled"))
        if (order.fulfilled_by or "").upper() == "AMAZON":
            return says("nothing_to_do", "fulfilled-by-amazon", because("fulfilled-by-amazon"))
        if status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED):
            shipped = (
                "order-shipped" if status is FulfillmentStatus.SHIPPED else "order-partly-shipped"
            )
            return says("ask_operator", "already-shipped", because(shipped))
        if status is FulfillmentStatus.PENDING_AVAILABILITY:
            return says("nothing_to_do", "pre-order", because("pre-order"))
        if status is FulfillmentStatus.PENDING:
            inputs["pending_window_minutes"] = self.pending_window_minutes
            age: dict[str, JsonValue] = {
                "minutes": f"{minutes:.0f}",
                "window": self.pending_window_minutes,
            }
            if minutes <= self.pending_window_minutes:
                return says("nothing_to_do", "pending-window", because("pending-window", **age))
            return says("ask_operator", "pending-overdue", because("pending-overdue", **age))
        if status is not FulfillmentStatus.UNSHIPPED:
            return says(
                "ask_operator",
                "unexpected-status",
                because("unexpected-status", status=status.value),
            )
        for rule in self.rules:
            if rule.when is None:
                return says(rule.then, rule.name, because("default-rule", rule=rule.name))
            matched = rule.when.explain_match(facts)
            if isinstance(matched, Undecided):
                return says(
                    "ask_operator",
                    "value-unknown",
                    because("rule-unchecked", rule=rule.name, why=matched.why.as_json()),
                )
            if matched is not None:
                return says(
                    rule.then,
                    rule.name,
                    because(
                        "rule-matched", rule=rule.name, conditions=[r.as_json() for r in matched]
                    ),
                )
        return says("ask_operator", "no-rule-matched", because("no-rule-matched"))


def _facts(order: Order) -> _OrderFacts:
    value = order.value
    return _OrderFacts(
        value_amount=value.amount if value else None,
        value_currency=value.currency if value else None,
        skus=tuple(order.skus),
        marketplace_id=order.marketplace_id,
        buyer_reason=order.buyer_cancel_reason,
        value_unknown_because=order.value_unknown_because,
    )


def _inputs(
    order: Order, facts: _OrderFacts, now: datetime, minutes: float
) -> dict[str, JsonValue]:
    """The order's facts as the rules saw them, JSON-ready, so a replay can check its footing."""
    value: JsonValue = None
    if facts.value_amount is not None and facts.value_currency is not None:
        value = {"amount": str(facts.value_amount), "currency": facts.value_currency}
    return {
        "order_id": order.order_id,
        "marketplace_id": facts.marketplace_id,
        "fulfillment_status": order.fulfillment_status.value,
        "fulfilled_by": order.fulfilled_by,
        "created_time": as_utc(order.created_time).isoformat(),
        "evaluated_at": now.isoformat(),
        "minutes_since_order": round(minutes, 1),
        "order_value": value,
        "skus": list(facts.skus),
        "buyer_reason": facts.buyer_reason,
    }
