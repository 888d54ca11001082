"""The cases as the inbox and `henpin cases` read them: list, find, show, and what one option
of a case costs. Also what every case action shares: the order from Amazon, and the note an
operator's action leaves on a case's timeline and in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy import case as sql_case

from henpin.accounts import AuditAction, audit
from henpin.domain import ActionStatus, CaseState, Order
from henpin.marketplaces import MARKETPLACES
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Event


class CaseSummary(BaseModel):
    """One line of the inbox and of `henpin cases list --json`."""

    id: int
    type: str
    order_id: str
    marketplace_id: str
    marketplace: str | None
    state: str
    outcome: str | None
    choices: list[str]
    deadline: datetime | None
    recommendation: dict[str, Any]
    question: dict[str, Any]
    details: dict[str, Any]
    parent_case_id: int | None
    claimed_by: str | None
    needs_attention: str | None
    # The same reason as a code and values (`{kind, code, values}`), for the inbox to word in
    # the operator's language; None when flagged before reasons had codes.
    needs_attention_reason: dict[str, Any] | None = None
    flow_run_id: str | None
    created_at: datetime
    updated_at: datetime


class EventView(BaseModel):
    at: datetime
    kind: str
    message: str
    data: dict[str, Any]


class DecisionView(BaseModel):
    step: str
    choice: str
    note: str
    data: dict[str, Any] = {}
    operator: str
    source: str
    policy_version: str | None
    at: datetime


class ActionView(BaseModel):
    key: str
    kind: str
    feed_type: str
    status: str
    payload: dict[str, Any]
    amazon_feed_id: str | None
    result_code: str | None
    result_message: str | None
    created_at: datetime
    updated_at: datetime
    # A message or e-mail Henpin could not tell was sent: it is never resent alone; a person
    # says whether it went out (inbox case page, or `henpin cases settle-message`).
    uncertain: bool = False


class CaseDetail(CaseSummary):
    """A case with everything that happened to it: `henpin cases show ID --json`."""

    policy_version: str | None
    order: dict[str, Any]
    waiting_step: str | None
    timeout_choice: str | None
    closed_at: datetime | None
    timeline: list[EventView]
    decisions: list[DecisionView]
    actions: list[ActionView]


def case_summary(c: Case) -> dict[str, Any]:
    m = MARKETPLACES.get(c.marketplace_id)
    waiting = c.state == CaseState.WAITING
    return {
        "id": c.id,
        "type": c.type,
        "order_id": c.order_id,
        "marketplace_id": c.marketplace_id,
        "marketplace": m.country if m else None,
        "state": c.state,
        "outcome": c.outcome,
        "choices": list(c.choices) if waiting else [],
        "deadline": c.deadline if waiting else None,
        "recommendation": c.recommendation or {},
        "question": (c.question or {}) if waiting else {},
        "details": c.details or {},
        "parent_case_id": c.parent_case_id,
        "claimed_by": c.claimed_by,
        "needs_attention": c.needs_attention,
        "needs_attention_reason": c.needs_attention_reason,
        "flow_run_id": c.flow_run_id,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def deadline_first() -> list[Any]:
    """The inbox's order: waiting cases by deadline (overdue first), then the rest, newest
    first. SQL ORDER BY terms, so a limit keeps the most urgent cases."""
    waiting_deadline = sql_case(
        (and_(Case.state == CaseState.WAITING.value, Case.deadline.is_not(None)), Case.deadline),
        else_=None,
    )
    return [sql_case((waiting_deadline.is_(None), 1), else_=0), waiting_deadline, Case.id.desc()]


def list_cases(store_url: str, *, state: str | None = None, limit: int = 1000) -> list[CaseSummary]:
    """Cases, waiting ones first by deadline (soonest first), then the newest; ordered and cut
    in SQL."""
    with session_scope(store_url) as s:
        q = select(Case)
        if state:
            q = q.where(Case.state == state)
        rows = s.scalars(q.order_by(*deadline_first()).limit(limit))
        return [CaseSummary(**case_summary(c)) for c in rows]


def show_case(store_url: str, case_id: int) -> CaseDetail | None:
    from henpin.outbox import SendState  # the outbox owns its actions' states

    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return None
        events = s.scalars(select(Event).where(Event.case_id == case_id).order_by(Event.id)).all()
        decisions = s.scalars(
            select(Decision).where(Decision.case_id == case_id).order_by(Decision.id)
        ).all()
        actions = s.scalars(
            select(Action).where(Action.case_id == case_id).order_by(Action.id)
        ).all()
        return CaseDetail(
            **case_summary(c),
            policy_version=c.policy_version,
            order=c.order_snapshot or {},
            waiting_step=c.waiting_step,
            timeout_choice=c.timeout_choice,
            closed_at=c.closed_at,
            timeline=[
                EventView(at=e.at, kind=e.kind, message=e.message, data=e.data) for e in events
            ],
            decisions=[
                DecisionView(
                    step=d.step,
                    choice=d.choice,
                    note=d.note,
                    data=d.data or {},
                    operator=d.operator,
                    source=d.source,
                    policy_version=d.policy_version,
                    at=d.at,
                )
                for d in decisions
            ],
            actions=[
                ActionView(
                    key=a.key,
                    kind=a.kind,
                    feed_type=a.feed_type,
                    status=a.status,
                    payload=a.payload,
                    amazon_feed_id=a.feed.amazon_feed_id if a.feed else None,
                    result_code=a.result_code,
                    result_message=a.result_message,
                    created_at=a.created_at,
                    updated_at=a.updated_at,
                    uncertain=a.status == ActionStatus.SUBMITTED
                    and a.result_code == SendState.UNCERTAIN,
                )
                for a in actions
            ],
        )


OPEN_STATES = (CaseState.WAITING.value, CaseState.ACTING.value, CaseState.OPEN.value)


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
        return CasePage([CaseSummary(**case_summary(c)) for c in rows], int(total))


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


class CaseNotOpened(Exception):
    """A case could not be opened; the message says why, for the operator."""


def order_from_amazon(order_id: str, *, with_packages: bool = False) -> Order:
    """The order a buyer's message is about, from Amazon; CaseNotOpened in words if not."""
    from henpin.amazon import DEFAULT_INCLUDED_DATA, AmazonError
    from henpin.context import adapter

    order_id = order_id.strip()
    if not order_id:
        raise CaseNotOpened("Type the order id (e.g. 113-1234567-1234567).")
    try:
        if with_packages:  # a parcel case shows and keeps where the order's parcels stand
            return adapter().get_order(order_id, (*DEFAULT_INCLUDED_DATA, "PACKAGES"))
        return adapter().get_order(order_id)
    except AmazonError as exc:
        if exc.status == 404:
            raise CaseNotOpened(
                f"Amazon did not return order {order_id}: Amazon has no order with this id. "
                "Check the order id."
            ) from exc
        raise CaseNotOpened(f"Amazon did not return order {order_id}: {exc}") from exc


def note_on_case(
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
