"""What an operator does in the inbox beyond reading: find cases, claim them, decide one or many.

Built on `henpin.service.decide` (one recorded winner per question) and the case store. Each
result carries a machine-readable `code` and its parameters, so the inbox words it in the
operator's language; `message` keeps the service's English words for logs and the CLI.
Every claim, release and decision is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, func, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from henpin.accounts import AuditAction, audit, find_operator
from henpin.decisions import (
    ClaimedByOther,
    DecisionRefused,
    Door,
    DoorClosed,
    admit,
    audit_decision,
    find_decision,
)
from henpin.domain import CaseState
from henpin.questions import Question, check_answer
from henpin.service import CaseSummary, _summary, deadline_first, decide
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event, Feed

#: The doors where an operator decides under their own name.
PERSON_DOORS = (Door.INBOX, Door.CLI)
OPEN_STATES = (CaseState.WAITING.value, CaseState.ACTING.value, CaseState.OPEN.value)


# --- finding cases -------------------------------------------------------------------------------


class SortOrder(StrEnum):
    DEADLINE = "deadline"  # waiting cases by deadline (overdue first), then the newest
    NEWEST = "newest"
    OLDEST = "oldest"
    MARKETPLACE = "marketplace"
    CASE_TYPE = "type"


@dataclass(frozen=True)
class CaseFilter:
    """Which cases the inbox lists. Empty tuples mean "any"."""

    types: tuple[str, ...] = ()
    marketplaces: tuple[str, ...] = ()
    states: tuple[str, ...] = OPEN_STATES
    due_within: timedelta | None = None  # waiting cases whose deadline is at most this far off
    claimed_by: str | None = None  # None: anyone; "": nobody; else that operator
    needs_attention: bool = False  # only the cases flagged "needs attention"
    #: Part of an order id, a SKU or a buyer's name (any case), e.g. "113-12", "KETTLE", "tanaka"
    search: str = ""
    created_after: datetime | None = None  # only cases opened after this moment


@dataclass(frozen=True)
class CasePage:
    cases: list[CaseSummary]
    total: int  # how many cases match, of which `cases` is one page


def _search(term: str, dialect: str) -> Any:
    """Cases whose order id, one of whose SKUs, or whose buyer's name holds `term` (any case).

    SKUs and the buyer's name live in the order snapshot (JSON), read with each database's own
    JSON functions: SQLite's json_each/json_extract, PostgreSQL's json_array_elements/->>."""
    pattern = "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if dialect == "postgresql":
        in_json = text(
            "lower(cases.order_snapshot->>'buyer_name') LIKE :henpin_search ESCAPE '\\' "
            "OR EXISTS (SELECT 1 FROM json_array_elements("
            "CASE WHEN json_typeof(cases.order_snapshot->'items') = 'array' "
            "THEN cases.order_snapshot->'items' ELSE '[]'::json END) AS item "
            "WHERE lower(item->>'sku') LIKE :henpin_search ESCAPE '\\')"
        )
    else:
        in_json = text(
            "lower(json_extract(cases.order_snapshot, '$.buyer_name')) LIKE :henpin_search "
            "ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_each(cases.order_snapshot, '$.items') "
            "AS item WHERE lower(json_extract(item.value, '$.sku')) LIKE :henpin_search "
            "ESCAPE '\\')"
        )
    return or_(
        func.lower(Case.order_id).like(pattern, escape="\\"),
        in_json.bindparams(henpin_search=pattern),
    )


def _filtered(q: Select[Any], f: CaseFilter, now: datetime, dialect: str = "sqlite") -> Select[Any]:
    if f.types:
        q = q.where(Case.type.in_(f.types))
    if f.marketplaces:
        q = q.where(Case.marketplace_id.in_(f.marketplaces))
    if f.states:
        q = q.where(Case.state.in_(f.states))
    if f.due_within is not None:
        q = q.where(
            Case.state == CaseState.WAITING,
            Case.deadline.is_not(None),
            Case.deadline <= now + f.due_within,
        )
    if f.needs_attention:
        q = q.where(Case.needs_attention.is_not(None))
    if f.claimed_by == "":
        q = q.where(Case.claimed_by.is_(None))
    elif f.claimed_by is not None:
        q = q.where(Case.claimed_by == f.claimed_by)
    if f.created_after is not None:
        q = q.where(Case.created_at > f.created_after)
    if f.search.strip():
        q = q.where(_search(f.search.strip(), dialect))
    return q


def find_cases(
    store_url: str,
    f: CaseFilter,
    *,
    sort: SortOrder = SortOrder.DEADLINE,
    now: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CasePage:
    """One page of the cases the filter matches, in the chosen order, and how many match."""
    now = now or datetime.now(UTC)
    orders: dict[SortOrder, list[Any]] = {
        SortOrder.DEADLINE: deadline_first(),
        SortOrder.NEWEST: [Case.id.desc()],
        SortOrder.OLDEST: [Case.id],
        SortOrder.MARKETPLACE: [Case.marketplace_id, Case.id.desc()],
        SortOrder.CASE_TYPE: [Case.type, Case.id.desc()],
    }
    order = orders[sort]
    with session_scope(store_url) as s:
        dialect = s.get_bind().dialect.name
        total = s.scalar(_filtered(select(func.count()).select_from(Case), f, now, dialect)) or 0
        rows = s.scalars(
            _filtered(select(Case), f, now, dialect).order_by(*order).limit(limit).offset(offset)
        )
        return CasePage([CaseSummary(**_summary(c)) for c in rows], int(total))


@dataclass(frozen=True)
class Facets:
    """The values the inbox's filters offer: what the store holds right now."""

    types: list[str]
    marketplaces: list[str]
    claimers: list[str]


def facets(store_url: str) -> Facets:
    with session_scope(store_url) as s:
        return Facets(
            types=sorted(s.scalars(select(Case.type).distinct()).all()),
            marketplaces=sorted(s.scalars(select(Case.marketplace_id).distinct()).all()),
            claimers=sorted(
                n
                for n in s.scalars(
                    select(Case.claimed_by)
                    .where(Case.claimed_by.is_not(None), Case.state.in_(OPEN_STATES))
                    .distinct()
                ).all()
                if n
            ),
        )


# --- claiming -----------------------------------------------------------------------------------


class ClaimCode(StrEnum):
    CLAIMED = "claimed"
    TAKEN_OVER = "taken-over"
    HELD_BY_OTHER = "held-by-other"  # someone else has it; take over to claim anyway
    RELEASED = "released"
    NOT_YOURS = "not-yours"  # only the holder (or an admin) releases a claim
    NOT_CLAIMED = "not-claimed"
    CLOSED = "closed"
    NO_CASE = "no-case"
    NOT_ALLOWED = "not-allowed"  # viewers neither claim nor release


@dataclass(frozen=True)
class ClaimResult:
    case_id: int
    code: ClaimCode
    claimed_by: str | None  # who holds the case now
    previous: str | None = None  # who held it before a take-over or release

    @property
    def ok(self) -> bool:
        return self.code in (ClaimCode.CLAIMED, ClaimCode.TAKEN_OVER, ClaimCode.RELEASED)


def _note(
    store_url: str,
    case_id: int,
    operator: str,
    action: AuditAction,
    message: str,
    *,
    where: str,
    detail: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """What an operator did to a case: a line on its timeline and one in the audit log."""
    with session_scope(store_url) as s:
        s.add(
            Event(
                case_id=case_id,
                kind=action.value,
                message=message,
                data={"operator": operator, **detail},
            )
        )
    audit(
        store_url,
        operator,
        action,
        target=f"case {case_id}",
        where=where,
        detail={k: v for k, v in detail.items() if v is not None},
        now=now,
    )


def claim(
    store_url: str,
    case_id: int,
    operator: str,
    *,
    take_over: bool = False,
    where: str = "",
    now: datetime | None = None,
) -> ClaimResult:
    """Mark the case as being worked on by `operator`, so others see who has it.

    One conditional UPDATE decides between two operators clicking at once: it only succeeds when
    the case is unclaimed or already theirs (or when taking over on purpose).
    """
    now = now or datetime.now(UTC)
    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        return ClaimResult(case_id, ClaimCode.NOT_ALLOWED, None)
    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return ClaimResult(case_id, ClaimCode.NO_CASE, None)
        if c.state == CaseState.CLOSED:
            return ClaimResult(case_id, ClaimCode.CLOSED, c.claimed_by)
        previous = c.claimed_by
        if previous == operator:
            return ClaimResult(case_id, ClaimCode.CLAIMED, operator)
        free = or_(Case.claimed_by.is_(None), Case.claimed_by == operator)
        cond = or_(free, Case.claimed_by == previous) if take_over else free
        done = s.execute(
            update(Case)
            .where(Case.id == case_id, Case.state != CaseState.CLOSED, cond)
            .values(claimed_by=operator, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        if not getattr(done, "rowcount", 0):
            holder = s.scalar(select(Case.claimed_by).where(Case.id == case_id))
            return ClaimResult(case_id, ClaimCode.HELD_BY_OTHER, holder)
    code = ClaimCode.TAKEN_OVER if previous else ClaimCode.CLAIMED
    text = (
        f"{operator} took the case over from {previous}"
        if previous
        else f"{operator} claimed the case"
    )
    _note(
        store_url,
        case_id,
        operator,
        AuditAction.CLAIM,
        text,
        where=where,
        detail={"previous": previous},
        now=now,
    )
    return ClaimResult(case_id, code, operator, previous)


def release(store_url: str, case_id: int, operator: str, *, where: str = "") -> ClaimResult:
    """Give the case back to everyone. The holder releases; an admin may release anyone's."""
    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        return ClaimResult(case_id, ClaimCode.NOT_ALLOWED, None)
    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return ClaimResult(case_id, ClaimCode.NO_CASE, None)
        holder = c.claimed_by
        if holder is None:
            return ClaimResult(case_id, ClaimCode.NOT_CLAIMED, None)
        if holder != operator and not who.is_admin:
            return ClaimResult(case_id, ClaimCode.NOT_YOURS, holder)
        done = s.execute(
            update(Case)
            .where(Case.id == case_id, Case.claimed_by == holder)
            .values(claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        if not getattr(done, "rowcount", 0):  # someone took it over meanwhile
            now_holder = s.scalar(select(Case.claimed_by).where(Case.id == case_id))
            return ClaimResult(case_id, ClaimCode.NOT_YOURS, now_holder)
    text = f"{operator} released the case" + (f" (held by {holder})" if holder != operator else "")
    _note(
        store_url,
        case_id,
        operator,
        AuditAction.RELEASE,
        text,
        where=where,
        detail={"holder": holder},
    )
    return ClaimResult(case_id, ClaimCode.RELEASED, None, holder)


# --- deciding ----------------------------------------------------------------------------------


# --- messages Henpin could not tell were sent ------------------------------------------------------


class SettleCode(StrEnum):
    MARKED_SENT = "marked-sent"  # the action is done; nothing is sent
    MARKED_NOT_SENT = "marked-not-sent"  # back to pending: the next outbox round sends it
    NOT_UNCERTAIN = "not-uncertain"  # someone settled it already, or it never was uncertain
    NOT_ALLOWED = "not-allowed"  # viewers (and inactive operators) do not settle


def settle_message(
    store_url: str,
    case_id: int,
    key: str,
    *,
    was_sent: bool,
    operator: str,
    where: str = "",
) -> SettleCode:
    """A person's answer about a buyer message or e-mail of this case that Henpin could not tell
    was sent (the outbox left it UNCERTAIN and never resends it alone). Sent: the action is done.
    Not sent: it goes back to the outbox and out on the next round. The first answer wins; each
    is on the case's timeline and in the audit log."""
    from henpin.outbox import settle_uncertain  # the outbox owns its actions' states

    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        return SettleCode.NOT_ALLOWED
    with session_scope(store_url) as s:
        action = s.scalar(select(Action).where(Action.key == key, Action.case_id == case_id))
        kind = action.kind if action else None
    if kind is None or not settle_uncertain(store_url, key, was_sent=was_sent, by=operator):
        return SettleCode.NOT_UNCERTAIN
    code = SettleCode.MARKED_SENT if was_sent else SettleCode.MARKED_NOT_SENT
    text = (
        f"{operator} confirmed the {kind} was sent"
        if was_sent
        else f"{operator} confirmed the {kind} was not sent; it goes out on the next round"
    )
    _note(
        store_url,
        case_id,
        operator,
        AuditAction.MESSAGE_SETTLED,
        text,
        where=where,
        detail={"action": key, "was_sent": was_sent},
    )
    return code


# --- feeds whose report did not account for their actions ---------------------------------------


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
        _note(
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


class DecisionCode(StrEnum):
    RESUMED = "resumed"  # recorded; the flow run continued at once
    RECORDED = "recorded"  # recorded; the runner's sweep resumes the run within a minute
    ALREADY_DECIDED = "already-decided"  # someone (or the deadline) answered first
    NOT_WAITING = "not-waiting"
    MOVED_ON = "moved-on"  # the case asks another question than the one the operator saw
    NOT_A_CHOICE = "not-a-choice"
    INVALID_ANSWER = "invalid-answer"  # a note or field is missing or out of bounds
    NO_CASE = "no-case"
    NOT_ALLOWED = "not-allowed"  # viewers and deactivated operators do not decide
    CLAIMED_BY_OTHER = "claimed-by-other"  # not sent: confirm to decide over their claim
    WRONG_TYPE = "wrong-type"  # bulk: not the case type the batch is for
    STORE_ERROR = "store-error"


ACCEPTED = (DecisionCode.RESUMED, DecisionCode.RECORDED)


@dataclass(frozen=True)
class DecisionOutcome:
    """What came of one decision: a code for the operator's language, and the English words."""

    case_id: int
    code: DecisionCode
    choice: str
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED

    @property
    def level(self) -> str:
        """How the inbox shows it: success, warning (someone else's answer stands) or error."""
        if self.accepted:
            return "success"
        if self.code in (DecisionCode.ALREADY_DECIDED, DecisionCode.CLAIMED_BY_OTHER):
            return "warning"
        return "error"


def _why_refused(
    store_url: str, case_id: int, choice: str, seen_step: str | None, refused: DecisionRefused
) -> tuple[DecisionCode, dict[str, Any]]:
    """Name the reason `decide` refused, by looking at the case as it is now."""
    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return DecisionCode.NO_CASE, {}
        if c.state != CaseState.WAITING or not c.waiting_step:
            return DecisionCode.NOT_WAITING, {"state": c.state, "outcome": c.outcome}
        if seen_step is not None and seen_step != c.waiting_step:
            return DecisionCode.MOVED_ON, {"step": c.waiting_step, "seen": seen_step}
        if choice not in c.choices:
            return DecisionCode.NOT_A_CHOICE, {"choices": list(c.choices)}
        return DecisionCode.INVALID_ANSWER, {"detail": str(refused)}


def decide_as(
    store_url: str,
    case_id: int,
    *,
    choice: str,
    operator: str,
    note: str = "",
    fields: dict[str, Any] | None = None,
    seen_step: str | None = None,
    over_claim: bool = False,
    where: str = "",
    source: str = Door.INBOX,
) -> DecisionOutcome:
    """Decide a case as an operator, from the inbox (signed in) or the command line (`source`
    "cli"): the door's checks (`henpin.decisions.admit`: an active operator or admin; a claim by
    someone else needs `over_claim`), then `henpin.service.decide` (the answer's check, one
    recorded winner, resume), and the audit log records it, taken or refused."""
    door = Door(source)
    if door not in PERSON_DOORS:  # the Prefect UI and the deadline have doors of their own
        raise ValueError(f"decide_as is the door of named operators, not of {door}")
    outcome = _decide(
        store_url,
        case_id,
        choice=choice,
        operator=operator,
        note=note,
        fields=fields,
        seen_step=seen_step,
        over_claim=over_claim,
        door=door,
    )
    if outcome.code != DecisionCode.STORE_ERROR:
        detail = {"choice": choice, "result": outcome.code.value, "step": seen_step or None}
        detail["claimed_by"] = outcome.params.get("claimed_by")
        audit_decision(
            store_url,
            case_id,
            actor=operator,
            accepted=outcome.accepted,
            where=where or source,
            detail=detail,
        )
    return outcome


def _decide(
    store_url: str,
    case_id: int,
    *,
    choice: str,
    operator: str,
    note: str,
    fields: dict[str, Any] | None,
    seen_step: str | None,
    over_claim: bool,
    door: Door,
) -> DecisionOutcome:
    try:
        try:
            admitted = admit(
                store_url, case_id, door=door, operator=operator, over_claim=over_claim
            )
        except DoorClosed as closed:
            params = {"role": closed.role}
            return DecisionOutcome(case_id, DecisionCode.NOT_ALLOWED, choice, params, str(closed))
        except ClaimedByOther as claimed:
            params = {"claimed_by": claimed.holder}
            code = DecisionCode.CLAIMED_BY_OTHER
            return DecisionOutcome(case_id, code, choice, params, str(claimed))
        with session_scope(store_url) as s:
            step = s.scalar(select(Case.waiting_step).where(Case.id == case_id))
        params = {"claimed_by": admitted.over_claim_of} if admitted.over_claim_of else {}
        try:
            result = decide(
                store_url,
                case_id,
                choice=choice,
                note=note,
                operator=admitted.operator,
                source=door,
                fields=fields,
                seen_step=seen_step,
            )
        except DecisionRefused as refused:
            code, why = _why_refused(store_url, case_id, choice, seen_step, refused)
            return DecisionOutcome(case_id, code, choice, {**params, **why}, str(refused))
        if not result.accepted:
            winner = find_decision(store_url, case_id, seen_step or step or "")
            at = winner.at if winner else None
            by_deadline = winner is not None and winner.source == Door.DEADLINE
            return DecisionOutcome(
                case_id,
                DecisionCode.ALREADY_DECIDED,
                choice,
                {
                    **params,
                    "who": result.operator,
                    "winner": result.choice,
                    "at": at,
                    "by_deadline": by_deadline,
                },
                result.message,
            )
        code = DecisionCode.RESUMED if result.resumed else DecisionCode.RECORDED
        return DecisionOutcome(case_id, code, choice, params, result.message)
    except SQLAlchemyError as exc:
        return DecisionOutcome(
            case_id, DecisionCode.STORE_ERROR, choice, {"error": type(exc).__name__}
        )


# --- the money of each option -----------------------------------------------------------------


def case_options(
    details: dict[str, Any], recommendation: dict[str, Any], question: dict[str, Any]
) -> list[dict[str, Any]]:
    """The money of each way out, where the case type computes it: a list of dicts with at least
    `choice` (and usually `label` and money values), from the case's details, its
    recommendation or its waiting question, the first that has one."""
    for source in (details, recommendation, question):
        options = source.get("options") if isinstance(source, dict) else None
        if isinstance(options, list) and options and all(isinstance(o, dict) for o in options):
            return [o for o in options if o.get("choice")]
    return []


def option_money(options: list[dict[str, Any]], choice: str) -> dict[str, Any]:
    """The money values (everything but choice and label) of one option, {} when unknown."""
    for o in options:
        if o.get("choice") == choice:
            return {k: v for k, v in o.items() if k not in ("choice", "label")}
    return {}


# --- many cases at once ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkLine:
    """One case of a bulk decision, as previewed: what the choice will do, or why it cannot."""

    case_id: int
    order_id: str
    marketplace_id: str
    case_type: str
    step: str | None  # the question the preview saw (a case that moves on is then refused)
    recommended: str | None
    deadline: datetime | None
    order_value: dict[str, Any] | None
    money: dict[str, Any]  # the money of the chosen option, when the case type computes it
    claimed_by: str | None  # someone else's claim, shown before confirming
    problem: DecisionCode | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.problem is None


def preview_bulk(
    store_url: str,
    case_ids: Sequence[int],
    *,
    case_type: str,
    choice: str,
    note: str,
    operator: str,
) -> list[BulkLine]:
    """What deciding `choice` on each case would do, without deciding anything."""
    lines = []
    with session_scope(store_url) as s:
        found = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(list(case_ids))))}
        for case_id in case_ids:
            c = found.get(case_id)
            if c is None:
                lines.append(
                    BulkLine(
                        case_id,
                        "?",
                        "?",
                        "?",
                        None,
                        None,
                        None,
                        None,
                        {},
                        None,
                        DecisionCode.NO_CASE,
                    )
                )
                continue
            question = c.question or {}
            problem, detail = None, ""
            if c.type != case_type:
                problem = DecisionCode.WRONG_TYPE
            elif c.state != CaseState.WAITING or not c.waiting_step:
                problem = DecisionCode.NOT_WAITING
            elif choice not in c.choices:
                problem = DecisionCode.NOT_A_CHOICE
            elif question:
                detail = check_answer(Question.model_validate(question), choice, note, {}) or ""
                problem = DecisionCode.INVALID_ANSWER if detail else None
            options = case_options(c.details or {}, c.recommendation or {}, question)
            holder = c.claimed_by if c.claimed_by != operator else None
            lines.append(
                BulkLine(
                    case_id=c.id,
                    order_id=c.order_id,
                    marketplace_id=c.marketplace_id,
                    case_type=c.type,
                    step=c.waiting_step,
                    recommended=question.get("recommended")
                    or (c.recommendation or {}).get("action"),
                    deadline=c.deadline if c.state == CaseState.WAITING else None,
                    order_value=(c.order_snapshot or {}).get("value"),
                    money=option_money(options, choice),
                    claimed_by=holder,
                    problem=problem,
                    detail=detail,
                )
            )
    return lines


def decide_bulk(
    store_url: str,
    lines: Sequence[BulkLine],
    *,
    choice: str,
    note: str,
    operator: str,
    over_claims: bool = False,
    where: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> list[DecisionOutcome]:
    """Decide the previewed cases one after another (never in parallel: SQLite has one writer,
    and each decision resumes its own flow run); one outcome per case, in preview order.
    `progress(done, total)` is told after each case (the inbox shows a progress bar)."""
    outcomes: list[DecisionOutcome] = []
    for line in lines:
        if progress is not None:
            progress(len(outcomes), len(lines))
        if not line.ready:
            assert line.problem is not None
            outcomes.append(
                DecisionOutcome(line.case_id, line.problem, choice, {"detail": line.detail})
            )
            continue
        outcomes.append(
            decide_as(
                store_url,
                line.case_id,
                choice=choice,
                operator=operator,
                note=note,
                seen_step=line.step,
                over_claim=over_claims,
                where=where,
            )
        )
    if progress is not None:
        progress(len(outcomes), len(lines))
    return outcomes


__all__ = [
    "BulkLine",
    "CaseFilter",
    "CasePage",
    "ClaimCode",
    "ClaimResult",
    "DecisionCode",
    "DecisionOutcome",
    "Facets",
    "SettleCode",
    "SortOrder",
    "case_options",
    "claim",
    "decide_as",
    "decide_bulk",
    "facets",
    "find_cases",
    "option_money",
    "preview_bulk",
    "release",
    "settle_message",
]
