"""Merging a partial Order into a stored one (the control API's PATCH).

JSON Merge Patch (RFC 7386): objects merge key by key, ``null`` removes a key, any other value
replaces. One exception: ``orderItems`` merges item by item on ``orderItemId`` (an item not yet in
the order is appended), so a patch can touch one item without repeating the others.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchInvalid(ValueError):
    """The patch cannot be merged (e.g. an orderItems entry without orderItemId)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge of ``patch`` into a copy of ``target``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def merge_order(order: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The order with the patch merged in; ``orderItems`` merged by ``orderItemId``."""
    items_patch = patch.get("orderItems")
    rest = {key: value for key, value in patch.items() if key != "orderItems"}
    merged: dict[str, Any] = merge_patch(order, rest)
    if items_patch is None:
        return merged
    if not isinstance(items_patch, list):
        raise PatchInvalid("orderItems must be a list of partial items with orderItemId.")
    items = [copy.deepcopy(item) for item in order.get("orderItems", [])]
    positions = {item.get("orderItemId"): index for index, item in enumerate(items)}
    for index, item_patch in enumerate(items_patch):
        if not isinstance(item_patch, dict) or not isinstance(item_patch.get("orderItemId"), str):
            raise PatchInvalid(f"orderItems[{index}] needs an orderItemId to merge on.")
        position = positions.get(item_patch["orderItemId"])
        if position is None:
            positions[item_patch["orderItemId"]] = len(items)
            items.append(merge_patch({}, item_patch))
        else:
            items[position] = merge_patch(items[position], item_patch)
    merged["orderItems"] = items
    return merged
