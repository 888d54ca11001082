"""Feeds whose processing report did not account for their actions, and a person's answer
for them (the inbox's case page and `henpin feeds ...`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from henpin.accounts import AuditAction, audit, find_operator
from henpin.app.cases import note_on_case
from henpin.store.db import session_scope
from henpin.store.models import Action, Feed


class FeedSettleCode(StrEnum):
    SENT_AGAIN = "feed-sent-again"  # its actions go out again in the next feed
    MARKED_DONE = "feed-marked-done"
    MARKED_NOT_DONE = "feed-marked-not-done"
    NOT_IN_ATTENTION = "feed-not-in-attention"  # someone answered first, or it never needed one
    NO_FEED = "no-feed"
    NOT_ALLOWED = "not-allowed"  # viewers (and inactive operators) do not answer


class FeedView(BaseModel):
    """A feed as a person answering for it sees it: Amazon's raw report and what it carried
    (`henpin feeds show --json`)."""

    id: int
    amazon_feed_id: str | None
    feed_type: str
    marketplace_id: str
    status: str
    report: str | None
    actions: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def _feed_view(feed: Feed) -> FeedView:
    return FeedView(
        id=feed.id,
        amazon_feed_id=feed.amazon_feed_id,
        feed_type=feed.feed_type,
        marketplace_id=feed.marketplace_id,
        status=feed.status,
        report=feed.report,
        actions=[
            {
                "key": a.key,
                "case_id": a.case_id,
                "kind": a.kind,
                "message_id": a.message_id,
                "status": a.status,
                "result_code": a.result_code,
            }
            for a in feed.actions
        ],
        created_at=feed.created_at,
        updated_at=feed.updated_at,
    )


def show_feed(store_url: str, feed_id: int) -> FeedView | None:
    """One feed with its raw processing report and its actions."""
    with session_scope(store_url) as s:
        feed = s.get(Feed, feed_id)
        return _feed_view(feed) if feed is not None else None


def feeds_in_attention(store_url: str, case_id: int | None = None) -> list[FeedView]:
    """Feeds waiting for a person (their report did not account for every action); only those
    carrying an action of `case_id` when given."""
    from henpin.outbox import FeedState  # the outbox owns its feeds' states

    with session_scope(store_url) as s:
        q = select(Feed).where(Feed.status == FeedState.ATTENTION.value)
        if case_id is not None:
            q = q.where(Feed.id.in_(select(Action.feed_id).where(Action.case_id == case_id)))
        return [_feed_view(f) for f in s.scalars(q.order_by(Feed.id))]


def settle_feed(
    store_url: str, feed_id: int, answer: str, *, operator: str, where: str = ""
) -> FeedSettleCode:
    """A person's answer for the actions a feed in `attention` left unresolved, after reading
    Amazon's raw report: send them again, treat them as done, or as not done. The first answer
    wins; it goes on each case's timeline and in the audit log. `answer` is a
    `henpin.outbox.FeedAnswer` value (send-again, done, not-done)."""
    from henpin.outbox import FeedAnswer, settle_attention  # the outbox owns its feeds

    chosen = FeedAnswer(answer)
    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        return FeedSettleCode.NOT_ALLOWED
    with session_scope(store_url) as s:
        feed = s.get(Feed, feed_id)
        amazon_feed_id = feed.amazon_feed_id if feed is not None else None
        if feed is None:
            return FeedSettleCode.NO_FEED
    answered = settle_attention(store_url, feed_id, chosen, by=operator)
    if answered is None:
        return FeedSettleCode.NOT_IN_ATTENTION
    code, words = {
        FeedAnswer.SEND_AGAIN: (FeedSettleCode.SENT_AGAIN, "had it sent again"),
        FeedAnswer.DONE: (FeedSettleCode.MARKED_DONE, "confirmed Amazon applied it"),
        FeedAnswer.NOT_DONE: (FeedSettleCode.MARKED_NOT_DONE, "confirmed Amazon did not apply it"),
    }[chosen]
    label = f"Amazon feed {amazon_feed_id}" if amazon_feed_id else f"feed {feed_id}"
    keys_by_case: dict[int, list[str]] = {}
    for case_id, key in answered:
        if case_id is not None:
            keys_by_case.setdefault(case_id, []).append(key)
    for case_id, keys in sorted(keys_by_case.items()):
        note_on_case(
            store_url,
            case_id,
            operator,
            AuditAction.FEED_SETTLED,
            f"{operator} read the report of {label}, which did not account for this case's "
            f"action, and {words}",
            where=where,
            detail={"feed_id": feed_id, "answer": chosen.value, "actions": keys},
        )
    if not keys_by_case:
        audit(
            store_url,
            operator,
            AuditAction.FEED_SETTLED,
            target=f"feed {feed_id}",
            where=where,
            detail={"answer": chosen.value, "actions": [k for _, k in answered]},
        )
    return code
