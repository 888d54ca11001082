"""Return request (Return Center): questions, facts and refund money."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic.json_schema import SkipJsonSchema

from henpin.cases.answers import OperatorAnswer
from henpin.cases.money import (
    RefundFit,
    amount_refund_item,
    full_refund_item,
    refund_total,
    refundable,
)
from henpin.cases.refund_confirmation import RefundConfirmation, refund_confirmation_question
from henpin.domain import (
    AdjustmentReason,
    Money,
    Order,
    OrderItem,
    Refund,
    ReturnRequest,
)
from henpin.marketplaces import MARKETPLACES
from henpin.policy import ReturnRequestPolicy
from henpin.policy.proposals import RefundProposal, explanation_value, paid_for_units
from henpin.policy.reasons import Phrase, phrase, time_value
from henpin.questions import (
    AnswerField,
    PromptLine,
    Question,
    advice_line,
    line,
    money_value,
    order_facts,
)

#: The authorize question's answer when Amazon's returns report shows the request Closed: it is
#: recorded by ingestion only (no operator chooses it, so it is not among the choices).
CLOSED_AT_AMAZON = "closed_at_amazon"


class ReturnAuthorization(OperatorAnswer):
    """What the operator did in Seller Central's Manage Returns."""

    choice: Literal["authorized", "declined", "keep_item_refund", "escalate", "closed_at_amazon"]
    buyer_comment: str | None = None

    labels: ClassVar[dict[str, str]] = {
        "authorized": "I authorized the return in Seller Central (Manage Returns)",
        "declined": "I declined the return in Seller Central (write the reason)",
        "keep_item_refund": "Let the buyer keep or refuse the item; refund the item price only",
        "escalate": "Escalate to the owner",
    }
    henpin_only = frozenset({CLOSED_AT_AMAZON})


def returned_item(ret: ReturnRequest, order: Order) -> OrderItem:
    """The order item the return is about (by item id, else by SKU, else the first)."""
    for item in order.items:
        if ret.order_item_id and item.order_item_id == ret.order_item_id:
            return item
    for item in order.items:
        if ret.sku and item.sku == ret.sku:
            return item
    return order.items[0]


def returned_quantity(ret: ReturnRequest, order: Order) -> int:
    item = returned_item(ret, order)
    return min(ret.quantity or item.quantity, item.quantity)


def returned_value(ret: ReturnRequest, order: Order) -> Money | None:
    """What the buyer paid for the returned units (price and shipping, less promotions): the
    most any refund of them may give back."""
    return refundable(returned_item(ret, order), returned_quantity(ret, order))


def return_details(ret: ReturnRequest) -> dict[str, Any]:
    return {
        "return": ret.model_dump(mode="json"),
        "buyer_comment": ret.buyer_comment,
        "reason_code": ret.reason_code,
    }


def _links(order: Order) -> dict[str, str]:
    m = MARKETPLACES.get(order.marketplace_id)
    if m is None:
        return {}
    return {
        "Manage Returns (Seller Central)": m.manage_returns_page(order.order_id),
        "Seller Central order": m.order_page(order.order_id),
    }


def _return_facts(ret: ReturnRequest, order: Order) -> list[PromptLine | str]:
    value = returned_value(ret, order)
    item = ret.sku or ret.asin
    return [
        *order_facts(order),
        line(
            "returned",
            quantity=ret.quantity,
            item=item,
            value=money_value(value.amount, value.currency),
        )
        if value
        else line("returned-value-unknown", quantity=ret.quantity, item=item),
        line("return-reason-code", code=ret.reason_code)
        if ret.reason_code
        else line("return-reason-code-none"),
        line("buyer-comment", comment=ret.buyer_comment)
        if ret.buyer_comment
        else line("buyer-comment-none"),
        line("requested", at=time_value(ret.requested_at)) if ret.requested_at else "",
    ]


def authorization_question(
    ret: ReturnRequest, order: Order, advice: dict[str, Any], policy: ReturnRequestPolicy
) -> Question:
    action = advice.get("action")
    recommended = {
        "authorize": "authorized",
        "decline": "declined",
        "keep_item_refund": "keep_item_refund",
    }.get(str(action))
    return Question(
        step="authorize-return",
        title_code="return-authorize",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *_return_facts(ret, order),
            advice_line(advice),
            "",
            line("return-authorize-how"),
        ],
        choices=list(ReturnAuthorization.labels),
        labels=ReturnAuthorization.labels,
        fields=[
            AnswerField(
                name="buyer_comment",
                kind="text",
                label="The buyer's comment (from Amazon's 'Return authorization request' e-mail)",
            )
        ],
        note_required_for=["declined"],
        deadline_hours=policy.operator.deadline_hours,
        # Amazon counts the seller's 24 hours from the buyer's request, not from this question;
        # asked late, the operator still gets the policy's minimum time (see mark_waiting).
        deadline_at=(
            ret.requested_at + policy.operator.deadline if ret.requested_at is not None else None
        ),
        minimum_hours=policy.operator.minimum_hours,
        timeout_choice=policy.operator.on_deadline,
        recommended=recommended,
        links=_links(order),
    )


def authorized_by_amazon(ret: ReturnRequest) -> tuple[str, dict[str, Any]]:
    """The timeline line and case details for a return Amazon authorized itself."""
    message = (
        f"Authorized by Amazon (returns report status {ret.status!r}): nothing to answer in "
        "Manage Returns; waiting for the item."
    )
    details = {"authorization": {"status": "authorized", "by": "amazon", "report": ret.status}}
    return message, details


def refund_clock(
    ret: ReturnRequest, order: Order, received_at: datetime, due: datetime, source: str
) -> tuple[str, dict[str, Any]]:
    """The timeline line and case details for the refund deadline, fixed once."""
    m = MARKETPLACES.get(order.marketplace_id)
    zone = m.time_zone if m else "UTC"
    local = due.astimezone(ZoneInfo(zone))
    where = "Amazon's returns report" if source == "amazon-report" else "the operator"
    message = (
        f"The item came back {received_at:%Y-%m-%d %H:%M} UTC ({where}); Amazon expects the "
        f"refund by {due:%Y-%m-%d %H:%M} UTC ({local:%a %Y-%m-%d %H:%M} {zone})."
    )
    details = {
        "received_at": received_at.isoformat(),
        "received_from": source,
        "refund_due": due.isoformat(),
        "refund_due_time_zone": zone,
    }
    return message, details


class ItemReceipt(OperatorAnswer):
    """Whether the returned item came back (Henpin answers it from Amazon's returns report)."""

    choice: Literal["received", "not_coming", "remind", "escalate"]
    #: When Amazon's returns report shows the item delivered (Henpin's answer only: ingestion
    #: records it; not in the Prefect UI's form).
    return_delivery_date: SkipJsonSchema[datetime | None] = None

    labels: ClassVar[dict[str, str]] = {
        "received": "The item came back",
        "not_coming": "The item will not come back (buyer kept it / lost): stop waiting",
        "remind": "Remind the buyer and wait again",
        "escalate": "Escalate to the owner",
    }


def receipt_question(
    ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, *, reminded: bool
) -> Question:
    # Counted from the authorization: a reminder after `reminder_after_days`, then the rest of
    # `receipt_wait_days` before escalating.
    days = policy.reminder_wait_days if reminded else policy.reminder_after_days
    return Question(
        step="item-received-after-reminder" if reminded else "item-received",
        title_code="return-receipt",
        title_values={"order_id": order.order_id},
        prompt_lines=[*_return_facts(ret, order), "", line("return-receipt-how")],
        choices=["received", "not_coming", "escalate"] if reminded else list(ItemReceipt.labels),
        labels=ItemReceipt.labels,
        deadline_hours=days * 24,
        timeout_choice="escalate" if reminded else "remind",
        recommended="received",
        links=_links(order),
    )


#: The inspection question's timeout path: the refund is owed, so an unanswered inspection does
#: not close the case: it is flagged for attention and asked again (not among the choices).
INSPECTION_OVERDUE = "overdue"


class ItemCondition(OperatorAnswer):
    """The returned item's condition, one of the policy's condition table."""

    choice: Literal["inspected", "escalate", "overdue"]
    condition: str | None = None

    labels: ClassVar[dict[str, str]] = {
        "inspected": "Record the condition",
        "escalate": "Escalate to the owner",
    }
    henpin_only = frozenset({INSPECTION_OVERDUE})


def inspection_overdue(order: Order) -> Phrase:
    """The case's needs-attention flag when nobody recorded the item's condition in time."""
    return phrase("attention", "inspection-overdue", order_id=order.order_id)


def condition_question(
    ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, overdue: int = 0
) -> Question:
    """What the item's condition is; asked again (`overdue` times) when nobody answered."""
    conditions = policy.condition_names()
    return Question(
        step="item-condition" if not overdue else f"item-condition-overdue-{overdue}",
        title_code="return-condition",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *_return_facts(ret, order),
            "",
            line("condition-table"),
            *policy.condition_table_lines(),
        ],
        choices=list(ItemCondition.labels),
        labels=ItemCondition.labels,
        fields=[
            AnswerField(
                name="condition",
                kind="option",
                label="Condition of the returned item",
                required_for=["inspected"],
                options=conditions,
                option_labels=policy.condition_descriptions(),
            )
        ],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice=INSPECTION_OVERDUE,
        recommended="inspected",
    )


def marketplace_country(marketplace_id: str) -> str | None:
    """The storefront's country code (henpin/marketplaces.py); None for an unknown id."""
    found = MARKETPLACES.get(marketplace_id)
    return found.country if found else None


def proposal_for_condition(
    ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, condition: str
) -> dict[str, Any]:
    item = returned_item(ret, order)
    quantity = min(ret.quantity or item.quantity, item.quantity)
    proposal = policy.refund_for_condition(
        item,
        condition,
        quantity,
        reason_code=ret.reason_code,
        in_policy=ret.in_policy,
        country=marketplace_country(order.marketplace_id),
    )
    return proposal.model_dump(mode="json")


class ReturnRefundConfirmation(RefundConfirmation):
    """The condition table's refund confirmed, or another amount."""

    choice: Literal["refund_proposed", "refund_other_amount", "escalate"]

    labels: ClassVar[dict[str, str]] = {
        **RefundConfirmation.labels,
        "escalate": "Escalate to the owner",
    }


def refund_question(
    ret: ReturnRequest,
    order: Order,
    policy: ReturnRequestPolicy,
    proposal: dict[str, Any],
    refund_due: datetime,
) -> Question:
    value = returned_value(ret, order)
    currency = value.currency if value else None
    total = proposal.get("total") or {"amount": "0", "currency": currency}
    return refund_confirmation_question(
        ReturnRefundConfirmation,
        order,
        title_code="return-refund",
        facts=[
            *_return_facts(ret, order),
            line("condition", condition=proposal.get("condition")),
            line(
                "policy-refund",
                refund={"amount": str(total.get("amount")), "currency": total.get("currency")},
                explanation=explanation_value(proposal),
            ),
            line(
                "refund-due",
                days=policy.refund_deadline_business_days,
                due=time_value(refund_due),
            ),
        ],
        proposed_words=f"Refund {total.get('amount')} {total.get('currency')} as the policy says",
        proposed_amount=str(total.get("amount")),
        currency=currency,
        paid=value.amount if value else None,
        note_required_for=["refund_other_amount"],
        # Amazon's clock: N business days from receipt, counted in the marketplace's local
        # time and fixed when the item came back (asking later does not push it back; asked
        # after it, the operator still gets the policy's minimum time, see mark_waiting).
        # Unanswered, the refund the policy proposes for the recorded condition is sent: the
        # refund is owed, and a timeout never closes it unrefunded.
        deadline_hours=policy.operator.deadline_hours,
        deadline_at=refund_due,
        minimum_hours=policy.operator.minimum_hours,
        timeout_choice="refund_proposed",
    )


def item_price_refund(ret: ReturnRequest, order: Order) -> Refund:
    """Refund the returned units' price as paid (less its promotion), not their shipping (the
    buyer keeps or refuses the item)."""
    line = full_refund_item(
        returned_item(ret, order),
        returned_quantity(ret, order),
        AdjustmentReason.CUSTOMER_RETURN,
        with_shipping=False,
    )
    assert line is not None, "an item without a price cannot be refunded by amount"
    return Refund(order_id=order.order_id, items=[line])


def refund_from_answer(
    ret: ReturnRequest,
    order: Order,
    proposal: dict[str, Any],
    confirmed: ReturnRefundConfirmation,
) -> Refund | None:
    """The refund the operator confirmed: the policy's proposal, or their own amount (split over
    the price and shipping paid, promotions included, as `amount_refund_item` does). None when
    nothing is due (a condition the table refunds at 0%)."""
    proposed = RefundProposal.model_validate(proposal)
    amount = confirmed.other_amount()
    if amount is not None:
        item = amount_refund_item(
            returned_item(ret, order), proposed.quantity, amount, proposed.adjustment_reason
        )
    else:
        refund_item = proposed.refund_item()
        if refund_item is None:
            return None
        item = refund_item
    return Refund(order_id=order.order_id, items=[item])


def is_full_refund(ret: ReturnRequest, order: Order, refund: Refund) -> bool:
    """Does the refund give back at least the price paid for the returned units?"""
    paid = paid_for_units(returned_item(ret, order), returned_quantity(ret, order))
    return paid is not None and refund_total(refund).amount >= paid.net_price


# --- Amazon refunded the item itself (refund at first scan, missed refund window) -----------

#: Seller Central help GYLYQWNG8LZ9JNJP: a SAFE-T claim for a refund Amazon issued may be filed
#: within 60 days of the refund charge.
SAFE_T_DAYS = 60


class ItemAfterAmazonRefund(OperatorAnswer):
    """After Amazon's own refund: is a SAFE-T claim due on the item that came back?"""

    choice: Literal["as_expected", "safe_t_claim", "escalate"]

    labels: ClassVar[dict[str, str]] = {
        "as_expected": "The item came back as expected: nothing more to do",
        "safe_t_claim": "It came back damaged, incomplete or different: I file a SAFE-T claim",
        "escalate": "Escalate to the owner",
    }


def closed_at_amazon(ret: ReturnRequest, fit: RefundFit) -> str:
    """The closing line for a request Amazon's returns report shows Closed."""
    said = f"Amazon's returns report shows the request {ret.status or 'Closed'!r}"
    if fit.by_amazon is not None:
        return f"{said}; Amazon refunded {fit.by_amazon} on the item: nothing sent."
    if fit.before is not None:
        return f"{said}; {fit.before} was refunded on the item before: nothing sent."
    return (
        f"{said}, with no refund on the item: declined in Seller Central, or closed by Amazon "
        "(completed, or 50 days without action). Nothing sent."
    )


def amazon_refunded(fit: RefundFit) -> str:
    """What Amazon refunded on the returned item, in words."""
    return f"Amazon already refunded {fit.by_amazon} on this item"


def safe_t_question(
    ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, fit: RefundFit
) -> Question:
    """Amazon refunded the item (nothing is left to refund): only the item's condition matters
    now, for a SAFE-T claim on Amazon's refund."""
    return Question(
        step="item-after-amazon-refund",
        title_code="return-amazon-refunded",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *_return_facts(ret, order),
            line(
                "amazon-refunded", refund=money_value(fit.by_amazon.amount, fit.by_amazon.currency)
            )
            if fit.by_amazon
            else f"- {amazon_refunded(fit)} (refund at first scan, or on the seller's behalf "
            "after the refund window); nothing is left for Henpin to refund.",
            "",
            line("safe-t", days=SAFE_T_DAYS),
        ],
        choices=list(ItemAfterAmazonRefund.labels),
        labels=ItemAfterAmazonRefund.labels,
        note_required_for=["safe_t_claim"],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice="as_expected",
        recommended="as_expected",
        links=_links(order),
    )


def closing_message(fit: RefundFit, choice: str, note: str) -> str:
    """The case's closing words: Amazon's refund, nothing sent, and the claim if one is filed."""
    done = f"{amazon_refunded(fit)}; Henpin sent no refund."
    if choice == "safe_t_claim":
        return f"{done} The operator files a SAFE-T claim: {note}"
    return done
