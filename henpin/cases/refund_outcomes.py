"""Words for a case's refund that was not made: Amazon refused it, or Henpin held it back; and
the question a person answers when Henpin keeps holding it back."""

from __future__ import annotations

from typing import ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.domain import Order
from henpin.policy.reasons import Phrase, phrase
from henpin.questions import Question, line


def refund_not_made_message(code: str | None, detail: str | None, *, held_by_henpin: bool) -> str:
    """The case's closing note. Henpin's own codes (`HENPIN_...`) are never said to be
    Amazon's: a refund the outbox's never-refund-twice check kept back never reached Amazon."""
    if held_by_henpin:
        return (
            f"Henpin held the refund back and did not send it to Amazon ({code}): {detail} "
            "Look at the order's refunds in Seller Central before refunding by hand."
        )
    return f"Amazon did not refund: {code or 'error'}: {detail}"


#: How long a person has to look at a refund Henpin keeps holding back before Henpin checks again
#: on its own (the question's timeout path): Amazon's refund deadline is two business days from
#: the return's delivery (help U7K5N5GUP67M4X9), so the next check comes well within it.
HELD_REFUND_DEADLINE_HOURS = 8.0


class HeldRefundDecision(OperatorAnswer):
    """What a person does with a refund Henpin's never-refund-twice check keeps holding back."""

    choice: Literal["check_again", "escalate"]

    labels: ClassVar[dict[str, str]] = {
        "check_again": "Check again now (the order's refunds may have changed)",
        "escalate": "Escalate to the owner: the refund is settled outside Henpin",
    }


def refund_held_flag(checks: int, code: str | None, detail: str | None) -> Phrase:
    """The case's "needs attention" reason: the never-refund-twice check kept the refund back
    at every check, with the figures of the last one (as the check wrote them). Nothing was
    sent to Amazon."""
    return phrase("attention", "refund-held", checks=checks, code=str(code), detail=str(detail))


def refund_held_question(order: Order, flag: Phrase, round_: int) -> Question:
    """Ask a person what to do with a refund Henpin keeps holding back (`round_`: the how-many-th
    time it is asked, so each asking has its own step and record)."""
    return Question(
        step="refund-held" if round_ == 1 else f"refund-held-round{round_}",
        title_code="refund-held",
        title_values={"order_id": order.order_id},
        prompt_lines=[line("attention", why=flag.as_json())],
        choices=list(HeldRefundDecision.labels),
        labels=HeldRefundDecision.labels,
        note_required_for=["escalate"],
        deadline_hours=HELD_REFUND_DEADLINE_HOURS,
        timeout_choice="check_again",
        recommended="check_again",
    )
