"""How a case ends once Amazon confirms its action, declared when the action is queued
(`henpin.domain.ClosesCase`): the outbox closes the case with these words in the transaction
that records Amazon's result, and the flow, resumed after, ends with the same."""

from __future__ import annotations

from henpin.domain import ClosesCase, Money, Outcome


def cancelled_by_amazon(done: Outcome) -> ClosesCase:
    """The order acknowledgement feed cancelled the order (BuyerCanceled)."""
    return ClosesCase(outcome=done, message="Amazon cancelled the order (feed {feed}).")


def refunded_by_amazon(outcome: Outcome, sent: Money) -> ClosesCase:
    """The payment adjustment feed refunded `sent`."""
    return ClosesCase(outcome=outcome, message=f"Amazon refunded {sent} (feed {{feed}}).")
