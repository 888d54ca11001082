"""Telling people when Henpin needs them: new waiting cases (a digest), cases due soon, deadlines
passed without an answer, cases that need attention, stalled feeds.

A housekeeping step. Each round it looks for what is new of each kind the policy has on
(`policies.yaml`, `notifications:`), records each finding in the case store's `notifications`
table before telling anyone (its unique kind and subject make one process the teller), emits a
Prefect event per finding, and sends one message per kind to that kind's targets. Waiting cases
are recorded (and their events emitted) as they appear, and told in one digest at most every
`every_minutes`. What was recorded is never told again: after a restart, or in the next round.

Messages and events carry ids only (case, order, marketplace, feed): never buyers' names,
addresses, e-mail addresses or words, nor item titles.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, cast, exists, literal, select, update
from sqlalchemy.exc import IntegrityError

from henpin.domain import CaseState
from henpin.marketplaces import MARKETPLACES
from henpin.policy import NotificationRule, NotificationsPolicy
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision, Feed, Notification, utcnow
from tasks.kinds import store_task
from tasks.mail import MailSettings
from tasks.notify import (
    NotifyConfigError,
    Target,
    configured_targets,
    deliver,
    emit_henpin_event,
)
from tasks.outbox import FeedState
from tasks.policy import policy_in_force
from tasks.store import settings, store_url

log = logging.getLogger(__name__)

#: Findings of one kind handled per round; the rest come in the next rounds.
PER_ROUND = 200
#: Cases listed in one message; the rest are counted.
LISTED = 50
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
TITLES = {
    "waiting": "{n} new case(s) wait for an operator",
    "due-soon": "{n} case(s) due soon",
    "overdue": "{n} case(s) went past their deadline without an answer",
    "needs-attention": "{n} case(s) need attention",
    "feed-stalled": "{n} feed(s) to Amazon stalled",
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


# --- what is new ---------------------------------------------------------------------------------


def _not_told(kind: str, subject: ColumnElement[str]) -> ColumnElement[bool]:
    return ~exists(
        select(Notification.id).where(Notification.kind == kind, Notification.subject == subject)
    )


def _case_subject() -> ColumnElement[str]:
    """`case:<id>:<step>`: a case's wait on one question."""
    return literal("case:") + cast(Case.id, String) + literal(":") + Case.waiting_step


def _case_finding(
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


def _deadline_words(deadline: datetime | None) -> str:
    return f" · deadline {deadline:%Y-%m-%d %H:%M} UTC" if deadline else ""


def new_waiting(now: datetime, inbox: str | None) -> list[Finding]:
    kind = "waiting"
    with session_scope(store_url()) as s:
        cases = s.scalars(
            select(Case)
            .where(
                Case.state == CaseState.WAITING.value,
                Case.waiting_step.is_not(None),
                _not_told(kind, _case_subject()),
            )
            .order_by(Case.deadline)
            .limit(PER_ROUND)
        ).all()
        return [
            _case_finding(kind, c, c.waiting_step or "", _deadline_words(c.deadline), inbox)
            for c in cases
        ]


def due_soon(now: datetime, within: timedelta, inbox: str | None) -> list[Finding]:
    kind = "due-soon"
    with session_scope(store_url()) as s:
        cases = s.scalars(
            select(Case)
            .where(
                Case.state == CaseState.WAITING.value,
                Case.waiting_step.is_not(None),
                Case.deadline > now,
                Case.deadline <= now + within,
                _not_told(kind, _case_subject()),
            )
            .order_by(Case.deadline)
            .limit(PER_ROUND)
        ).all()
        return [
            _case_finding(kind, c, c.waiting_step or "", _deadline_words(c.deadline), inbox)
            for c in cases
        ]


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
            _case_finding(kind, c, step, f" · deadline's answer: {choice}", inbox)
            for c, step, choice in answered
        ]
        still = s.scalars(
            select(Case)
            .where(
                Case.state == CaseState.WAITING.value,
                Case.waiting_step.is_not(None),
                Case.deadline <= now,
                _not_told(kind, _case_subject()),
            )
            .limit(PER_ROUND)
        ).all()
        seen = {f.subject for f in findings}
        findings += [
            f
            for c in still
            if (
                f := _case_finding(kind, c, c.waiting_step or "", " · still waiting", inbox)
            ).subject
            not in seen
        ]
        return findings


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
        told = set(
            s.scalars(
                select(Notification.subject).where(
                    Notification.kind == kind,
                    Notification.case_id.in_(list(subjects)),
                )
            )
        )
        findings = []
        for c in flagged:
            step = c.waiting_step or ""
            finding = _case_finding(kind, c, step, "", inbox, key=f"flag-{subjects[c.id]}")
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
        told = set(
            s.scalars(
                select(Notification.subject).where(
                    Notification.kind == kind,
                    Notification.feed_id.in_(list(why)),
                )
            )
        )
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


# --- recording and telling -----------------------------------------------------------------------


def _claim(finding: Finding, status: str) -> int | None:
    """Record the finding before telling anyone; None when another round already has."""
    try:
        with session_scope(store_url()) as s:
            row = Notification(
                kind=finding.kind,
                subject=finding.subject,
                case_id=finding.case_id,
                feed_id=finding.feed_id,
                status=status,
                detail={
                    **finding.payload,
                    **(
                        {"event": EVENTS[finding.kind], "event_id": str(finding.event_id)}
                        if finding.kind in EVENTS
                        else {}
                    ),
                },
            )
            s.add(row)
            s.flush()
            return row.id
    except IntegrityError:
        return None


def _emit(finding: Finding) -> None:
    try:
        emit_henpin_event(
            EVENTS[finding.kind],
            finding.resource,
            finding.payload,
            related=finding.related,
            event_id=finding.event_id,
        )
    except Exception as exc:  # Prefect unreachable: the message still goes; the event is lost
        log.warning(
            "Prefect event %s for %s not emitted: %s", EVENTS[finding.kind], finding.subject, exc
        )


def _message(kind: str, lines: Sequence[str]) -> tuple[str, str]:
    title = "Henpin: " + TITLES[kind].format(n=len(lines))
    listed = list(lines[:LISTED])
    if len(lines) > LISTED:
        listed.append(f"... and {len(lines) - LISTED} more: see the inbox")
    return title, "\n".join(listed)


def _tell(
    kind: str, rows: list[int], lines: Sequence[str], rule: NotificationRule, targets: list[Target]
) -> None:
    """Send one message for `rows` and record how it went on each of them."""
    title, body = _message(kind, lines)
    results = deliver(targets, rule.to, title, body) if rule.to else []
    if rule.to and not results:
        log.warning(
            "%s: no HENPIN_NOTIFY_URLS entry is named %s; only the Prefect event went out",
            kind,
            " or ".join(rule.to),
        )
    status = (
        "no-target"
        if not results
        else "sent"
        if all(r.endswith(" sent") for r in results)
        else "failed"
    )
    with session_scope(store_url()) as s:
        for row in s.scalars(select(Notification).where(Notification.id.in_(rows))):
            row.status = status
            row.sent_at = utcnow()
            row.detail = {**row.detail, "to": list(rule.to), "results": results}


def tell_kind(
    kind: str, findings: list[Finding], rule: NotificationRule, targets: list[Target]
) -> list[int]:
    """Record, emit and send the findings of one kind (one message for all of them)."""
    rows, lines = [], []
    for finding in findings:
        row = _claim(finding, "sending")
        if row is None:
            continue
        _emit(finding)
        rows.append(row)
        lines.append(finding.line)
    if rows:
        _tell(kind, rows, lines, rule, targets)
    return rows


def record_waiting(findings: list[Finding]) -> list[int]:
    """Record new waiting cases (and emit their events) until the next digest."""
    rows = []
    for finding in findings:
        row = _claim(finding, "waiting")
        if row is not None:
            _emit(finding)
            rows.append(row)
    return rows


def send_digest_if_due(
    now: datetime, policy: NotificationsPolicy, targets: list[Target]
) -> int | None:
    """One message with every waiting case recorded since the last digest and still waiting,
    when the last digest is at least `every_minutes` old. Returns the digest's row id."""
    every = timedelta(minutes=policy.waiting.every_minutes)
    with session_scope(store_url()) as s:
        last = s.scalar(
            select(Notification.created_at)
            .where(Notification.kind == "digest")
            .order_by(Notification.created_at.desc())
            .limit(1)
        )
        if last is not None and last > now - every:
            return None
        pending = s.execute(
            select(Notification.id, Notification.subject, Notification.case_id).where(
                Notification.kind == "waiting", Notification.status == "waiting"
            )
        ).all()
    if not pending:
        return None
    slot = int(now.timestamp() // every.total_seconds())
    digest = Finding("digest", f"digest:{policy.waiting.every_minutes}m:{slot}", "", {}, {})
    digest_row = _claim(digest, "sending")
    if digest_row is None:
        return None  # another process sends this slot's digest
    ids = [row_id for row_id, _, _ in pending]
    inbox = settings().inbox_url
    with session_scope(store_url()) as s:
        # Conditional: a row another digest took meanwhile stays with it.
        s.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == "waiting")
            .values(status="grouped")
        )
        steps = {case_id: subject.rsplit(":", 1)[1] for _, subject, case_id in pending}
        cases = s.scalars(select(Case).where(Case.id.in_(list(steps)))).all()
        still = [
            c for c in cases if c.state == CaseState.WAITING.value and c.waiting_step == steps[c.id]
        ]
        lines = [
            _case_finding("waiting", c, steps[c.id], _deadline_words(c.deadline), inbox).line
            for c in sorted(still, key=lambda c: (c.deadline or now, c.id))
        ]
        row = s.get(Notification, digest_row)
        assert row is not None
        row.detail = {**row.detail, "cases": [c.id for c in still], "recorded": len(ids)}
    if not lines:
        with session_scope(store_url()) as s:
            row = s.get(Notification, digest_row)
            assert row is not None
            row.status = "nothing-waiting"
        return digest_row
    _tell("waiting", [digest_row], lines, policy.waiting, targets)
    return digest_row


@store_task("send-notifications", fresh=True)
def send_notifications(now: datetime | None = None) -> list[int]:
    """Tell people what is new: waiting cases (digest), due soon, overdue, needs attention,
    stalled feeds. Returns the notification records made this round."""
    now = now or datetime.now(UTC)
    policy = policy_in_force().notifications
    try:
        targets = configured_targets(settings(), MailSettings(), policy.targets())
    except NotifyConfigError as exc:  # nothing recorded: all is told once the setting is fixed
        log.error("notifications wait: %s", exc)
        return []
    inbox = settings().inbox_url
    told: list[int] = []
    if policy.waiting.enabled:
        told += record_waiting(new_waiting(now, inbox))
        if (digest := send_digest_if_due(now, policy, targets)) is not None:
            told.append(digest)
    if policy.due_soon.enabled:
        within = timedelta(hours=policy.due_soon.within_hours)
        told += tell_kind("due-soon", due_soon(now, within, inbox), policy.due_soon, targets)
    if policy.overdue.enabled:
        told += tell_kind("overdue", overdue(now, inbox), policy.overdue, targets)
    if policy.needs_attention.enabled:
        found = needs_attention(now, inbox)
        told += tell_kind("needs-attention", found, policy.needs_attention, targets)
    if policy.feed_stalled.enabled:
        after = timedelta(minutes=policy.feed_stalled.after_minutes)
        told += tell_kind("feed-stalled", stalled_feeds(now, after), policy.feed_stalled, targets)
    return told
