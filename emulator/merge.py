"""Merging a partial Order into a stored one (the control API's PATCH).

JSON Merge Patch (RFC 7386): objects merge key by key, ``null`` removes a key, any other value
replaces. Two exceptions, so a patch can touch one entry without repeating the others:
``orderItems`` merge entry by entry on ``orderItemId`` and ``packages`` on ``packageReferenceId``
(an entry not yet in the order is appended; ``"packages": null`` removes them all).
"""

from __future__ import annotations

import copy
from typing import Any

#: Order lists merged entry by entry, and the key identifying an entry.
KEYED_LISTS = {"orderItems": "orderItemId", "packages": "packageReferenceId"}


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
    """The order with the patch merged in; orderItems and packages merged by their ids."""
    rest = {key: value for key, value in patch.items() if key not in KEYED_LISTS}
    merged: dict[str, Any] = merge_patch(order, rest)
    for name, key in KEYED_LISTS.items():
        if name not in patch:
            continue
        if patch[name] is None:
            merged.pop(name, None)
            continue
        merged[name] = _merge_keyed(order.get(name, []), patch[name], name, key)
    return merged


def _merge_keyed(
    entries: list[dict[str, Any]], entries_patch: Any, name: str, key: str
) -> list[dict[str, Any]]:
    if not isinstance(entries_patch, list):
        raise PatchInvalid(f"{name} must be a list of partial entries with {key}.")
    merged = [copy.deepcopy(entry) for entry in entries]
    positions = {entry.get(key): index for index, entry in enumerate(merged)}
    for index, entry_patch in enumerate(entries_patch):
        if not isinstance(entry_patch, dict) or not isinstance(entry_patch.get(key), str):
            raise PatchInvalid(f"{name}[{index}] needs a {key} to merge on.")
        position = positions.get(entry_patch[key])
        if position is None:
            positions[entry_patch[key]] = len(merged)
            merged.append(merge_patch({}, entry_patch))
        else:
            merged[position] = merge_patch(merged[position], entry_patch)
    return merged
