"""Case type 4, a refused or unclaimed delivery: the parcel is coming back to the seller.

No refund until the buyer asks for one (they may still want the item, or never ask); while
waiting, the operator is reminded. When the buyer asks, the refund is by default the item price
only: the outbound shipping was spent and is kept. The reason is RefusedDelivery when the buyer
refused the parcel, Undeliverable when nobody collected it.

Rule names of `recommend`:
  no-refund-until-asked  the buyer has not asked for a refund     → wait_for_buyer
  nothing-to-refund      no item has a known price above zero     → ask_operator
  refund-on-request      the buyer asked: the policy's refund     → refund
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from henpin.domain import AdjustmentReason, Order
from henpin.policy._base import (
    Advice,
    Inputs,
    OperatorDeadline,
    Percent,
    PolicyModel,
    as_utc,
    money_json,
)
from henpin.policy.proposals import (
    OrderRefundProposal,
    explanation_value,
    whole_order_proposal,
)
from henpin.policy.reasons import Phrase, Reason, amount_value, because, phrase

RefusedDeliveryAction = Literal["wait_for_buyer", "refund", "ask_operator"]


class RefusedDeliveryRefund(PolicyModel):
    """What a buyer whose parcel came back gets when they ask."""

    item_price_percent: Percent = Decimal(100)
    refund_shipping: bool = False  # outbound shipping: spent on a parcel the buyer did not take
    refused_reason: AdjustmentReason = AdjustmentReason.REFUSED_DELIVERY
    unclaimed_reason: AdjustmentReason = AdjustmentReason.UNDELIVERABLE


class RefusedDeliveryOperatorPolicy(OperatorDeadline):
    """How long an operator has to confirm the refund once the buyer asked, and what happens
    when nobody does: the policy's refund goes out (the buyer is waiting for their money), or
    the case goes to the owner."""

    deadline_hours: float = Field(default=48, gt=0, le=24 * 14)
    on_deadline: Literal["refund", "escalate"] = "refund"


class RefusedDeliveryRecommendation(Advice):
    action: RefusedDeliveryAction


class RefusedDeliveryPolicy(PolicyModel):
    """A parcel was refused or not collected and is coming back: refund only when asked."""

    wait_days: int = Field(default=14, ge=1, le=90)
    reminders: int = Field(default=1, ge=0, le=5)
    refund: RefusedDeliveryRefund = RefusedDeliveryRefund()
    operator: RefusedDeliveryOperatorPolicy = RefusedDeliveryOperatorPolicy()

    def adjustment_reason(self, *, refused: bool) -> AdjustmentReason:
        return self.refund.refused_reason if refused else self.refund.unclaimed_reason

    def refund_for(self, order: Order, *, refused: bool) -> OrderRefundProposal:
        """The refund the policy gives: each item's price share, and its shipping if the policy
        refunds it. Items with no price, or a price of zero, get nothing."""
        settings = self.refund
        reason = self.adjustment_reason(refused=refused)
        what = phrase("explanation", "refused-by-buyer" if refused else "not-collected")
        return whole_order_proposal(
            order,
            reason=reason,
            rule="refund-on-request",
            explanation=phrase(
                "explanation",
                "parcel-refund",
                what=what.as_json(),
                refund=_explain(settings, None, None).as_json(),
                adjustment=reason.value,
            ),
            inputs={
                "order_id": order.order_id,
                "refused": refused,
                "item_price_percent": str(settings.item_price_percent),
                "refund_shipping": settings.refund_shipping,
                "adjustment_reason": reason.value,
            },
            percent=settings.item_price_percent,
            shipping_percent=Decimal(100) if settings.refund_shipping else None,
            explain_item=lambda total: _explain(settings, total.amount, total.currency),
        )

    def recommend(
        self, order: Order, *, refused: bool, buyer_asked: bool, now: datetime
    ) -> RefusedDeliveryRecommendation:
        """Wait while the buyer has not asked; once they have, refund as the policy says."""
        proposal = self.refund_for(order, refused=refused)
        inputs: Inputs = {
            "order_id": order.order_id,
            "marketplace_id": order.marketplace_id,
            "refused": refused,
            "buyer_asked": buyer_asked,
            "order_value": money_json(order.value),
            "proposed_refund": money_json(proposal.total),
            "evaluated_at": as_utc(now).isoformat(),
        }

        def says(
            action: RefusedDeliveryAction, rule: str, reason: Reason
        ) -> RefusedDeliveryRecommendation:
            return RefusedDeliveryRecommendation(
                action=action, rule=rule, inputs=inputs, **reason.fields()
            )

        if not buyer_asked:
            return says(
                "wait_for_buyer",
                "no-refund-until-asked",
                because("no-refund-until-asked", days=self.wait_days),
            )
        if proposal.total is None or proposal.total.amount <= 0:
            return says("ask_operator", "nothing-to-refund", because("nothing-to-refund"))
        shown = amount_value(proposal.total.amount, proposal.total.currency)
        return says(
            "refund",
            "refund-on-request",
            because(
                "refund-on-request",
                refund=shown,
                explanation=explanation_value(proposal.model_dump(mode="json")),
            ),
        )


def _explain(
    settings: RefusedDeliveryRefund, total: Decimal | None, currency: str | None
) -> Phrase:
    """What the refund gives back (with its total, for one item's line)."""
    shipping = settings.refund_shipping
    if settings.item_price_percent == 100:
        said = phrase("explanation", "price-and-shipping" if shipping else "price-only")
    else:
        said = phrase(
            "explanation",
            "percent-and-shipping" if shipping else "percent-only",
            percent=f"{settings.item_price_percent:g}",
        )
    if total is not None and currency is not None:
        return phrase(
            "explanation", "item-refund", total=amount_value(total, currency), refund=said.as_json()
        )
    return said
