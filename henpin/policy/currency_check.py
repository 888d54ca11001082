"""`henpin policy check`'s warnings: a value condition without an amount in the currency of a
watched marketplace. Not an error (a seller may mean it), but such a condition cannot be checked
for that marketplace's orders: a cancel request or a return then goes to a person (an unknown
value is never taken as a small one), and a cheap-item or reship shortcut is never taken."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from henpin.marketplaces import MARKETPLACES
from henpin.policy._base import Loc
from henpin.policy.loading import Policy, _key_path, _line_of


def _value_conditions(policy: Policy) -> Iterator[tuple[Loc, Mapping[str, object], str]]:
    """Each value condition: where it is, its amounts by currency, what a missing one means."""
    for index, rule in enumerate(policy.cancel_request.rules):
        if rule.when is not None and rule.when.order_value_over is not None:
            yield (
                ("cancel_request", "rules", index, "when", "order_value_over"),
                rule.when.order_value_over,
                f"cancel requests reaching rule {rule.name} go to a person",
            )
    ret = policy.return_request
    yield (
        ("return_request", "authorize_up_to"),
        ret.authorize_up_to,
        "every return goes to a person",
    )
    yield (
        ("return_request", "keep_item_under"),
        ret.keep_item_under,
        "no item counts as cheap enough to keep",
    )
    yield (
        ("address_error", "reship_cost"),
        policy.address_error.reship_cost,
        "a person weighs every reship",
    )


def value_condition_warnings(
    policy: Policy, path: Path, marketplace_ids: Sequence[str]
) -> list[str]:
    """One line per value condition that has no amount in a watched marketplace's currency."""
    watched: dict[str, list[str]] = {}
    for marketplace_id in marketplace_ids:
        m = MARKETPLACES.get(marketplace_id)
        if m is not None:
            watched.setdefault(m.currency, []).append(m.country)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError):
        root = None
    lines: list[str] = []
    for loc, amounts, meaning in _value_conditions(policy):
        for currency, countries in watched.items():
            if currency in amounts:
                continue
            where = f"{path}:{_line_of(root, loc)}" if root is not None else str(path)
            lines.append(
                f"warning: {where}: {_key_path(loc)}: no {currency} amount, but Henpin watches"
                f" {', '.join(countries)} (sells in {currency}): this condition cannot be checked"
                f" for those orders, so {meaning}; add an amount in {currency}"
            )
    return lines
