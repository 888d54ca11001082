"""Which returning parcel is which case: refused, unclaimed, or an address problem.

Routed on the package's `packageStatus.detailedStatus` (Orders API 2026-01-01, `PACKAGES`).

One order has at most one open parcel case (henpin/parcel_cases.py keeps it so). The seller's
guide (cases 4 and 5) owes different things for the two: a refused or unclaimed parcel
(受取の拒否および放置) is refunded only when the buyer asks, item price only; a parcel back
because of the buyer's address (住所不備) is first confirmed with the buyer, then reshipped,
refunded in part by agreement, or cancelled as buyer-caused for a reorder. The words each case
keeps about the parcel's reasons are here.
"""

from __future__ import annotations

from typing import Any, Literal

from henpin.domain import CaseType, Order, Package
from henpin.policy.reasons import Phrase, phrase

ReturningParcel = Literal["refused", "unclaimed", "address"]
# What an operator opens by order id, for carriers that tell Amazon nothing.
ParcelKind = Literal["refused", "unclaimed", "address-error"]
PARCEL_KINDS: tuple[ParcelKind, ...] = ("refused", "unclaimed", "address-error")
PARCEL_CASE_TYPES = (CaseType.REFUSED_DELIVERY, CaseType.ADDRESS_ERROR)

# detailedStatus values (upper case) of an UNDELIVERABLE package, and what they mean. The
# Orders API 2026-01-01 model describes `UNDELIVERABLE` as "address or access issues"; the
# other spellings are ones carriers report through Amazon and are kept for safety.
REFUSED = {"REJECTED_BY_BUYER", "REJECTED", "REFUSED", "DELIVERY_REFUSED"}
UNCLAIMED = {"RETURNING_TO_SELLER", "RETURNED_TO_SELLER", "UNCLAIMED", "NOT_COLLECTED"}
ADDRESS = {"UNDELIVERABLE", "ADDRESS_NOT_FOUND", "INCORRECT_ADDRESS", "BAD_ADDRESS"}

MEANING: dict[ReturningParcel, str] = {
    "refused": "the buyer refused it",
    "unclaimed": "nobody collected it",
    "address": "it could not be delivered to the address",
}


def returning_package(order: Order) -> tuple[ReturningParcel, Package] | None:
    """The order's returning package and what kind it is, if any (address problems first)."""
    found: tuple[ReturningParcel, Package] | None = None
    for package in getattr(order, "packages", []) or []:
        detail = (package.detailed_status or "").upper()
        undeliverable = (package.status or "").upper() == "UNDELIVERABLE"
        if detail in ADDRESS:
            return "address", package
        if found is None and detail in REFUSED:
            found = "refused", package
        elif found is None and (detail in UNCLAIMED or undeliverable):
            found = "unclaimed", package
    return found


def returning_parcel(order: Order) -> ReturningParcel | None:
    """What kind of returning parcel the order has, if any (address problems first)."""
    found = returning_package(order)
    return found[0] if found else None


def parcel_kind(kind: ParcelKind) -> ReturningParcel:
    """An operator's kind as ingestion names it."""
    return "address" if kind == "address-error" else kind


def case_type_for(kind: ReturningParcel) -> CaseType:
    return CaseType.ADDRESS_ERROR if kind == "address" else CaseType.REFUSED_DELIVERY


def parcel_report(order: Order, kind: ReturningParcel, *, operator: str | None) -> dict[str, Any]:
    """One sighting of the returning parcel, as a case keeps it (details.parcel_reports)."""
    found = returning_package(order)
    package = found[1] if found and found[0] == kind else None
    return {
        "kind": kind,
        "status": package.status if package else None,
        "detailed_status": package.detailed_status if package else None,
        "tracking_number": package.tracking_number if package else None,
        "source": f"operator {operator}" if operator else "amazon",
    }


def report_words(report: dict[str, Any]) -> str:
    kind: ReturningParcel = report["kind"]
    if report["source"] != "amazon":
        return f"{report['source']} reports the parcel is coming back: {MEANING[kind]}"
    status = "/".join(s for s in (report["status"], report["detailed_status"]) if s) or "?"
    return f"Amazon reports the parcel as {status}: {MEANING[kind]}"


def opened_note(report: dict[str, Any]) -> str:
    return f"{report_words(report)}."


def new_report_note(report: dict[str, Any]) -> str:
    return f"{report_words(report)}. Recorded on this case: an order has one parcel case."


def kept_note(report: dict[str, Any], why: str) -> str:
    """An address problem reported while this refused/unclaimed case cannot hand over."""
    return (
        f"{report_words(report)}. This case continues as refused or unclaimed because {why}; "
        "check the address with the buyer before refunding."
    )


def handed_over_note(new_case_id: int, report: dict[str, Any]) -> str:
    return (
        f"{report_words(report)}. Case {new_case_id} (address error) takes this parcel over: "
        "the buyer is asked to confirm the address first. Nothing was refunded here."
    )


def taken_over_note(old_case_id: int, report: dict[str, Any]) -> str:
    return (
        f"{report_words(report)}. This case takes over case {old_case_id} (refused or "
        "unclaimed delivery), whose history is in details.handed_over_from."
    )


def follows_note(old_case_id: int, old_type: str, outcome: str | None) -> str:
    return f"Follows case {old_case_id} ({old_type}, closed: {outcome or 'no outcome'})."


def report_phrase(report: dict[str, Any]) -> Phrase:
    """`report_words` as a coded phrase (a part of a needs-attention reason)."""
    kind: ReturningParcel = report["kind"]
    meaning = phrase("attention", f"parcel-{kind}").as_json()
    if report["source"] != "amazon":
        return phrase("attention", "parcel-reported-by", source=report["source"], meaning=meaning)
    status = "/".join(s for s in (report["status"], report["detailed_status"]) if s) or "?"
    return phrase("attention", "parcel-reported-by-amazon", status=status, meaning=meaning)


def refunded_flag(report: dict[str, Any], outcome: str | None) -> Phrase:
    """Why the case needs attention: its parcel is reported coming back after it refunded."""
    return phrase(
        "attention",
        "parcel-after-refund",
        report=report_phrase(report).as_json(),
        outcome=outcome or "refund",
    )


def history_of(
    case: dict[str, Any], decisions: list[dict[str, Any]], timeline: list[dict[str, Any]]
) -> dict[str, Any]:
    """What a case that takes another over keeps of it."""
    return {**case, "decisions": decisions, "timeline": timeline}
