"""Which returning parcel is which case: refused, unclaimed, or an address problem.

Routed on the package's `packageStatus.detailedStatus` (Orders API 2026-01-01, `PACKAGES`).
"""

from __future__ import annotations

from typing import Literal

from henpin.domain import Order

ReturningParcel = Literal["refused", "unclaimed", "address"]

# detailedStatus values (upper case) of an UNDELIVERABLE package, and what they mean. The
# Orders API 2026-01-01 model describes `UNDELIVERABLE` as "address or access issues"; the
# other spellings are ones carriers report through Amazon and are kept for safety.
REFUSED = {"REJECTED_BY_BUYER", "REJECTED", "REFUSED", "DELIVERY_REFUSED"}
UNCLAIMED = {"RETURNING_TO_SELLER", "RETURNED_TO_SELLER", "UNCLAIMED", "NOT_COLLECTED"}
ADDRESS = {"UNDELIVERABLE", "ADDRESS_NOT_FOUND", "INCORRECT_ADDRESS", "BAD_ADDRESS"}


def returning_parcel(order: Order) -> ReturningParcel | None:
    """What kind of returning parcel the order has, if any (address problems first)."""
    for package in getattr(order, "packages", []) or []:
        detail = (package.detailed_status or "").upper()
        undeliverable = (package.status or "").upper() == "UNDELIVERABLE"
        if detail in ADDRESS:
            return "address"
        if detail in REFUSED:
            return "refused"
        if detail in UNCLAIMED or undeliverable:
            return "unclaimed"
    return None
