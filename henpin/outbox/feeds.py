"""Feeds: pending actions gathered into one feed per type and marketplace, sent,
polled for Amazon's report, reconciled after a crash, settled by a person when unreadable."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from henpin.amazon import (
    AmazonAdapter,
    AmazonAuthError,
    AmazonError,
    AmazonRequestRejected,
    AmazonThrottled,
    AmazonUnavailable,
    FeedProcessingStatus,
    FeedStatus,
)
from henpin.amazon.feed_xml import (
    FeedBuildError,
    FeedPayload,
    ProcessingReport,
    ProcessingReportError,
    build_feed,
    parse_payload,
    parse_processing_report,
)
from henpin.domain import (
    ActionResult,
    ActionStatus,
    ClosesCase,
    FeedType,
)
from henpin.outbox.mail import (
    MailSettings,
)
from henpin.outbox.one_by_one import _uncertain_after_crash, send_messages_and_emails
from henpin.outbox.refund_limits import hold_back_overpaying_refunds
from henpin.outbox.states import (
    CLOCK_SKEW,
    DEFAULT_MAX_MESSAGES,
    KIND_FEED_TYPES,
    MAX_SUBMISSIONS,
    RESUBMIT_CODES,
    RESUBMIT_PREFIX,
    SETTLE,
    FeedState,
    _fail,
    _feed_tag,
    _flag_feed_cases,
    _flag_rejected,
)
from henpin.policy.reasons import phrase
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Feed, utcnow

log = logging.getLogger(__name__)


def _lock_group(session: Session, feed_type: str, marketplace_id: str) -> None:
    """Serialise claims for one (feed type, marketplace) until this transaction ends."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        digest = hashlib.sha256(f"henpin-outbox:{feed_type}:{marketplace_id}".encode()).digest()
        session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": int.from_bytes(digest[:8], "big", signed=True)},
        )
    elif dialect == "sqlite":
        # A write first makes this transaction hold SQLite's one write lock from the start,
        # so the reads below cannot go stale before our writes.
        session.execute(text("UPDATE feeds SET status = status WHERE 0"))


def _groups_with_work(store_url: str) -> list[tuple[str, str]]:
    with session_scope(store_url) as s:
        pending = s.execute(
            select(Action.feed_type, Action.marketplace_id)
            .where(
                Action.status == ActionStatus.PENDING.value,
                Action.kind.in_([k.value for k in KIND_FEED_TYPES]),
            )
            .distinct()
        ).all()
        preparing = s.execute(
            select(Feed.feed_type, Feed.marketplace_id)
            .where(Feed.status == FeedState.PREPARING.value)
            .distinct()
        ).all()
    return sorted({(t, m) for t, m in [*pending, *preparing]})


def _feed_to_send(
    store_url: str,
    feed_type: str,
    marketplace_id: str,
    seller_id: str,
    max_messages: int,
    *,
    only: Collection[int] | None = None,
) -> int | None:
    """The group's feed that may be sent now: its `preparing` one, or a new one holding the
    oldest pending actions (of `only`, when given). None while a feed is `sending` (reconcile
    first) or nothing waits."""
    with session_scope(store_url) as s:
        _lock_group(s, feed_type, marketplace_id)
        unresolved = s.scalars(
            select(Feed)
            .where(
                Feed.feed_type == feed_type,
                Feed.marketplace_id == marketplace_id,
                Feed.status.in_([FeedState.PREPARING.value, FeedState.SENDING.value]),
            )
            .order_by(Feed.id)
        ).all()
        if any(f.status == FeedState.SENDING.value for f in unresolved):
            return None
        if unresolved:
            return unresolved[0].id
        waiting = select(Action).where(
            Action.status == ActionStatus.PENDING.value,
            Action.feed_type == feed_type,
            Action.marketplace_id == marketplace_id,
        )
        if only is not None:
            waiting = waiting.where(Action.id.in_(list(only)))
        actions = s.scalars(waiting.order_by(Action.id).limit(max_messages)).all()
        messages: list[tuple[int, FeedPayload]] = []
        batch: list[Action] = []
        for action in actions:
            try:
                payload = parse_payload(FeedType(feed_type), action.payload)
                build_feed(FeedType(feed_type), seller_id, [(1, payload)])
            except (FeedBuildError, ValueError) as exc:
                _fail(action, "HENPIN_INVALID_ACTION", f"Henpin could not write this action: {exc}")
                continue
            batch.append(action)
            messages.append((len(batch), payload))
        if not batch:
            return None
        feed = Feed(
            feed_type=feed_type,
            marketplace_id=marketplace_id,
            status=FeedState.PREPARING.value,
            document=build_feed(FeedType(feed_type), seller_id, messages),
        )
        s.add(feed)
        s.flush()
        for message_id, action in enumerate(batch, start=1):
            action.status = ActionStatus.SUBMITTED.value
            action.feed_id = feed.id
            action.message_id = message_id
        return feed.id


def _set_feed(store_url: str, feed_id: int, from_state: FeedState, **values: object) -> bool:
    """Move a feed on only if it is still in `from_state` (someone else may have moved it)."""
    with session_scope(store_url) as s:
        result = s.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.status == from_state.value)
            .values(updated_at=utcnow(), **values)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _send_feed(store_url: str, adapter: AmazonAdapter, feed_id: int) -> bool:
    """Send one `preparing` feed: upload, mark `sending`, createFeed, record the feedId.

    Returns True once Amazon's feedId is recorded. Throttling or a transient failure before
    createFeed leaves it `preparing`; a lost createFeed answer leaves it `sending` for reconcile.
    """
    with session_scope(store_url) as s:
        feed = s.get(Feed, feed_id)
        if feed is None or feed.status != FeedState.PREPARING.value:
            return False
        feed_type, marketplace_id, document = feed.feed_type, feed.marketplace_id, feed.document
    try:
        document_id = adapter.upload_feed_document(marketplace_id, document)
    except AmazonAuthError:
        raise
    except AmazonRequestRejected as exc:
        _reject_feed(store_url, feed_id, exc, FeedState.PREPARING)
        return False
    if not _set_feed(store_url, feed_id, FeedState.PREPARING, status=FeedState.SENDING.value):
        return False  # another sender took it
    try:
        amazon_feed_id = adapter.create_feed(FeedType(feed_type), marketplace_id, document_id)
    except AmazonUnavailable as exc:
        if not exc.may_have_applied:
            _set_feed(store_url, feed_id, FeedState.SENDING, status=FeedState.PREPARING.value)
        raise
    except (AmazonThrottled, AmazonAuthError):
        _set_feed(store_url, feed_id, FeedState.SENDING, status=FeedState.PREPARING.value)
        raise
    except AmazonRequestRejected as exc:
        _reject_feed(store_url, feed_id, exc, FeedState.SENDING)
        return False
    if not _set_feed(
        store_url,
        feed_id,
        FeedState.SENDING,
        status=FeedState.SUBMITTED.value,
        amazon_feed_id=amazon_feed_id,
    ):
        log.error(
            "feed %s: created at Amazon as %s but no longer 'sending'", feed_id, amazon_feed_id
        )
    return True


def _reject_feed(
    store_url: str, feed_id: int, exc: AmazonRequestRejected, from_state: FeedState
) -> None:
    """Amazon refused the feed outright: it was not created, and repeating will not help."""
    with session_scope(store_url) as s:
        moved = s.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.status == from_state.value)
            .values(status=FeedState.REJECTED.value, report=str(exc), updated_at=utcnow())
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return
        for action in s.scalars(
            select(Action).where(
                Action.feed_id == feed_id, Action.status == ActionStatus.SUBMITTED.value
            )
        ):
            _fail(action, f"HTTP_{exc.status}_{exc.code or 'REJECTED'}", str(exc))
            _flag_rejected(s, action)


def send_pending(
    store_url: str,
    adapter: AmazonAdapter,
    *,
    seller_id: str | None = None,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    max_feeds_per_group: int = 15,
    mail_settings: MailSettings | None = None,
) -> list[int]:
    """Send pending actions as one feed per (feed type, marketplace); return the Henpin ids of
    the feeds Amazon accepted in this call. Then send pending buyer messages and e-mails, one
    by one (`send_messages_and_emails`).

    Each feed is stored with its document and linked to its actions in one transaction before
    Amazon is called. Throttled or unavailable: the feed stays `preparing` and is sent (the same
    feed, never a copy) next time. More pending actions than `max_messages` make more feeds,
    up to `max_feeds_per_group` per call; refunds whose orders the Finances quota left unread
    wait for the next call instead of making more feeds now.

    Each feed's header carries the seller's merchant token in its marketplace's region (the
    adapter's `merchant_token`), or `seller_id` when given (one single-region account). A region
    whose login Amazon refuses is skipped; the other regions' feeds still go.
    """
    sent = _send_feeds(store_url, adapter, seller_id, max_messages, max_feeds_per_group)
    send_messages_and_emails(store_url, adapter, mail_settings=mail_settings)
    return sent


def _send_feeds(
    store_url: str,
    adapter: AmazonAdapter,
    seller_id: str | None,
    max_messages: int,
    max_feeds_per_group: int,
) -> list[int]:
    sent: list[int] = []
    for feed_type, marketplace_id in _groups_with_work(store_url):
        merchant = seller_id or adapter.merchant_token(marketplace_id)
        for _ in range(max_feeds_per_group):
            if adapter.quota_wait("createFeed", marketplace_id) > adapter.retry.max_wait_s:
                break  # no createFeed for a while: let the batch grow instead of freezing it
            cleared: list[int] | None = None
            last = False
            if feed_type == FeedType.PAYMENT_ADJUSTMENT.value:
                # Never refund twice: Amazon's refunds are read right before the feed, and only
                # the refunds checked now go in it.
                check = hold_back_overpaying_refunds(
                    store_url, adapter, marketplace_id, max_messages
                )
                if check is None:
                    break
                cleared = check.cleared
                # The Finances quota (0.5 a second, burst 30) left some orders unread: they go
                # together in the next round's feed, not in a feed each as a read frees up now
                # (createFeed allows one call per two minutes, burst 15, for every feed type).
                last = check.unread > 0
            feed_id = _feed_to_send(
                store_url, feed_type, marketplace_id, merchant, max_messages, only=cleared
            )
            if feed_id is None:
                break
            try:
                if not _send_feed(store_url, adapter, feed_id):
                    break
            except AmazonAuthError as exc:
                # This region's login is refused (recorded for `henpin status`); the feed stays
                # `preparing` and other regions go on.
                log.error("feed %s (%s, %s) not sent: %s", feed_id, feed_type, marketplace_id, exc)
                break
            except AmazonError as exc:
                log.warning(
                    "feed %s (%s, %s) not sent yet: %s", feed_id, feed_type, marketplace_id, exc
                )
                break
            sent.append(feed_id)
            if last:
                break
    return sent


def poll_submitted(store_url: str, adapter: AmazonAdapter) -> list[int]:
    """Ask Amazon about each submitted feed; for each finished one record every action's
    outcome from the processing report. Returns the ids of the actions that finished."""
    with session_scope(store_url) as s:
        feeds = s.execute(
            select(Feed.id, Feed.amazon_feed_id, Feed.marketplace_id)
            .where(Feed.status == FeedState.SUBMITTED.value)
            .order_by(Feed.id)
        ).all()
    finished: list[int] = []
    for feed_id, amazon_feed_id, marketplace_id in feeds:
        if not amazon_feed_id:
            continue
        try:
            status = adapter.get_feed(amazon_feed_id, marketplace_id=marketplace_id)
            if not status.finished:
                continue
            report = None
            if status.result_feed_document_id:
                report = adapter.get_feed_report(
                    status.result_feed_document_id, marketplace_id=marketplace_id
                )
        except AmazonAuthError as exc:
            log.error("feed %s: its region's login is refused: %s", feed_id, exc)
            continue  # the other regions' feeds are still polled
        except AmazonRequestRejected as exc:
            # E.g. 404: Amazon no longer knows the feed. Its actions' outcome is unknown.
            log.error(
                "feed %s (%s): Amazon refuses to report on it: %s", feed_id, amazon_feed_id, exc
            )
            if _set_feed(
                store_url,
                feed_id,
                FeedState.SUBMITTED,
                status=FeedState.ATTENTION.value,
                report=str(exc),
            ):
                with session_scope(store_url) as s:
                    _flag_feed_cases(
                        s, feed_id, phrase("attention", "feed-report-refused", error=str(exc))
                    )
            continue
        except AmazonError as exc:
            log.warning("feed %s (%s): no result yet: %s", feed_id, amazon_feed_id, exc)
            continue
        finished.extend(_record_outcome(store_url, feed_id, status, report))
    return finished


FATAL_CAUTION = (
    " Amazon says some messages of a FATAL feed may still have been applied: "
    "re-read the order before acting again."
)


def report_gap(report: ProcessingReport, sent: int) -> str | None:
    """Why Amazon's report does not account for every message sent, or None when it does.

    A message without its own Result counts as applied only when the ProcessingSummary adds
    up: MessagesProcessed equals the messages sent, and its error and warning counts match the
    messages the Results list (MessagesSuccessful is not checked: how Amazon counts a message
    with only warnings there is not documented)."""
    if not report.has_summary:
        return "the processing report has no ProcessingSummary (MessagesProcessed)"
    if report.messages_processed != sent:
        return (
            f"the processing report counts {report.messages_processed} messages processed; "
            f"Henpin sent {sent}"
        )
    errors = sum(1 for r in report.results.values() if not r.ok) + len(report.document_errors)
    warnings = len(report.warned)
    if report.messages_with_error != errors:
        return (
            f"the processing report counts {report.messages_with_error} messages with an error "
            f"but lists {errors}"
        )
    if report.messages_with_warning != warnings:
        return (
            f"the processing report counts {report.messages_with_warning} messages with a "
            f"warning but lists {warnings}"
        )
    return None


def _outcomes(
    status: FeedStatus, report_text: str | None, message_ids: Sequence[int], sent: int
) -> tuple[FeedState, dict[int, ActionResult], str | None]:
    """The feed's final state, each message's result, and why the feed needs a person (None
    when it does not), from Amazon's status and report. In `attention` only the messages with
    their own Error result have an outcome; the others stay unknown."""
    if status.processing_status is FeedProcessingStatus.CANCELLED:
        result = ActionResult(
            ok=False,
            code="FEED_CANCELLED",
            description="The feed was cancelled at Amazon before it was processed; nothing "
            "was applied.",
        )
        return FeedState.CANCELLED, {m: result for m in message_ids}, None
    report: ProcessingReport | None = None
    if report_text is not None:
        report = parse_processing_report(report_text)  # ProcessingReportError: caller decides
    if status.processing_status is FeedProcessingStatus.DONE:
        if report is None:
            raise ProcessingReportError("Amazon finished the feed without a result document", "")
        gap = report_gap(report, sent)
        if gap is not None:
            failed = {m: r for m in message_ids if (r := report.results.get(m)) and not r.ok}
            return FeedState.ATTENTION, failed, gap
        return FeedState.DONE, {m: report.outcome(m) for m in message_ids}, None
    # FATAL: Amazon could not process the feed as a whole.
    whole = ActionResult(
        ok=False,
        code="FEED_FATAL",
        description="Amazon could not process the feed (FATAL)." + FATAL_CAUTION,
    )
    if report is not None and report.document_errors:
        first = report.document_errors[0]
        if first.code in RESUBMIT_CODES:  # Amazon's own word: nothing applied, send it again
            whole = first
        else:
            whole = whole.model_copy(
                update={
                    "description": f"Amazon could not process the feed (FATAL): "
                    f"{first.description}{FATAL_CAUTION}"
                }
            )
    outcomes = {}
    for m in message_ids:
        own = report.results.get(m) if report is not None else None
        outcomes[m] = own if own is not None and not own.ok else whole
    return FeedState.FATAL, outcomes, None


def _record_outcome(
    store_url: str, feed_id: int, status: FeedStatus, report_text: str | None
) -> list[int]:
    with session_scope(store_url) as s:
        actions = s.scalars(
            select(Action).where(
                Action.feed_id == feed_id, Action.status == ActionStatus.SUBMITTED.value
            )
        ).all()
        sent = len(s.scalars(select(Action.id).where(Action.feed_id == feed_id)).all())
        try:
            state, outcomes, gap = _outcomes(
                status, report_text, [a.message_id or 0 for a in actions], sent
            )
        except ProcessingReportError as exc:
            log.error("feed %s: processing report unreadable: %s", feed_id, exc)
            moved = s.execute(
                update(Feed)
                .where(Feed.id == feed_id, Feed.status == FeedState.SUBMITTED.value)
                .values(status=FeedState.ATTENTION.value, report=report_text or str(exc))
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                _flag_feed_cases(
                    s, feed_id, phrase("attention", "feed-report-unreadable", error=str(exc))
                )
            return []  # the actions stay `submitted`: their outcome is unknown, not failed
        moved = s.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.status == FeedState.SUBMITTED.value)
            .values(status=state.value, report=report_text, updated_at=utcnow())
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return []  # another poller recorded it first
        amazon_feed_id = s.scalar(select(Feed.amazon_feed_id).where(Feed.id == feed_id))
        finished = []
        for action in actions:
            if (action.message_id or 0) not in outcomes:
                continue  # not accounted for by the report: stays `submitted` (attention)
            result = _resubmitted_or_final(action, outcomes[action.message_id or 0])
            if result is None:
                continue
            action.status = (ActionStatus.DONE if result.ok else ActionStatus.FAILED).value
            action.result_code = result.code[:60] if result.code else None
            action.result_message = result.description
            finished.append(action.id)
            if result.ok:
                _close_its_case(s, action, amazon_feed_id)
            else:
                _flag_rejected(s, action)
        if gap is not None:
            log.error("feed %s: Amazon's report does not add up: %s", feed_id, gap)
            _flag_feed_cases(s, feed_id, phrase("attention", "feed-report-gap", gap=gap))
        return finished


def _close_its_case(session: Session, action: Action, amazon_feed_id: str | None) -> None:
    """Amazon confirmed the action: its case ends as its flow declared when it queued it
    (`closes_case`), in this transaction, so a finished feed closes all its cases at once. The
    case's run, still waiting for Amazon's result, is left to finish (`run_to_finish`: the
    housekeeper resumes it; it finds the case closed and ends)."""
    if action.closes_case is None or action.case_id is None:
        return
    closes = ClosesCase.model_validate(action.closes_case)
    case = session.get(Case, action.case_id)
    if case is None:
        return
    if case.close(closes.outcome.value, closes.said(amazon_feed_id), action=action.key):
        case.run_to_finish = case.flow_run_id is not None


def _resubmitted_or_final(action: Action, result: ActionResult) -> ActionResult | None:
    """None after putting the action back in the queue, when Amazon's report says it was not
    applied and is to be sent again (an internal error at Amazon), at most `MAX_SUBMISSIONS`
    times in all; else the result to record."""
    if result.ok or result.code not in RESUBMIT_CODES:
        return result
    earlier = 0
    code = action.result_code or ""
    if code.startswith(RESUBMIT_PREFIX) and code[len(RESUBMIT_PREFIX) :].isdigit():
        earlier = int(code[len(RESUBMIT_PREFIX) :])
    if earlier + 1 >= MAX_SUBMISSIONS:
        return result.model_copy(
            update={
                "description": f"{result.description} (sent {MAX_SUBMISSIONS} times; Henpin "
                "stopped trying: send it again by hand if it is still wanted)"
            }
        )
    action.status = ActionStatus.PENDING.value
    action.feed_id = None
    action.message_id = None
    action.result_code = f"{RESUBMIT_PREFIX}{earlier + 1}"
    action.result_message = (
        f"Amazon did not apply it ({result.code}: {result.description}); Henpin sends it "
        f"again (submission {earlier + 2} of at most {MAX_SUBMISSIONS})."
    )
    log.warning("action %s: Amazon's internal error %s; sent again", action.id, result.code)
    return None


class FeedAnswer(StrEnum):
    """What a person says about the actions of a feed whose report did not account for them."""

    SEND_AGAIN = "send-again"  # not applied: back to `pending`, in the next feed
    DONE = "done"  # Amazon applied them (checked in Seller Central): done
    NOT_DONE = "not-done"  # not applied, and not to be sent again: failed


def settle_attention(
    store_url: str, feed_id: int, answer: FeedAnswer, *, by: str
) -> list[tuple[int | None, str]] | None:
    """A person's answer for the actions a feed in `attention` left unresolved. The first answer
    wins: the feed moves to `settled` only if it is still in `attention` (None otherwise, and
    nothing changed). Returns the (case id, action key) pairs answered for."""
    note = {
        FeedAnswer.SEND_AGAIN: f"{by} had it sent again (the report did not account for it).",
        FeedAnswer.DONE: f"{by} confirmed Amazon applied it (the report did not account for it).",
        FeedAnswer.NOT_DONE: f"{by} confirmed Amazon did not apply it; it is not sent again.",
    }[answer]
    with session_scope(store_url) as s:
        moved = s.execute(
            update(Feed)
            .where(Feed.id == feed_id, Feed.status == FeedState.ATTENTION.value)
            .values(status=FeedState.SETTLED.value, updated_at=utcnow())
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return None
        actions = s.scalars(
            select(Action)
            .where(Action.feed_id == feed_id, Action.status == ActionStatus.SUBMITTED.value)
            .order_by(Action.id)
        ).all()
        amazon_feed_id = s.scalar(select(Feed.amazon_feed_id).where(Feed.id == feed_id))
        answered = []
        for action in actions:
            answered.append((action.case_id, action.key))
            action.result_message = note
            if answer is FeedAnswer.SEND_AGAIN:
                action.status = ActionStatus.PENDING.value
                action.feed_id = None
                action.message_id = None
                action.result_code = None
            elif answer is FeedAnswer.DONE:
                action.status = ActionStatus.DONE.value
                action.result_code = "HENPIN_CONFIRMED_DONE"
                _close_its_case(s, action, amazon_feed_id)
            else:
                action.status = ActionStatus.FAILED.value
                action.result_code = "HENPIN_CONFIRMED_NOT_DONE"
        tag = _feed_tag(feed_id)
        for case_id in {c for c, _ in answered if c is not None}:
            case = s.get(Case, case_id)
            if case is not None and tag in (case.needs_attention or ""):
                case.flag_attention(None)
        return answered


def reconcile(
    store_url: str,
    adapter: AmazonAdapter,
    *,
    settle: timedelta = SETTLE,
    now: datetime | None = None,
) -> list[int]:
    """Resolve feeds left `sending` (a crash or a lost createFeed answer): adopt the feed Amazon
    has, or send ours again if Amazon has none. Never resends without looking.

    Messages and e-mails left SENDING cannot be looked up at Amazon or the mail server: they
    become UNCERTAIN, for a person to settle (`settle_uncertain`).

    Only feeds untouched for `settle` are resolved, so no createFeed attempt is still under
    way. Returns the Henpin ids of the feeds resolved (adopted or resent).
    """
    now = now or datetime.now(UTC)
    _uncertain_after_crash(store_url, now, settle)
    with session_scope(store_url) as s:
        stuck = s.execute(
            select(Feed.id, Feed.feed_type, Feed.marketplace_id, Feed.created_at, Feed.updated_at)
            .where(Feed.status == FeedState.SENDING.value, Feed.updated_at <= now - settle)
            .order_by(Feed.id)
        ).all()
    resolved: list[int] = []
    for feed_id, feed_type, marketplace_id, created_at, updated_at in stuck:
        try:
            at_amazon = adapter.list_feeds(
                [feed_type], created_since=created_at - CLOCK_SKEW, marketplace_ids=[marketplace_id]
            )
        except AmazonError as exc:  # a refused login too: the other regions go on
            log.warning("feed %s: cannot look at Amazon's feeds yet: %s", feed_id, exc)
            continue
        adopted = _adopt_or_release(store_url, feed_id, updated_at, at_amazon)
        if adopted is None:
            continue
        if adopted:
            resolved.append(feed_id)
            continue
        try:
            if _send_feed(store_url, adapter, feed_id):
                resolved.append(feed_id)
        except (AmazonThrottled, AmazonUnavailable) as exc:
            log.warning("feed %s: resend postponed: %s", feed_id, exc)
    return resolved


def _adopt_or_release(
    store_url: str, feed_id: int, seen_updated_at: datetime, at_amazon: list[FeedStatus]
) -> bool | None:
    """True: adopted the Amazon feed that is ours. False: Amazon has none, back to `preparing`.
    None: the feed moved meanwhile (another process resolved it)."""
    with session_scope(store_url) as s:
        feed = s.get(Feed, feed_id)
        if feed is None:
            return None
        _lock_group(s, feed.feed_type, feed.marketplace_id)
        s.refresh(feed)
        if feed.status != FeedState.SENDING.value or feed.updated_at != seen_updated_at:
            return None
        ids = [f.feed_id for f in at_amazon]
        known = set(s.scalars(select(Feed.amazon_feed_id).where(Feed.amazon_feed_id.in_(ids))))
        ours = sorted(
            (
                f
                for f in at_amazon
                if f.feed_id not in known
                and f.feed_type == feed.feed_type
                and (not f.marketplace_ids or feed.marketplace_id in f.marketplace_ids)
                and f.created_time >= feed.created_at - CLOCK_SKEW
            ),
            key=lambda f: f.created_time,
        )
        if len(ours) > 1:
            log.error(
                "feed %s: Amazon has %d feeds Henpin does not know (%s); adopting the first. "
                "The others may have applied the same actions again: check them in Seller Central.",
                feed_id,
                len(ours),
                ", ".join(f.feed_id for f in ours),
            )
        feed.updated_at = utcnow()
        if ours:
            feed.amazon_feed_id = ours[0].feed_id
            feed.status = FeedState.SUBMITTED.value
            log.info("feed %s: adopted Amazon feed %s", feed_id, ours[0].feed_id)
            return True
        feed.status = FeedState.PREPARING.value
        log.info("feed %s: not at Amazon; sending it again", feed_id)
        return False
