"""Who works on a case: claim it, take it over, release it. Every claim and release is on the
case's timeline and in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import or_, select, update

from henpin.accounts import AuditAction, find_operator
from henpin.app.cases import note_on_case
from henpin.domain import CaseState
from henpin.store.db import session_scope
from henpin.store.models import Case


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
    note_on_case(
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
    note_on_case(
        store_url,
        case_id,
        operator,
        AuditAction.RELEASE,
        text,
        where=where,
        detail={"holder": holder},
    )
    return ClaimResult(case_id, ClaimCode.RELEASED, None, holder)
