"""Policy replay: decide past cases again under a proposed policy and show what would change.

Each case keeps the order as Henpin saw it and the recommendation it got (rule and inputs), so
a proposed `policies.yaml` can be tried on real history before it is put in force.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from henpin.domain import CaseType, Order, ReturnRequest
from henpin.policy import Policy
from henpin.store.db import session_scope
from henpin.store.models import Case


class ReplayRow(BaseModel):
    case_id: int
    type: str
    order_id: str
    marketplace_id: str
    was_action: str | None
    was_rule: str | None
    would_action: str
    would_rule: str
    would_reason: str
    changed: bool
    would_reason_code: str | None = None  # the reason as data, for the inbox's languages
    would_reason_values: dict[str, Any] = {}
    value: dict[str, Any] | None


class ReplayReport(BaseModel):
    policy_version: str
    cases: int
    changed: int
    to_operator_before: int
    to_operator_after: int
    automatic_before: int
    automatic_after: int
    value_changed: dict[str, Decimal]  # per currency: order value of the cases that change
    rows: list[ReplayRow]


def _recommend(case: Case, policy: Policy) -> dict[str, Any] | None:
    order = Order.model_validate(case.order_snapshot)
    if case.type == CaseType.CANCEL_REQUEST.value:
        return policy.cancel_request.recommend(order, case.created_at).model_dump(mode="json")
    if case.type == CaseType.RETURN_REQUEST.value and "return" in (case.details or {}):
        ret = ReturnRequest.model_validate(case.details["return"])
        return policy.return_request.recommend(ret, order, case.created_at).model_dump(mode="json")
    return None


AUTOMATIC = {"cancel", "nothing_to_do", "authorize"}


def replay(
    store_url: str,
    policy: Policy,
    *,
    since: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Every past case with a recommendation, decided again under `policy`.
    `progress(done, total)` is told as the cases are gone through (the inbox shows a bar)."""
    rows: list[ReplayRow] = []
    with session_scope(store_url) as s:
        q = select(Case).where(Case.recommendation != None)  # noqa: E711 - SQL IS NOT NULL
        if since is not None:
            q = q.where(Case.created_at >= since)
        cases = list(s.scalars(q.order_by(Case.id)))
        for done, case in enumerate(cases):
            if progress is not None and done % 25 == 0:
                progress(done, len(cases))
            if not case.order_snapshot or not case.recommendation:
                continue
            would = _recommend(case, policy)
            if would is None:
                continue
            was = case.recommendation
            rows.append(
                ReplayRow(
                    case_id=case.id,
                    type=case.type,
                    order_id=case.order_id,
                    marketplace_id=case.marketplace_id,
                    was_action=was.get("action"),
                    was_rule=was.get("rule"),
                    would_action=would["action"],
                    would_rule=would["rule"],
                    would_reason=would["reason"],
                    would_reason_code=would.get("reason_code"),
                    would_reason_values=would.get("reason_values") or {},
                    changed=(was.get("action"), was.get("rule"))
                    != (would["action"], would["rule"]),
                    value=(case.order_snapshot or {}).get("value"),
                )
            )
        if progress is not None:
            progress(len(cases), len(cases))
    value_changed: dict[str, Decimal] = {}
    for r in rows:
        if r.changed and r.value:
            cur = r.value["currency"]
            value_changed[cur] = value_changed.get(cur, Decimal(0)) + Decimal(
                str(r.value["amount"])
            )
    return ReplayReport(
        policy_version=policy.version,
        cases=len(rows),
        changed=sum(r.changed for r in rows),
        to_operator_before=sum(r.was_action == "ask_operator" for r in rows),
        to_operator_after=sum(r.would_action == "ask_operator" for r in rows),
        automatic_before=sum(r.was_action in AUTOMATIC for r in rows),
        automatic_after=sum(r.would_action in AUTOMATIC for r in rows),
        value_changed=value_changed,
        rows=rows,
    )
