"""The dashboard's numbers, read from the case store: what the seller's metrics and money see.

- Cancellations the buyer caused versus the seller: only seller-caused ones count against the
  cancellation rate Amazon watches.
- Refunds applied at Amazon, by adjustment reason and marketplace (from refund actions).
- Fees recovered (from a case's `details["money"]`, or the money of the option chosen).
- Time from a case's opening to its first decision by a person.
- Open cases by age.

Plain SQL selects (SQLite and PostgreSQL alike); JSON payloads are summed in Python so both
databases read the same.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from statistics import median, quantiles
from typing import Any

from sqlalchemy import func, select

from henpin.app.cases import case_options, option_money
from henpin.domain import ActionKind, ActionStatus, CaseState, Outcome
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision

BUYER_CAUSED = (Outcome.CANCELLED_BUYER_CANCELED.value, Outcome.HANDED_TO_CANCEL_REQUEST.value)
SELLER_CAUSED = (Outcome.CANCELLED_BY_SELLER.value,)


# --- cancellations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CancellationCount:
    marketplace_id: str
    cause: str  # "buyer" or "seller"
    orders: int


def cancellations_by_cause(
    store_url: str, *, since: datetime | None = None
) -> list[CancellationCount]:
    """Cancelled orders per marketplace, buyer-caused versus seller-caused.

    Counted per order, not per case: a cancel asked by message that the buyer then requested is
    two linked cases (handed-to-cancel-request, then cancelled-buyer-canceled) but one order.
    """
    outcomes = (*BUYER_CAUSED, *SELLER_CAUSED)
    q = (
        select(Case.marketplace_id, Case.order_id, Case.outcome)
        .where(Case.outcome.in_(outcomes))
        .distinct()
    )
    if since is not None:
        q = q.where(Case.closed_at >= since)
    with session_scope(store_url) as s:
        rows = s.execute(q).all()
    orders = {
        (marketplace_id, "seller" if outcome in SELLER_CAUSED else "buyer", order_id)
        for marketplace_id, order_id, outcome in rows
    }
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for marketplace_id, cause, _ in orders:
        counts[(marketplace_id, cause)] += 1
    return [CancellationCount(m, c, n) for (m, c), n in sorted(counts.items())]


# --- refunds ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundTotal:
    reason: str
    marketplace_id: str
    currency: str
    refunds: int  # refund actions (one per case and purpose)
    amount: Decimal


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def refunds_by_reason(store_url: str, *, since: datetime | None = None) -> list[RefundTotal]:
    """Refunds Amazon applied, summed per adjustment reason, marketplace and currency."""
    q = select(Action.marketplace_id, Action.payload).where(
        Action.kind == ActionKind.REFUND.value, Action.status == ActionStatus.DONE.value
    )
    if since is not None:
        q = q.where(Action.updated_at >= since)
    refunds: dict[tuple[str, str, str], int] = defaultdict(int)
    amounts: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    with session_scope(store_url) as s:
        rows = s.execute(q).all()
    for marketplace_id, payload in rows:
        seen: set[tuple[str, str, str]] = set()
        for item in (payload or {}).get("items", []):
            reason = str(item.get("reason") or "?")
            for component in item.get("components", []):
                amount = _amount(component.get("amount"))
                if amount is None:
                    continue
                key = (reason, marketplace_id, str(component.get("currency") or "?"))
                amounts[key] += amount
                seen.add(key)
        for key in seen:
            refunds[key] += 1
    return [
        RefundTotal(
            reason, m, currency, refunds[(reason, m, currency)], amounts[(reason, m, currency)]
        )
        for reason, m, currency in sorted(amounts)
    ]


# --- fees recovered -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeesRecovered:
    marketplace_id: str
    currency: str
    cases: int
    amount: Decimal


def _recovered(money: dict[str, Any]) -> list[tuple[str, Decimal]]:
    """(currency, amount) of every value named `...recovered...` in a money mapping: either
    `{"amount": .., "currency": ..}` or a number next to a `currency` key."""
    found = []
    for key, value in money.items():
        if "recovered" not in key:
            continue
        if isinstance(value, dict):
            amount, currency = _amount(value.get("amount")), value.get("currency")
        else:
            amount, currency = _amount(value), money.get("currency")
        if amount is not None and currency:
            found.append((str(currency), amount))
    return found


def fees_recovered(store_url: str, *, since: datetime | None = None) -> list[FeesRecovered]:
    """Fees Amazon gave back on closed cases, per marketplace and currency.

    From the case's `details["money"]` when its flow recorded it; otherwise from the money of
    the option the operator chose (e.g. an address error cancelled for reorder).
    """
    q = select(Case).where(Case.state == CaseState.CLOSED.value)
    if since is not None:
        q = q.where(Case.closed_at >= since)
    cases: dict[tuple[str, str], int] = defaultdict(int)
    amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with session_scope(store_url) as s:
        for c in s.scalars(q):
            details = c.details or {}
            money = details.get("money")
            if not isinstance(money, dict):
                options = case_options(details, c.recommendation or {}, {})
                chosen = c.decisions[-1].choice if options and c.decisions else None
                money = option_money(options, chosen) if chosen else {}
            for currency, amount in _recovered(money):
                cases[(c.marketplace_id, currency)] += 1
                amounts[(c.marketplace_id, currency)] += amount
    return [FeesRecovered(m, cur, cases[(m, cur)], amounts[(m, cur)]) for m, cur in sorted(amounts)]


# --- time to decision -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionTimes:
    case_type: str
    by_person: int  # cases whose first question a person answered
    by_deadline: int  # ... and those the deadline answered
    median_minutes: float | None
    p90_minutes: float | None


def time_to_decision(store_url: str, *, since: datetime | None = None) -> list[DecisionTimes]:
    """Per case type: how long after a case opened its first question was answered."""
    first = (
        select(Decision.case_id, func.min(Decision.id).label("first_id"))
        .group_by(Decision.case_id)
        .subquery()
    )
    q = (
        select(Case.type, Case.created_at, Decision.at, Decision.source)
        .join(first, first.c.case_id == Case.id)
        .join(Decision, Decision.id == first.c.first_id)
    )
    if since is not None:
        q = q.where(Decision.at >= since)
    minutes: dict[str, list[float]] = defaultdict(list)
    by_deadline: dict[str, int] = defaultdict(int)
    with session_scope(store_url) as s:
        rows = s.execute(q).all()
    for case_type, created_at, decided_at, source in rows:
        if source == "deadline":
            by_deadline[case_type] += 1
        else:
            minutes[case_type].append(max((decided_at - created_at).total_seconds() / 60, 0.0))
    result = []
    for case_type in sorted(set(minutes) | set(by_deadline)):
        times = sorted(minutes[case_type])
        p90 = quantiles(times, n=10, method="inclusive")[-1] if len(times) >= 2 else None
        result.append(
            DecisionTimes(
                case_type=case_type,
                by_person=len(times),
                by_deadline=by_deadline[case_type],
                median_minutes=round(median(times), 1) if times else None,
                p90_minutes=round(p90 if p90 is not None else times[0], 1) if times else None,
            )
        )
    return result


# --- open cases by age ------------------------------------------------------------------------------

AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("under-1h", timedelta(hours=1)),
    ("1h-1d", timedelta(days=1)),
    ("1d-3d", timedelta(days=3)),
    ("3d-7d", timedelta(days=7)),
    ("over-7d", None),
)


@dataclass(frozen=True)
class OpenCases:
    age: str  # one of AGE_BUCKETS' names
    case_type: str
    state: str
    cases: int


def _age_bucket(age: timedelta) -> str:
    for name, limit in AGE_BUCKETS:
        if limit is None or age < limit:
            return name
    return AGE_BUCKETS[-1][0]  # pragma: no cover - the last bucket has no limit


def open_cases_by_age(store_url: str, *, now: datetime | None = None) -> list[OpenCases]:
    """Cases not yet closed, by how long ago they opened, case type and state."""
    now = now or datetime.now(UTC)
    q = select(Case.created_at, Case.type, Case.state).where(Case.state != CaseState.CLOSED.value)
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    with session_scope(store_url) as s:
        for created_at, case_type, state in s.execute(q).all():
            counts[(_age_bucket(now - created_at), case_type, state)] += 1
    order = {name: i for i, (name, _) in enumerate(AGE_BUCKETS)}
    return [
        OpenCases(age, t, st, n)
        for (age, t, st), n in sorted(counts.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:]))
    ]
