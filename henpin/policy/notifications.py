"""What Henpin tells people, and whom: the `notifications:` section of `policies.yaml`.

Five kinds, each with its own rule: new waiting cases (one digest every N minutes), a case due
within N hours, a deadline passed without an operator's answer, a case flagged "needs
attention", and a feed that stalled (in `attention`, or not finished after N minutes). Each
rule names its targets: Apprise tags given to the URLs in `HENPIN_NOTIFY_URLS` (the settings
hold the URLs, which are secrets; the policy only names them). A rule that is off sends nothing
and emits no Prefect event; a rule with no targets only emits the event.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from henpin.policy._base import PolicyModel, owner_error

_TAG = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _tag(name: str) -> str:
    if not _TAG.fullmatch(name):
        raise owner_error(
            f"{name!r} is not a target name: use letters, digits, '-' or '_' (at most 40), as "
            "written before '=' in HENPIN_NOTIFY_URLS (e.g. operators=mailto://...)"
        )
    return name


Target = Annotated[str, AfterValidator(_tag)]


class NotificationRule(PolicyModel):
    """One kind of notification: on or off, and the targets it goes to."""

    enabled: bool = True
    to: tuple[Target, ...] = ("operators",)


class WaitingDigestRule(NotificationRule):
    """New waiting cases, grouped: at most one message per `every_minutes`."""

    every_minutes: int = Field(default=15, ge=1, le=24 * 60)


class DueSoonRule(NotificationRule):
    """A waiting case whose deadline is less than `within_hours` away."""

    within_hours: float = Field(default=4, gt=0, le=24 * 14)


class FeedStalledRule(NotificationRule):
    """A feed in `attention`, or not finished `after_minutes` after it was stored."""

    after_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)


class NotificationsPolicy(PolicyModel):
    """Every kind of notification. Left out of the file: all on, to the target `operators`."""

    waiting: WaitingDigestRule = WaitingDigestRule()
    due_soon: DueSoonRule = DueSoonRule()
    overdue: NotificationRule = NotificationRule()
    needs_attention: NotificationRule = NotificationRule()
    feed_stalled: FeedStalledRule = FeedStalledRule()

    def targets(self) -> set[str]:
        """Every target name a rule uses (the demo's mail catcher carries them all)."""
        rules = (self.waiting, self.due_soon, self.overdue, self.needs_attention)
        return {t for rule in (*rules, self.feed_stalled) for t in rule.to}
