"""Withdrawing a case's actions that were stored but not sent: its flow run was cancelled.

A withdrawn action is `failed` with the code `HENPIN_WITHDRAWN` and the reason in its message. No
status of its own: everything that reads the outbox already takes `failed` as finished and not
done at Amazon (the flows, the refund limits, a parcel case's "refunded?"), and the outbox's
status values seen by `henpin ... --json` stay the ones they were. Only `pending` actions are
withdrawn: one in a feed (`submitted`) may be at Amazon already and keeps its course.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from henpin.domain import ActionStatus
from henpin.outbox.feeds import _lock_group
from henpin.store.models import Action, utcnow

#: `Action.result_code` of an action withdrawn before it was sent.
WITHDRAWN = "HENPIN_WITHDRAWN"


def withdraw_pending(session: Session, case_id: int, why: str) -> list[str]:
    """Withdraw the case's actions still waiting to be sent, in the caller's transaction;
    the keys of those this call withdrew (none that another process withdrew or sent first).

    Each (feed type, marketplace) is locked as the sender locks it while it fills a feed, and
    each action moves only if still `pending`, so an action is either put in a feed or
    withdrawn, never both. (On SQLite the caller's transaction must already have written, so
    that it holds the one write lock from its start: the sender's reads cannot interleave.)"""
    pending = (Action.case_id == case_id, Action.status == ActionStatus.PENDING.value)
    groups = session.execute(
        select(Action.feed_type, Action.marketplace_id).where(*pending).distinct()
    ).all()
    withdrawn: list[str] = []
    for feed_type, marketplace_id in sorted(groups):
        _lock_group(session, feed_type, marketplace_id)
        actions = session.execute(
            select(Action.id, Action.key).where(
                *pending, Action.feed_type == feed_type, Action.marketplace_id == marketplace_id
            )
        ).all()
        for action_id, key in actions:
            moved = session.execute(
                update(Action)
                .where(Action.id == action_id, Action.status == ActionStatus.PENDING.value)
                .values(
                    status=ActionStatus.FAILED.value,
                    result_code=WITHDRAWN,
                    result_message=why,
                    updated_at=utcnow(),
                )
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                withdrawn.append(key)
    return withdrawn
