"""The questions a case asks a person, and how an answer is checked before it counts.

A `Question` is stored on the waiting case (the inbox renders its form from it and shows its
prompt); the description above the Prefect UI's Resume form is its title, deadline and choices,
never the prompt (Prefect keeps descriptions for good; the prompt quotes the buyer). `check_answer` is the one validator:
the service runs it before recording an inbox/CLI answer, the flow runs it on an answer that
came through the Prefect UI. An invalid answer is refused with a plain message and the
question stays open: it never fails the run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES
from henpin.money import excess_decimals


class AnswerField(BaseModel):
    """An extra value the operator gives with some choices (an amount, a condition, ...)."""

    name: str
    kind: Literal["money", "text", "option", "integer"]
    label: str
    required_for: list[str] = Field(default_factory=list)  # the choices that need this field
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    options: list[str] = Field(default_factory=list)
    currency: str | None = None
    proposed: str | None = None  # the value Henpin proposes (e.g. the policy's refund)


PROMPT_IN_INBOX = (
    "The facts to decide on (the order, what the buyer wrote, what policy recommends) are on "
    "the case's page in the Henpin inbox."
)


class Question(BaseModel):
    """One decision a case waits for: its choices, fields, deadline and named timeout path."""

    step: str
    title: str
    prompt: str = ""  # markdown: the facts the operator decides on
    choices: list[str]
    labels: dict[str, str] = Field(default_factory=dict)
    fields: list[AnswerField] = Field(default_factory=list)
    note_required_for: list[str] = Field(default_factory=list)
    deadline_hours: float
    #: A fixed deadline Amazon set (e.g. 24 hours from the buyer's request): used instead of
    #: counting `deadline_hours` from when the question is asked, but never before
    #: `minimum_hours` after it is asked (see `answer_by`).
    deadline_at: datetime | None = None
    #: The least time a person gets to answer, whatever `deadline_at` says: a question asked
    #: after (or just before) Amazon's due time stays open this long. None: `deadline_hours`.
    minimum_hours: float | None = None
    timeout_choice: str
    recommended: str | None = None
    links: dict[str, str] = Field(default_factory=dict)
    options: list[dict[str, Any]] = Field(default_factory=list)  # money of each option

    def answer_by(self, asked_at: datetime) -> datetime:
        """When the timeout choice may be taken for a question asked at `asked_at`: Amazon's
        due time (`deadline_at`) as it is, unless that leaves a person less than the minimum
        time; then the minimum. Amazon's due time itself is never moved (`amazon_due`)."""
        asked_at = asked_at.astimezone(UTC)
        if self.deadline_at is None:
            return asked_at + timedelta(hours=self.deadline_hours)
        least = self.deadline_hours if self.minimum_hours is None else self.minimum_hours
        return max(self.deadline_at.astimezone(UTC), asked_at + timedelta(hours=least))

    def overdue_at_amazon(self, at: datetime) -> bool:
        """Amazon's due time for this decision has passed at `at` (the seller is late there)."""
        return self.deadline_at is not None and self.deadline_at.astimezone(UTC) <= at

    def markdown(self, deadline: datetime) -> str:
        """The description above the Prefect UI's Resume form. Prefect keeps it for good and
        renders it as markdown, so it holds only what Henpin wrote: never the prompt, whose
        facts quote the buyer (their reason, the reply with their name) and name the items;
        those are on the case's page in the inbox, rendered as plain text."""
        lines = [
            f"### {self.title}",
            PROMPT_IN_INBOX,
            "",
            f"**Answer by {deadline:%Y-%m-%d %H:%M} UTC**",
        ]
        if self.deadline_at is not None and self.deadline_at.astimezone(UTC) < deadline:
            lines.append(
                f"Amazon's due time was {self.deadline_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
                "overdue at Amazon (or nearly), act in Seller Central now."
            )
        lines.append(f"(then: `{self.timeout_choice}`)")
        lines += ["", "Choices:"]
        lines += [
            f"- `{c}`: {self.labels.get(c, c)}"
            + (" ← recommended" if c == self.recommended else "")
            for c in self.choices
        ]
        for f in self.fields:
            need = f" (needed for {', '.join(f.required_for)})" if f.required_for else ""
            lines.append(f"- field `{f.name}`: {f.label}{need}")
        for name, url in self.links.items():
            lines.append(f"- [{name}]({url})")
        return "\n".join(lines)


def check_answer(question: Question, choice: str, note: str, fields: dict[str, Any]) -> str | None:
    """What is wrong with an answer, in words for the operator; None when it is good."""
    if choice not in question.choices:
        return f"'{choice}' is not a choice here; use one of: {', '.join(question.choices)}."
    if choice in question.note_required_for and not note.strip():
        return f"Please write a note: '{question.labels.get(choice, choice)}' needs a reason."
    known = {f.name for f in question.fields}
    unknown = sorted(set(k for k, v in fields.items() if v not in (None, "")) - known)
    if unknown:
        return f"Unknown field(s): {', '.join(unknown)}."
    for f in question.fields:
        raw = fields.get(f.name)
        if raw in (None, ""):
            if choice in f.required_for:
                return f"Please fill in '{f.label}' for this choice."
            continue
        problem = _check_value(f, raw)
        if problem:
            return problem
    return None


def _check_value(f: AnswerField, raw: Any) -> str | None:
    if f.kind in ("money", "integer"):
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            return f"'{f.label}' must be a number (got {raw!r})."
        if not value.is_finite():
            return f"'{f.label}' must be a number (got {raw!r})."
        if f.kind == "integer" and value != value.to_integral_value():
            return f"'{f.label}' must be a whole number."
        if f.kind == "money" and f.currency:
            excess = excess_decimals(value, f.currency)
            if excess:  # refused, never rounded: the operator meant something we cannot guess
                return f"'{f.label}' ({f.name}): {excess}; it is refused, not rounded."
        unit = f" {f.currency}" if f.currency else ""
        if f.minimum is not None and value < f.minimum:
            return f"'{f.label}' must be at least {f.minimum}{unit} (got {value}{unit})."
        if f.maximum is not None and value > f.maximum:
            return (
                f"'{f.label}' must be at most {f.maximum}{unit}, what was paid (got {value}{unit})."
            )
    elif f.kind == "option" and str(raw) not in f.options:
        return f"'{f.label}' must be one of: {', '.join(f.options)}."
    elif f.kind == "text" and len(str(raw)) > 2000:
        return f"'{f.label}' is too long (2000 characters at most)."
    return None


def order_facts(order: Order) -> list[str]:
    """The order lines every prompt starts with."""
    m = MARKETPLACES.get(order.marketplace_id)
    value = order.value
    items = "; ".join(
        f"{i.quantity} × {i.sku or i.asin} {i.title or ''}".strip() for i in order.items
    )
    return [
        f"- Order: {order.order_id} ({m.name if m else order.marketplace_id})",
        f"- Status: {order.fulfillment_status.value}",
        f"- Value: {value if value else 'unknown'}",
        *_paid_lines(order),
        f"- Items: {items}",
    ]


def _paid_lines(order: Order) -> list[str]:
    """What the buyer paid, when Amazon's breakdown shows shipping or a promotion."""
    lines = []
    for item in order.items:
        paid = item.paid
        if paid is None or (paid.shipping is None and not paid.has_promotion):
            continue
        parts = [f"price {paid.item_price if paid.item_price is not None else '?'}"]
        if paid.item_discount:
            parts.append(f"less promotion {paid.item_discount}")
        if paid.shipping is not None:
            parts.append(f"shipping {paid.shipping}")
        if paid.shipping_discount:
            parts.append(f"less promotion {paid.shipping_discount}")
        lines.append(
            f"- Paid for {item.sku or item.order_item_id}: {', '.join(parts)} {paid.currency}"
        )
    return lines


def advice_line(advice: dict[str, Any]) -> str:
    return (
        f"- Policy recommends **{advice.get('action')}** (rule `{advice.get('rule')}`): "
        f"{advice.get('reason')}"
    )


CANCEL_LABELS = {
    "cancel": "Cancel the order with reason BuyerCanceled (does not count against your cancellation rate)",
    "keep_order": "Keep the order and ship it (the buyer withdrew the request, or you agreed with them)",
    "escalate": "Escalate to the owner; Henpin closes the case without acting",
}


def cancel_request_question(
    order: Order, advice: dict[str, Any], *, deadline_hours: float, timeout_choice: str
) -> Question:
    m = MARKETPLACES.get(order.marketplace_id)
    return Question(
        step="operator-decision",
        title=f"Buyer asked to cancel order {order.order_id}",
        prompt="\n".join(
            [
                *order_facts(order),
                f"- Buyer's reason: {order.buyer_cancel_reason or '(none given)'}",
                advice_line(advice),
            ]
        ),
        choices=["cancel", "keep_order", "escalate"],
        labels=CANCEL_LABELS,
        deadline_hours=deadline_hours,
        timeout_choice=timeout_choice,
        recommended="cancel",
        links={"Seller Central order": m.order_page(order.order_id)} if m else {},
    )
