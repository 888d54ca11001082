"""Parcels of merchant-fulfilled orders: the Orders API 2026-01-01 ``OrderPackage``.

An order's ``packages`` (returned with ``includedData=PACKAGES``) carry ``packageStatus``: a
``status`` from a fixed enumeration and a free-text ``detailedStatus`` whose possible values the
model lists in its description. Henpin routes a parcel that did not reach the buyer on the pair:

============================  ====================  =========================================
Case                          ``status``            ``detailedStatus``
============================  ====================  =========================================
Refused by the buyer          ``UNDELIVERABLE``     ``REJECTED_BY_BUYER``
Unclaimed, going back         ``UNDELIVERABLE``     ``RETURNING_TO_SELLER`` (then
                                                    ``RETURNED_TO_SELLER`` once it is back)
Address problem               ``UNDELIVERABLE``     ``UNDELIVERABLE`` ("cannot be delivered due
                                                    to address or access issues")
============================  ====================  =========================================

The model has no separate "unclaimed" or "bad address" value: ``RETURNING_TO_SELLER`` without an
earlier ``REJECTED_BY_BUYER`` is the unclaimed case, and ``UNDELIVERABLE`` covers access problems
too (a locked gate), so an address-error case starts by asking the buyer. ``detailedStatus`` is a
plain string in the schema, so the emulator accepts values outside the list (clients must too).
"""

from __future__ import annotations

from typing import Any

PACKAGE_STATUSES = ("PENDING", "IN_TRANSIT", "SHIPPED", "DELIVERED", "CANCELLED", "UNDELIVERABLE")
#: The ``detailedStatus`` values the 2026-01-01 model documents, with its own descriptions.
DETAILED_STATUSES: dict[str, str] = {
    "PENDING_SCHEDULE": "Package awaiting pickup scheduling",
    "PENDING_PICK_UP": "Package ready for carrier collection from seller",
    "PENDING_DROP_OFF": "Package awaiting seller delivery to carrier",
    "LABEL_CANCELLED": "Shipping label canceled by seller",
    "PICKED_UP": "Package collected by carrier from seller location",
    "DROPPED_OFF": "Package delivered to carrier by seller",
    "AT_ORIGIN_FC": "Package at originating fulfillment center",
    "AT_DESTINATION_FC": "Package at destination fulfillment center",
    "DELIVERED": "Package successfully delivered to recipient",
    "REJECTED_BY_BUYER": "Package refused by intended recipient",
    "UNDELIVERABLE": "Package cannot be delivered due to address or access issues",
    "RETURNING_TO_SELLER": "Package in transit back to seller",
    "RETURNED_TO_SELLER": "Package successfully returned to seller",
    "LOST": "Package location unknown or confirmed lost",
    "OUT_FOR_DELIVERY": "Package on delivery vehicle for final delivery",
    "DAMAGED": "Package damaged during transit",
}
#: Henpin's routing of a parcel that did not reach the buyer (see the table above).
REFUSED_BY_BUYER = frozenset({"REJECTED_BY_BUYER"})
UNCLAIMED_RETURNING = frozenset({"RETURNING_TO_SELLER", "RETURNED_TO_SELLER"})
ADDRESS_PROBLEM = frozenset({"UNDELIVERABLE"})


def package_problems(order: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON path suffix, message) for package rules the schema cannot express.

    Each package has a unique ``packageReferenceId`` and lists only items of its order.
    """
    packages = order.get("packages")
    if packages is None:
        return []
    if not isinstance(packages, list):
        return [(".packages", "packages must be a list.")]
    item_ids = {
        item.get("orderItemId") for item in order.get("orderItems", []) if isinstance(item, dict)
    }
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, package in enumerate(packages):
        if not isinstance(package, dict):
            continue  # the schema reports it
        reference = package.get("packageReferenceId")
        if isinstance(reference, str):
            if reference in seen:
                found.append(
                    (
                        f".packages[{index}].packageReferenceId",
                        f"packageReferenceId {reference} appears twice.",
                    )
                )
            seen.add(reference)
        for position, line in enumerate(package.get("packageItems") or []):
            item_id = line.get("orderItemId") if isinstance(line, dict) else None
            if isinstance(item_id, str) and item_id not in item_ids:
                found.append(
                    (
                        f".packages[{index}].packageItems[{position}].orderItemId",
                        f"The order has no item {item_id}.",
                    )
                )
    return found
