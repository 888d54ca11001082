"""Exports for accounting: the cases and the refunds of a period and marketplace, as CSV.

One function, `export()`, serves both doors (the inbox's download button and
`henpin export cases|refunds`): it checks who asks, builds the file and writes one audit row per
export. Amounts are exact: an integer in the currency's minor unit (cents; yen have none) next
to the currency code, never a float or a formatted figure. docs/exports.md names every column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from henpin.accounts import DECIDING_ROLES, AuditAction, audit, find_operator
from henpin.domain import PriceComponent, PromotionPart
from henpin.marketplaces import MARKETPLACES
from henpin.money import to_minor_units
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Feed

#: Decisions a person made (the others are the deadline's and the policy's own).
PERSON_SOURCES = ("inbox", "cli", "prefect-ui")

CASE_COLUMNS = (
    "case_id",
    "case_type",
    "order_id",
    "marketplace_id",
    "marketplace",
    "state",
    "outcome",
    "opened_at",
    "closed_at",
    "recommended",
    "rule",
    "decision",
    "decided_by",
    "decision_source",
    "decided_at",
    "currency",
    "order_value_minor",
    "refunded_minor",
    "refund_pending_minor",
    "needs_attention",
)
#: One column per price component and promotion part of a refunded item, in the feed's names.
COMPONENT_COLUMNS = tuple(f"{c.value}_minor" for c in PriceComponent) + tuple(
    f"Promotion{p.value}_minor" for p in PromotionPart
)
REFUND_COLUMNS = (
    "case_id",
    "order_id",
    "marketplace_id",
    "marketplace",
    "refund_key",
    "queued_at",
    "order_item_id",
    "reason",
    "quantity_cancelled",
    "currency",
    *COMPONENT_COLUMNS,
    "total_minor",
    "status",
    "feed_id",
    "amazon_feed_id",
    "feed_status",
    "result_code",
    "result_message",
)


class ExportKind(StrEnum):
    CASES = "cases"
    REFUNDS = "refunds"


class ExportRefused(Exception):
    """The export was not made: `code` says why (for the inbox's words), the message in English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Period:
    """From the first day to the last, both whole days in UTC (the store's time)."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The moment after the last day (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True)
class Export:
    kind: ExportKind
    rows: int
    text: str  # the CSV, header row first
    file_name: str


def marketplace_id_of(given: str | None) -> str | None:
    """A marketplace id from an id or a country code (US, JP, ...); None for all marketplaces.
    ValueError for one Henpin does not know."""
    if not given or given.lower() == "all":
        return None
    if given in MARKETPLACES:
        return given
    for m in MARKETPLACES.values():
        if m.country.lower() == given.lower():
            return m.marketplace_id
    raise ValueError(f"unknown marketplace {given!r}: give an id such as ATVPDKIKX0DER or US")


def _iso(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if at else ""


def _country(marketplace_id: str) -> str:
    m = MARKETPLACES.get(marketplace_id)
    return m.country if m else ""


def _refund_lines(action: Action) -> Iterable[dict[str, Any]]:
    """One line per order item of a refund action's payload, amounts per component."""
    for item in (action.payload or {}).get("items", []):
        line: dict[str, Any] = {
            "order_item_id": item.get("order_item_id", ""),
            "reason": item.get("reason", ""),
            "quantity_cancelled": item.get("quantity_cancelled") or "",
        }
        parts = [(c["type"], c) for c in item.get("components", [])]
        parts += [(f"Promotion{p['type']}", p) for p in item.get("promotions", [])]
        currencies = {p["currency"] for _, p in parts}
        currency = currencies.pop() if len(currencies) == 1 else ""
        total = 0
        for name, part in parts:
            amount = to_minor_units(part["amount"], part["currency"])
            column = f"{name}_minor"
            line[column] = int(line.get(column) or 0) + amount
            total += amount
        line["currency"] = currency
        line["total_minor"] = total
        yield line


def _refund_total(action: Action) -> tuple[str, int] | None:
    lines = list(_refund_lines(action))
    currencies = {line["currency"] for line in lines}
    if not lines or len(currencies) != 1:
        return None
    return currencies.pop(), sum(line["total_minor"] for line in lines)


def _is_refund(action: Action) -> bool:
    return action.kind == "refund"


def case_rows(store_url: str, period: Period, marketplace_id: str | None) -> list[dict[str, Any]]:
    """The cases opened in the period: how each ended, its money, and the person's decision."""
    rows = []
    with session_scope(store_url) as s:
        q = select(Case).where(Case.created_at >= period.start, Case.created_at < period.end)
        if marketplace_id:
            q = q.where(Case.marketplace_id == marketplace_id)
        cases = list(s.scalars(q.order_by(Case.id)))
        ids = q.with_only_columns(Case.id)  # a subquery, not a list: no limit on its size
        decisions: dict[int, Decision] = {}
        for d in s.scalars(
            select(Decision)
            .where(Decision.case_id.in_(ids), Decision.source.in_(PERSON_SOURCES))
            .order_by(Decision.at, Decision.id)
        ):
            decisions[d.case_id] = d  # the last one a person made
        refunds: dict[int, list[Action]] = {}
        for a in s.scalars(select(Action).where(Action.case_id.in_(ids))):
            if _is_refund(a) and a.case_id is not None:
                refunds.setdefault(a.case_id, []).append(a)
        for c in cases:
            value = (c.order_snapshot or {}).get("value") or {}
            currency = str(value.get("currency") or "")
            refunded = pending = 0
            for a in refunds.get(c.id, []):
                total = _refund_total(a)
                if total is None:
                    continue
                currency = currency or total[0]
                if total[0] != currency:
                    continue
                if a.status == "done":
                    refunded += total[1]
                elif a.status in ("pending", "submitted"):
                    pending += total[1]
            last = decisions.get(c.id)
            rec = c.recommendation or {}
            rows.append(
                {
                    "case_id": c.id,
                    "case_type": c.type,
                    "order_id": c.order_id,
                    "marketplace_id": c.marketplace_id,
                    "marketplace": _country(c.marketplace_id),
                    "state": c.state,
                    "outcome": c.outcome or "",
                    "opened_at": _iso(c.created_at),
                    "closed_at": _iso(c.closed_at),
                    "recommended": rec.get("action") or "",
                    "rule": rec.get("rule") or "",
                    "decision": last.choice if last else "",
                    "decided_by": last.operator if last else "",
                    "decision_source": last.source if last else "",
                    "decided_at": _iso(last.at) if last else "",
                    "currency": currency,
                    "order_value_minor": to_minor_units(value["amount"], currency)
                    if value.get("amount") is not None and currency
                    else "",
                    "refunded_minor": refunded if currency else "",
                    "refund_pending_minor": pending if currency else "",
                    "needs_attention": "yes" if c.needs_attention else "",
                }
            )
    return rows


def refund_rows(store_url: str, period: Period, marketplace_id: str | None) -> list[dict[str, Any]]:
    """The refunds queued in the period, one row per order item: amounts by component, the
    reason, the feed that carried it and what Amazon's processing report said."""
    rows = []
    with session_scope(store_url) as s:
        q = select(Action, Case, Feed).join(Case, Case.id == Action.case_id, isouter=True)
        q = q.join(Feed, Feed.id == Action.feed_id, isouter=True).where(
            Action.kind == "refund",
            Action.created_at >= period.start,
            Action.created_at < period.end,
        )
        if marketplace_id:
            q = q.where(Action.marketplace_id == marketplace_id)
        for action, case, feed in s.execute(q.order_by(Action.created_at, Action.id)).all():
            for line in _refund_lines(action):
                rows.append(
                    {
                        "case_id": action.case_id or "",
                        "order_id": (action.payload or {}).get("order_id")
                        or (case.order_id if case else ""),
                        "marketplace_id": action.marketplace_id,
                        "marketplace": _country(action.marketplace_id),
                        "refund_key": action.key,
                        "queued_at": _iso(action.created_at),
                        **line,
                        "status": action.status,
                        "feed_id": action.feed_id or "",
                        "amazon_feed_id": (feed.amazon_feed_id or "") if feed else "",
                        "feed_status": feed.status if feed else "",
                        "result_code": action.result_code or "",
                        "result_message": action.result_message or "",
                    }
                )
    return rows


def to_csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """CSV with a header row; a component an item did not have is 0, an unknown value empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n", restval="")
    writer.writeheader()
    for row in rows:
        if "total_minor" in row:  # refund lines: every component column is a number
            row = {c: 0 for c in COMPONENT_COLUMNS} | row
        writer.writerow({k: row.get(k, "") for k in columns})
    return out.getvalue()


def export(
    store_url: str,
    kind: ExportKind | str,
    period: Period,
    marketplace: str | None,
    *,
    by: str,
    where: str,
    check_role: bool = True,
) -> Export:
    """The CSV of `kind` for the period and marketplace (None: all), audited as `by`.

    In the inbox `by` is the signed-in person, who must be an active operator or admin (viewers
    do not export buyers' orders and money). A person at the command line is recorded by their
    system login (`check_role=False`): whoever runs `henpin` there can read the store anyway.
    """
    kind = ExportKind(kind)
    if period.last < period.first:
        raise ExportRefused("bad-period", f"the period ends ({period.last}) before it starts")
    try:
        market = marketplace_id_of(marketplace)
    except ValueError as exc:
        raise ExportRefused("bad-marketplace", str(exc)) from exc
    if check_role:
        who = find_operator(store_url, by)
        if who is None or not who.active or who.role not in DECIDING_ROLES:
            raise ExportRefused("not-allowed", f"{by} may not export: operators and admins only")
    columns: tuple[str, ...]
    if kind is ExportKind.CASES:
        columns, rows = CASE_COLUMNS, case_rows(store_url, period, market)
    else:
        columns, rows = REFUND_COLUMNS, refund_rows(store_url, period, market)
    text = to_csv(columns, rows)
    audit(
        store_url,
        by,
        AuditAction.EXPORTED,
        target=kind.value,
        where=where,
        detail={
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "marketplace": market or "all",
            "rows": len(rows),
        },
    )
    country = _country(market) if market else "all"
    name = f"henpin-{kind.value}-{country}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
    return Export(kind, len(rows), text, name)


__all__ = [
    "CASE_COLUMNS",
    "REFUND_COLUMNS",
    "Export",
    "ExportKind",
    "ExportRefused",
    "Period",
    "export",
    "marketplace_id_of",
]
