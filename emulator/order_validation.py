"""Is this a valid Order? The 2026-01-01 model's ``Order`` schema plus what the emulator relies on.

Orders loaded through the control API must be what ``getOrder`` could return, so they are checked
against the official schema (when the models folder is on this machine) and against a few rules
the emulator needs: Amazon's order id format, a marketplace, at least one item, unique item ids,
unique package ids and packages that list only the order's items.
Each problem names its JSON path, e.g. ``$[2].orderItems[0].quantityOrdered``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

from emulator.clock import parse_time
from emulator.orders import ORDER_ID
from emulator.packages import package_problems
from emulator.spec import definition_validator, models_available


@dataclass(frozen=True)
class Problem:
    """One reason an order is refused, and where in the submitted JSON it is."""

    index: int | None
    path: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """Control-API spelling."""
        return {"index": self.index, "path": self.path, "message": self.message}


def json_path(root: str, parts: Iterable[Any]) -> str:
    """``$[2]`` + ``("orderItems", 0, "product")`` -> ``$[2].orderItems[0].product``."""
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class OrderValidator:
    """Checks orders against the model's Order schema (if available) and the emulator's rules."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self.schema: Draft4Validator | None = (
            definition_validator("orders", "Order", models_dir)
            if models_available(models_dir)
            else None
        )

    def problems(self, order: Any, index: int | None = None) -> list[Problem]:
        """Everything wrong with one order; empty when it is valid."""
        root = "$" if index is None else f"$[{index}]"
        if not isinstance(order, dict):
            return [Problem(index, root, "An order must be a JSON object.")]
        found: list[Problem] = []
        if self.schema is not None:
            for error in sorted(
                self.schema.iter_errors(order), key=lambda e: list(e.absolute_path)
            ):
                found.append(Problem(index, json_path(root, error.absolute_path), error.message))
        found.extend(self._emulator_rules(order, index, root))
        return found

    def _emulator_rules(self, order: dict[str, Any], index: int | None, root: str) -> list[Problem]:
        found: list[Problem] = []
        order_id = order.get("orderId")
        if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
            found.append(
                Problem(index, f"{root}.orderId", "orderId must look like 123-1234567-1234567.")
            )
        if self.schema is None:
            # Without the models the schema cannot vouch for the times searchOrders filters on.
            for field in ("createdTime", "lastUpdatedTime"):
                found.extend(_time_problems(order.get(field), index, f"{root}.{field}"))
        channel = order.get("salesChannel")
        if not isinstance(channel, dict) or not isinstance(channel.get("marketplaceId"), str):
            found.append(
                Problem(index, f"{root}.salesChannel.marketplaceId", "marketplaceId is required.")
            )
        found.extend(
            Problem(index, root + where, message) for where, message in package_problems(order)
        )
        items = order.get("orderItems")
        if not isinstance(items, list) or not items:
            found.append(Problem(index, f"{root}.orderItems", "An order needs at least one item."))
            return found
        seen: set[str] = set()
        for position, item in enumerate(items):
            item_id = item.get("orderItemId") if isinstance(item, dict) else None
            where = f"{root}.orderItems[{position}].orderItemId"
            if not isinstance(item_id, str):
                found.append(Problem(index, where, "orderItemId is required."))
            elif item_id in seen:
                found.append(Problem(index, where, f"orderItemId {item_id} appears twice."))
            else:
                seen.add(item_id)
        return found


def _time_problems(value: Any, index: int | None, path: str) -> list[Problem]:
    if not isinstance(value, str):
        return [Problem(index, path, "A date-time is required here.")]
    try:
        parse_time(value)
    except ValueError:
        return [Problem(index, path, f"{value!r} is not a date-time.")]
    return []
