"""What is new to tell people: waiting cases, cases due soon, deadlines passed without an
answer, cases that need attention, stalled feeds. Each finding is named by its kind and subject
(`case:41:decide`, `feed:7:attention`), which the `notifications` table keeps unique, and
carries ids only (case, order, marketplace, feed): never buyers' names, addresses, e-mail
addresses or words, nor item titles. Read-only: `tasks/notifications.py` records and tells.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, cast, exists, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from henpin.context import store_url
from henpin.domain import CaseState
from henpin.marketplaces import MARKETPLACES
from henpin.outbox import FeedState
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision, Feed, Notification

#: Findings of one kind handled per round; the rest come in the next rounds.
PER_ROUND = 200
#: A deadline passed longer ago than this is history, not news (e.g. on the first round).
OVERDUE_NEWS = timedelta(days=1)
UNFINISHED_FEEDS = (FeedState.PREPARING, FeedState.SENDING, FeedState.SUBMITTED)

EVENTS = {
    "waiting": "henpin.case.waiting",
    "due-soon": "henpin.case.due-soon",
    "overdue": "henpin.case.overdue",
    "needs-attention": "henpin.case.needs-attention",
    "feed-stalled": "henpin.feed.stalled",
}


@dataclass
class Finding:
    """Something to tell, named by its kind and subject (what makes it once)."""

    kind: str
    subject: str
    line: str  # one line of the message: ids and times only
    resource: dict[str, str]
    payload: dict[str, Any]
    related: list[dict[str, str]] = field(default_factory=list)
    case_id: int | None = None
    feed_id: int | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)  # kept on its record


def _not_told(kind: str, subject: ColumnElement[str]) -> ColumnElement[bool]:
    return ~exists(
        select(Notification.id).where(Notification.kind == kind, Notification.subject == subject)
    )


def _told(
    s: Session, kind: str, about: InstrumentedAttribute[int | None], ids: Iterable[int]
) -> set[str]:
    """The subjects already told as `kind` about these cases or feeds."""
    query = select(Notification.subject).where(Notification.kind == kind, about.in_(list(ids)))
    return set(s.scalars(query))


def _case_subject() -> ColumnElement[str]:
    """`case:<id>:<step>`: a case's wait on one question."""
    return literal("case:") + cast(Case.id, String) + literal(":") + Case.waiting_step


def case_finding(
    kind: str, case: Case, step: str, said: str, inbox: str | None, *, key: str | None = None
) -> Finding:
    """A finding about a case's wait on `step`; `key` names it instead of the step."""
    country = (
        MARKETPLACES[case.marketplace_id].country if case.marketplace_id in MARKETPLACES else "?"
    )
    link = f" {inbox.rstrip('/')}/case?case={case.id}" if inbox else ""
    resource = {
        "prefect.resource.id": f"henpin.case.{case.id}",
        "prefect.resource.name": f"case {case.id}",
        "henpin.case-type": case.type,
        "henpin.marketplace": case.marketplace_id,
    }
    related = []
    if case.flow_run_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{case.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    return Finding(
        kind=kind,
        subject=f"case:{case.id}:{key or step}",
        line=f"- case {case.id} · {case.type} · order {case.order_id} · {country}{said}{link}",
        resource=resource,
        payload={
            "case_id": case.id,
            "case_type": case.type,
            "order_id": case.order_id,
            "marketplace_id": case.marketplace_id,
            "step": step,
            "deadline": case.deadline.isoformat() if case.deadline else None,
        },
        related=related,
        case_id=case.id,
    )


def deadline_words(deadline: datetime | None) -> str:
    return f" · deadline {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""


def _waits(
    kind: str, inbox: str | None, *where: ColumnElement[bool], said: str | None = None
) -> list[Finding]:
    """Waiting cases (matching `where`) whose present wait is not told as `kind` yet."""
    with session_scope(store_url()) as s:
        cases = s.scalars(
            select(Case)
            .where(
                Case.state == CaseState.WAITING.value,
                Case.waiting_step.is_not(None),
                _not_told(kind, _case_subject()),
                *where,
            )
            .order_by(Case.deadline)
            .limit(PER_ROUND)
        ).all()
        return [
            case_finding(kind, c, c.waiting_step or "", said or deadline_words(c.deadline), inbox)
            for c in cases
        ]


def new_waiting(now: datetime, inbox: str | None) -> list[Finding]:
    return _waits("waiting", inbox)


def due_soon(now: datetime, within: timedelta, inbox: str | None) -> list[Finding]:
    return _waits("due-soon", inbox, Case.deadline > now, Case.deadline <= now + within)


def overdue(now: datetime, inbox: str | None) -> list[Finding]:
    """Questions the deadline answered (no operator did), and waiting cases past their
    deadline that the deadline has not answered yet."""
    kind = "overdue"
    decided = literal("case:") + cast(Decision.case_id, String) + literal(":") + Decision.step
    with session_scope(store_url()) as s:
        answered = s.execute(
            select(Case, Decision.step, Decision.choice)
            .join(Decision, Decision.case_id == Case.id)
            .where(
                Decision.source == "deadline",
                Decision.at >= now - OVERDUE_NEWS,
                _not_told(kind, decided),
            )
            .order_by(Decision.at)
            .limit(PER_ROUND)
        ).all()
        findings = [
            case_finding(kind, c, step, f" · deadline's answer: {choice}", inbox)
            for c, step, choice in answered
        ]
    seen = {f.subject for f in findings}
    still = _waits(kind, inbox, Case.deadline <= now, said=" · still waiting")
    return findings + [f for f in still if f.subject not in seen]


def needs_attention(now: datetime, inbox: str | None) -> list[Finding]:
    """Cases flagged "needs attention", once per flag (the reason itself is not told: it may
    quote the order)."""
    kind = "needs-attention"
    with session_scope(store_url()) as s:
        flagged = s.scalars(
            select(Case).where(Case.needs_attention.is_not(None)).order_by(Case.id)
        ).all()
        subjects = {
            c.id: hashlib.sha256((c.needs_attention or "").encode()).hexdigest()[:12]
            for c in flagged
        }
        told = _told(s, kind, Notification.case_id, subjects)
        findings = []
        for c in flagged:
            step = c.waiting_step or ""
            finding = case_finding(kind, c, step, "", inbox, key=f"flag-{subjects[c.id]}")
            if finding.subject not in told:
                findings.append(finding)
        return findings[:PER_ROUND]


def stalled_feeds(now: datetime, after: timedelta) -> list[Finding]:
    """Feeds in `attention`, or not finished `after` their creation."""
    kind = "feed-stalled"
    with session_scope(store_url()) as s:
        feeds = s.scalars(
            select(Feed)
            .where(
                (Feed.status == FeedState.ATTENTION.value)
                | (
                    Feed.status.in_([f.value for f in UNFINISHED_FEEDS])
                    & (Feed.created_at <= now - after)
                )
            )
            .order_by(Feed.id)
        ).all()
        why = {
            feed.id: "attention" if feed.status == FeedState.ATTENTION.value else "late"
            for feed in feeds
        }
        told = _told(s, kind, Notification.feed_id, why)
        new = [f for f in feeds if f"feed:{f.id}:{why[f.id]}" not in told][:PER_ROUND]
        return [_feed_finding(kind, feed, why[feed.id], len(feed.actions)) for feed in new]


def _feed_finding(kind: str, feed: Feed, why: str, actions: int) -> Finding:
    country = (
        MARKETPLACES[feed.marketplace_id].country if feed.marketplace_id in MARKETPLACES else "?"
    )
    said = (
        "its report did not add up: a person answers for it (henpin feeds show)"
        if why == "attention"
        else f"not finished since {feed.created_at:%Y-%m-%d %H:%M} UTC (status {feed.status})"
    )
    return Finding(
        kind=kind,
        subject=f"feed:{feed.id}:{why}",
        line=f"- feed {feed.id} · {feed.feed_type} · {country} · {actions} action(s) · {said}",
        resource={
            "prefect.resource.id": f"henpin.feed.{feed.id}",
            "prefect.resource.name": f"feed {feed.id}",
            "henpin.feed-type": feed.feed_type,
            "henpin.marketplace": feed.marketplace_id,
        },
        payload={
            "feed_id": feed.id,
            "amazon_feed_id": feed.amazon_feed_id,
            "feed_type": feed.feed_type,
            "marketplace_id": feed.marketplace_id,
            "status": feed.status,
            "reason": why,
            "actions": actions,
        },
        feed_id=feed.id,
    )
