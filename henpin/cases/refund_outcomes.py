"""Words for a case's refund that was not made: Amazon refused it, or Henpin held it back."""

from __future__ import annotations


def refund_not_made_message(code: str | None, detail: str | None, *, held_by_henpin: bool) -> str:
    """The case's closing note. Henpin's own codes (`HENPIN_...`) are never said to be
    Amazon's: a refund the outbox's never-refund-twice check kept back never reached Amazon."""
    if held_by_henpin:
        return (
            f"Henpin held the refund back and did not send it to Amazon ({code}): {detail} "
            "Look at the order's refunds in Seller Central before refunding by hand."
        )
    return f"Amazon did not refund: {code or 'error'}: {detail}"
