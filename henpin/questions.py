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

from pydantic import BaseModel, Field, model_validator

from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES
from henpin.money import excess_decimals
from henpin.policy.reasons import english

#: A question's title by its code, in English (the inbox words `question.<code>` in the
#: operator's language).
TITLES_EN: dict[str, str] = {
    "cancel-request": "Buyer asked to cancel order {order_id}",
    "part-cancel": "Buyer asked to cancel part of order {order_id}",
    "address-confirm": "Parcel of order {order_id} came back: what address did the buyer confirm?",
    "address-resolve": "How to resolve the undeliverable parcel of order {order_id}?",
    "cbm-wait": "Waiting for the buyer to cancel order {order_id} in Your Orders",
    "cbm-no-request": "The buyer has not cancelled order {order_id} in Your Orders",
    "cbm-send-reply": "Send the reply to the buyer of order {order_id} in Seller Central",
    "cbm-send-reminder": "Send the reminder to the buyer of order {order_id} in Seller Central",
    "refund-held": "Refund of order {order_id} held back: what was paid and refunded disagree",
    "refused-asked": "Parcel of order {order_id} is coming back: has the buyer asked for a refund?",
    "refused-refund": "Refund order {order_id} (delivery refused or unclaimed)",
    "return-authorize": "Return request for order {order_id}: authorize or decline in Seller"
    " Central",
    "return-receipt": "Has the returned item of order {order_id} come back?",
    "return-condition": "In what condition did the item of order {order_id} come back?",
    "return-refund": "Refund the return of order {order_id}",
    "return-amazon-refunded": "Amazon refunded the return of order {order_id}: check the item",
}

#: A prompt line by its code, in English (the inbox words `prompt.<code>`). A line with code
#: `text` is shown as it was written (data, or words the inbox has no code for).
PROMPTS_EN: dict[str, str] = {
    "order": "- Order: {order_id} ({marketplace})",
    "status": "- Status: {status}",
    "value": "- Value: {value}",
    "value-unknown": "- Value: unknown",
    "items": "- Items: {items}",
    "buyer-reason": "- Buyer's reason: {reason}",
    "buyer-reason-none": "- Buyer's reason: (none given)",
    "advice": "- Policy recommends **{action}** (rule `{rule}`): {reason}",
    "returned": "- Returned: {quantity} × {item} (value {value})",
    "returned-value-unknown": "- Returned: {quantity} × {item} (value unknown)",
    "return-reason-code": "- Reason code: {code}",
    "return-reason-code-none": "- Reason code: (none)",
    "buyer-comment": "- Buyer's comment: {comment}",
    "buyer-comment-none": "- Buyer's comment: (none)",
    "requested": "- Requested: {at}",
    "address-asked": "- Henpin asked the buyer through Amazon to confirm the address.",
    "address-not-asked": "- Henpin could not message the buyer through Amazon: write to them in"
    " Seller Central's Buyer-Seller Messages (link) and record their answer here.",
    "options-heading": "Money of each option:",
    "cbm-asked": "- Henpin asked the buyer to press *Cancel items* in Your Orders, so the"
    " cancellation is theirs and does not count against your cancellation rate.",
    "cbm-reminders-sent": "- Reminders sent so far: {count}",
    "cbm-self-cancel-counts": "- A cancellation you make yourself counts against your"
    " cancellation rate.",
    "cbm-no-email-reply": "- Amazon does not give Henpin this buyer's e-mail address (that needs"
    " the restricted Direct-to-Consumer Delivery role), so Henpin cannot send the reply itself.",
    "cbm-no-email-reminder": "- Amazon does not give Henpin this buyer's e-mail address (that"
    " needs the restricted Direct-to-Consumer Delivery role), so Henpin cannot send the reminder"
    " itself.",
    "cbm-send-reply": "- Open Buyer-Seller Messages (link), search the order id, and answer in the"
    " buyer's thread with this reply (language: {language}). Then record it here; Henpin then"
    " waits for the buyer's own cancel request.",
    "cbm-send-reminder": "- Open Buyer-Seller Messages (link), search the order id, and answer in"
    " the buyer's thread with this reminder (language: {language}). Then record it here; Henpin"
    " then waits for the buyer's own cancel request.",
    "subject": "**Subject:** {subject}",
    "part-asked": "- The buyer asks to cancel: {asked}",
    "part-how": "- Amazon cancels part of an order only this way: ship and confirm the items you"
    " can fulfil, then Henpin sends an order adjustment for the others (Quantity Cancelled,"
    " reason CustomerCancel). The order acknowledgement feed would cancel the whole order.",
    "part-nothing-shipped": "- At your last answer the order had shipped nothing yet ({status}).",
    "refused-no-refund-until-asked": "- No refund until the buyer asks for one (their messages"
    " arrive by e-mail).",
    "policy-refund": "- Policy's refund: **{refund}** ({explanation})",
    "refused-refund-with-shipping": "- Policy's refund: **{refund}** (item price and shipping"
    " paid)",
    "refused-refund-price-only": "- Policy's refund: **{refund}** (item price paid, shipping kept)",
    "amazon-refunded": "- Amazon already refunded {refund} on this item (refund at first scan, or"
    " on the seller's behalf after the refund window); nothing is left for Henpin to refund.",
    "return-authorize-how": "Amazon did not authorize this request by itself (out of policy,"
    " exempt, or a marketplace set to manual authorization): it waits for your answer, due 24"
    " hours after the buyer's request. SP-API cannot authorize a merchant-fulfilled return: open"
    " Manage Returns, authorize or decline there, then record here what you did.",
    "return-receipt-how": "When Amazon's returns report shows the item delivered, Henpin answers"
    " this itself, and Amazon's refund clock starts from that delivery date.",
    "condition-table": "Condition table:",
    "condition": "- Condition: {condition}",
    "refund-due": "- Amazon expects the refund within {days} business days of receipt: by {due}.",
    "attention": "{why}",  # why the case needs attention (an `attention` phrase)
    "safe-t": "Inspect the item. If the buyer returned it damaged, incomplete or materially"
    " different, file a SAFE-T claim in Seller Central within {days} days of Amazon's refund,"
    " and say so here.",
}
AS_WRITTEN = "text"


class PromptLine(BaseModel):
    """One line of a question's prompt as data: its code (PROMPTS_EN) and values, with the
    English words it was asked with (`text`)."""

    code: str
    values: dict[str, Any] = Field(default_factory=dict)
    text: str


def line(code: str, /, **values: Any) -> PromptLine:
    """A prompt line by its code; its English words from PROMPTS_EN."""
    words = PROMPTS_EN[code].format(**{k: english(v) for k, v in values.items()})
    return PromptLine(code=code, values=values, text=words)


def as_written(text: str) -> PromptLine:
    """A line shown as it is in every language (data, such as the buyer's words)."""
    return PromptLine(code=AS_WRITTEN, text=text)


class AnswerField(BaseModel):
    """An extra value the operator gives with some choices (an amount, a condition, ...)."""

    name: str
    kind: Literal["money", "text", "option", "integer"]
    label: str
    required_for: list[str] = Field(default_factory=list)  # the choices that need this field
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    options: list[str] = Field(default_factory=list)
    #: Words shown beside an option's name (e.g. the owner's description of a condition in
    #: policies.yaml); the answer is still the name.
    option_labels: dict[str, str] = Field(default_factory=dict)
    currency: str | None = None
    proposed: str | None = None  # the value Henpin proposes (e.g. the policy's refund)


PROMPT_IN_INBOX = (
    "The facts to decide on (the order, what the buyer wrote, what policy recommends) are on "
    "the case's page in the Henpin inbox."
)


class Question(BaseModel):
    """One decision a case waits for: its choices, fields, deadline and named timeout path."""

    step: str
    title: str = ""  # made from title_code when not given
    prompt: str = ""  # markdown: the facts the operator decides on
    #: The title and the prompt as data, so the inbox words them in the operator's language
    #: (`title` and `prompt` are their English words, made from them when not given).
    title_code: str | None = None
    title_values: dict[str, Any] = Field(default_factory=dict)
    prompt_lines: list[PromptLine] = Field(default_factory=list)
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

    @model_validator(mode="before")
    @classmethod
    def _english_words(cls, data: Any) -> Any:
        """`title` from `title_code`, `prompt` from `prompt_lines` (plain strings among them
        are lines as written)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        lines = [as_written(x) if isinstance(x, str) else x for x in data.get("prompt_lines") or []]
        if lines:
            data["prompt_lines"] = lines
            if not data.get("prompt"):
                data["prompt"] = "\n".join(
                    x.text if isinstance(x, PromptLine) else str(x.get("text", "")) for x in lines
                )
        code = data.get("title_code")
        if code and not data.get("title"):
            values = data.get("title_values") or {}
            data["title"] = TITLES_EN[code].format(**{k: english(v) for k, v in values.items()})
        return data

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


def order_facts(order: Order) -> list[PromptLine]:
    """The order lines every prompt starts with."""
    m = MARKETPLACES.get(order.marketplace_id)
    value = order.value
    items = "; ".join(
        f"{i.quantity} × {i.sku or i.asin} {i.title or ''}".strip() for i in order.items
    )
    return [
        line("order", order_id=order.order_id, marketplace=m.name if m else order.marketplace_id),
        line("status", status=order.fulfillment_status.value),
        line("value", value=money_value(value.amount, value.currency))
        if value
        else line("value-unknown"),
        *map(as_written, _paid_lines(order)),
        line("items", items=items),
    ]


def money_value(amount: Decimal, currency: str) -> dict[str, Any]:
    """Money as a line's value, as the order gave it."""
    return {"amount": str(amount), "currency": currency}


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


def advice_line(advice: dict[str, Any]) -> PromptLine:
    code = advice.get("reason_code")
    reason: Any = (
        {"code": code, "values": advice.get("reason_values") or {}}
        if code
        else advice.get("reason")
    )
    return line("advice", action=advice.get("action"), rule=advice.get("rule"), reason=reason)


def buyer_reason_line(order: Order) -> PromptLine:
    reason = order.buyer_cancel_reason
    return line("buyer-reason", reason=reason) if reason else line("buyer-reason-none")
