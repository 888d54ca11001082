"""A case's closing words for a refund that was not made say who kept it back."""

from __future__ import annotations

from henpin.cases.refund_outcomes import refund_not_made_message
from henpin.outbox.refund_limits import HELD_WOULD_OVERPAY


def test_a_refund_henpin_held_back_is_not_said_to_be_amazons_refusal() -> None:
    said = refund_not_made_message(
        HELD_WOULD_OVERPAY, "Not sent: 8.00 USD was already refunded.", held_by_henpin=True
    )
    assert said.startswith("Henpin held the refund back")
    assert "Amazon did not refund" not in said
    assert "8.00 USD" in said


def test_amazons_refusal_is_said_to_be_amazons() -> None:
    said = refund_not_made_message("18028", "The data ... is invalid.", held_by_henpin=False)
    assert said == "Amazon did not refund: 18028: The data ... is invalid."
