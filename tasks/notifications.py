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

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from henpin.context import policy_in_force, settings, store_url
from henpin.domain import CaseState
from henpin.findings import (
    EVENTS,
    Finding,
    case_finding,
    deadline_words,
    due_soon,
    needs_attention,
    new_waiting,
    overdue,
    stalled_feeds,
)
from henpin.notify import NotifyConfigError, Target, configured_targets, deliver, emit_henpin_event
from henpin.outbox.mail import MailSettings
from henpin.policy import NotificationRule, NotificationsPolicy
from henpin.store.db import session_scope
from henpin.store.models import Case, Notification, utcnow
from tasks.kinds import store_task

log = logging.getLogger(__name__)

#: Cases listed in one message; the rest are counted.
LISTED = 50
TITLES = {
    "waiting": "{n} new case(s) wait for an operator",
    "due-soon": "{n} case(s) due soon",
    "overdue": "{n} case(s) went past their deadline without an answer",
    "needs-attention": "{n} case(s) need attention",
    "feed-stalled": "{n} feed(s) to Amazon stalled",
}


def _claim(finding: Finding, status: str, *, at: datetime | None = None) -> int | None:
    """Record the finding before telling anyone; None when another round already has. `at`
    dates the row by the round's clock (the digest's pace is measured from it); otherwise the
    database's."""
    try:
        with session_scope(store_url()) as s:
            row = Notification(
                kind=finding.kind,
                subject=finding.subject,
                case_id=finding.case_id,
                feed_id=finding.feed_id,
                status=status,
                **({"created_at": at} if at is not None else {}),
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
    digest_row = _claim(digest, "sending", at=now)
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
            case_finding("waiting", c, steps[c.id], deadline_words(c.deadline), inbox).line
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
