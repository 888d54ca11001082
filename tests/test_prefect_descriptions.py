"""What Henpin gives the Prefect UI (pause descriptions, the case summary artifact) holds
nothing a buyer wrote and nothing live: Prefect keeps it for good and renders it as markdown."""

from __future__ import annotations

from datetime import UTC, datetime

from henpin.cases.cancel_request import cancel_request_question
from henpin.domain import FulfillmentStatus, Order, OrderItem, Outcome
from henpin.questions import PROMPT_IN_INBOX
from henpin.store.models import Case, Decision
from tasks.cases import case_summary_markdown

SAID = "Call Zyxwv Qutsr +81-90-1234-5678 [here](http://evil.example) ![p](http://t.example/p)"


def test_a_pause_description_holds_no_buyer_words_or_item_titles() -> None:
    now = datetime.now(UTC)
    order = Order(
        order_id="111-D",
        marketplace_id="ATVPDKIKX0DER",
        created_time=now,
        last_updated_time=now,
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
        buyer_name="Zyxwv Qutsr",
        items=[
            OrderItem(
                order_item_id="1",
                quantity=1,
                title="Zyxwv's engraved mug",
                cancel_requested_by_buyer=True,
                buyer_cancel_reason=SAID,
            )
        ],
    )
    question = cancel_request_question(
        order,
        {"action": "cancel", "rule": "r", "reason": SAID},
        deadline_hours=4,
        timeout_choice="cancel",
    )
    assert "Zyxwv" in question.prompt  # the inbox shows it (as plain text)
    description = question.markdown(now)
    assert PROMPT_IN_INBOX in description and "111-D" in description
    for personal in ("Zyxwv", "Qutsr", "1234-5678", "evil.example", "t.example"):
        assert personal not in description, personal


def test_the_case_summary_artifact_holds_no_notes_or_reasons() -> None:
    case = Case(
        id=7,
        type="cancel-request",
        order_id="111-D",
        marketplace_id="ATVPDKIKX0DER",
        policy_version="v1",
        recommendation={"rule": "high-value", "reason": SAID},
    )
    case.decisions = [
        Decision(
            step="operator-decision", choice="cancel", note=SAID, operator="alice", source="inbox"
        )
    ]
    summary = case_summary_markdown(case, Outcome.CANCELLED_BUYER_CANCELED, "Cancelled.")
    assert "`high-value`" in summary and "**cancel**" in summary
    for personal in ("Zyxwv", "1234-5678", "evil.example"):
        assert personal not in summary, personal
