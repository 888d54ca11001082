"""Buyers' personal data leaves the case store once the policy's retention has passed.

A case closed longer ago than `retention.buyer_data_days` keeps its facts (order id, money,
choices, outcome, who decided and when) and loses what names or describes the buyer, wherever
it was written:

- the order snapshot and the case's details: name, relay e-mail address, addresses, the buyer's
  own words (cancel reason, message, return comment), Amazon's raw payload;
- timeline lines and their data: the same words where a line quoted them, and phone numbers
  and e-mail addresses in any free text; so too why the case needs attention, in its words and
  in its code's values (`needs_attention_reason`);
- decisions: the operator's note (free text: it may hold a phone number or an address) and the
  text fields of the answer (a confirmed address, a pasted comment);
- outbox actions: the words of each message and e-mail to the buyer and the relay address;
- raw payloads of orders Henpin could not read and tie to no case (`unreadable_payloads`),
  by their own age.

What Prefect keeps of the case (run inputs, persisted task results) goes with it: see
`henpin.runs.forget_case_results` (the case's folder of task results) and
`henpin.runs.forget_case_run_data` (what its flow run points to), called by the housekeeping
purge and `henpin purge` (`henpin.housekeeping.purge_buyer_data_now`) for each case purged
here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from henpin.domain import ActionKind, CaseState
from henpin.evidence import forget_case_photos
from henpin.store.db import engine_for
from henpin.store.models import Case, UnreadablePayload

PURGED = "(purged)"

#: Keys whose value is the buyer's (name, address, own words), wherever they sit in a case.
PERSONAL_KEYS = frozenset(
    {
        "buyer_name",
        "buyer_email",
        "confirmed_address",
        "buyer_message",
        "buyer_comment",
        "buyer_cancel_reason",
        "address",
        "shipping_address",
        "phone",
    }
)
#: Keys dropped whole: Amazon's raw answer, and nested buyer/recipient blocks.
DROPPED_KEYS = frozenset({"raw_payload", "buyer", "recipient"})
#: What an outbox action to the buyer says and where it goes.
MESSAGE_KINDS = frozenset({ActionKind.SEND_EMAIL.value, ActionKind.SEND_MESSAGE.value})
MESSAGE_KEYS = frozenset({"to", "subject", "body", "text"})
#: What a decision's timeline line records besides the answer's fields.
DECISION_FACTS = frozenset({"step", "choice", "source", "operator"})

# Phone numbers as buyers and operators write them: international (+81-90-1234-5678,
# +49 30 123456) or a national number with a leading 0 in groups (090-1234-5678,
# 030 1234 5678). Dates (2026-12-05) and order ids (113-1234567-1234567) do not start so.
PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d ().-]{6,}\d|0\d{1,4}[ -]\d{1,4}[ -]\d{3,4})(?!\w)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PARTS = re.compile(r"[\n,;.!?]")
SHORTEST_WORDS = 3  # a known value shorter than this is not hunted for in free text


class PurgeReport(BaseModel):
    """What a purge removed (or, on a dry run, would remove): rows changed per place."""

    dry_run: bool
    now: datetime
    cutoff: datetime  # cases closed before this lose their buyer data
    retention_days: int
    case_ids: list[int]
    places: dict[str, int]


def _known_words(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _known_words(v)
    elif isinstance(value, list):
        for v in value:
            yield from _known_words(v)


def _personal_values(data: Any) -> Iterable[str]:
    """Every string held under a personal key, however deep."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k in PERSONAL_KEYS or k in DROPPED_KEYS:
                yield from _known_words(v)
            else:
                yield from _personal_values(v)
    elif isinstance(data, list):
        for v in data:
            yield from _personal_values(v)


class Scrubber:
    """Takes one case's buyer data out of text and data: the values the case holds under
    personal keys wherever they were quoted, plus any phone number or e-mail address."""

    def __init__(self, known: Iterable[str]) -> None:
        words = {w.strip() for w in known if w and len(w.strip()) >= SHORTEST_WORDS}
        # Parts of what the buyer wrote are quoted too ("7 Qqqq Street" of a longer message).
        words |= {p.strip() for w in words for p in PARTS.split(w) if len(p.strip()) > 8}
        self.words = sorted(words, key=len, reverse=True)  # longest first: no half-replaced text

    def text(self, value: str) -> str:
        for word in self.words:
            value = value.replace(word, PURGED)
        value = EMAIL.sub(PURGED, value)
        return PHONE.sub(PURGED, value)

    def data(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (PURGED if k in PERSONAL_KEYS and v else self.data(v))
                for k, v in value.items()
                if k not in DROPPED_KEYS
            }
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def answer_fields(
        self, value: dict[str, Any], keep: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """An answer's extra fields: numbers and dates stay, free text goes (but `keep`)."""
        return {k: v if k in keep or _is_figure(v) else PURGED for k, v in self.data(value).items()}


def _is_figure(value: Any) -> bool:
    if not isinstance(value, str) or value == PURGED:
        return not isinstance(value, str)
    try:
        Decimal(value)
        return True
    except InvalidOperation:
        pass
    try:
        datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def scrubber_for(case: Case) -> Scrubber:
    known = list(_personal_values(case.order_snapshot))
    known += _personal_values(case.details)
    for d in case.decisions:
        known += _personal_values(d.data)
    for e in case.events:
        known += _personal_values(e.data)
    for a in case.actions:
        if a.kind in MESSAGE_KINDS:
            known += [str((a.payload or {}).get("to") or "")]
        known += _personal_values(a.payload)
    return Scrubber(known)


def _set(obj: Any, attr: str, value: Any) -> bool:
    """Set the attribute; True when that changed it."""
    if getattr(obj, attr) == value:
        return False
    setattr(obj, attr, value)
    return True


def _purge_case(case: Case, now: datetime, counts: dict[str, int]) -> None:
    scrub = scrubber_for(case)
    for attr in ("order_snapshot", "details", "recommendation", "question"):
        _set(case, attr, scrub.data(getattr(case, attr)))
    if case.needs_attention:
        _set(case, "needs_attention", scrub.text(case.needs_attention))
    if case.needs_attention_reason:  # its values may quote the buyer as its words do
        _set(case, "needs_attention_reason", scrub.data(case.needs_attention_reason))
    case.personal_data_purged_at = now
    counts["cases"] += 1
    for event in case.events:
        moved = _set(event, "message", scrub.text(event.message))
        data = (
            scrub.answer_fields(event.data or {}, keep=DECISION_FACTS)
            if event.kind == "decision"  # its data repeats the answer's fields
            else scrub.data(event.data)
        )
        counts["events"] += _set(event, "data", data) or moved
    for decision in case.decisions:
        moved = _set(decision, "note", PURGED if decision.note else "")
        moved = _set(decision, "data", scrub.answer_fields(decision.data or {})) or moved
        counts["decisions"] += moved
    for action in case.actions:
        payload = scrub.data(action.payload)
        if action.kind in MESSAGE_KINDS:
            payload = {k: PURGED if k in MESSAGE_KEYS and v else v for k, v in payload.items()}
        moved = _set(action, "payload", payload)
        if action.result_message:
            moved = _set(action, "result_message", scrub.text(action.result_message)) or moved
        counts["actions"] += moved


def purge_closed_cases(
    url: str,
    now: datetime,
    retention_days: int,
    *,
    dry_run: bool = False,
    only: Iterable[int] | None = None,
) -> PurgeReport:
    """Take buyers' personal data out of cases closed more than `retention_days` ago (and out
    of unreadable payloads that old). A dry run changes nothing and says what would go.

    `only`: purge just these of the due cases (the housekeeper's cases whose Prefect side is
    gone too)."""
    cutoff = now - timedelta(days=retention_days)
    counts = {"cases": 0, "events": 0, "decisions": 0, "actions": 0, "unreadable_payloads": 0}
    factory = sessionmaker(engine_for(url), expire_on_commit=False)
    with factory() as s, s.begin():
        due = list(s.scalars(due_cases(cutoff)).all())
        if only is not None:
            wanted = set(only)
            due = [c for c in due if c.id in wanted]
        case_ids = [c.id for c in due]
        for case in due:
            _purge_case(case, now, counts)
        counts["photos"] = forget_case_photos(s, case_ids, now, dry_run=dry_run)
        counts["unreadable_payloads"] = _purge_payloads(s, now, cutoff)
        s.flush()
        if dry_run:
            s.rollback()
    return PurgeReport(
        dry_run=dry_run,
        now=now,
        cutoff=cutoff,
        retention_days=retention_days,
        case_ids=case_ids,
        places=counts,
    )


def due_cases(cutoff: datetime) -> Any:
    """Closed before `cutoff` and not purged yet."""
    return (
        select(Case)
        .where(
            Case.state == CaseState.CLOSED.value,
            Case.closed_at < cutoff,
            Case.personal_data_purged_at.is_(None),
        )
        .order_by(Case.id)
    )


def _purge_payloads(s: Session, now: datetime, cutoff: datetime) -> int:
    rows = s.scalars(
        select(UnreadablePayload).where(
            UnreadablePayload.at < cutoff, UnreadablePayload.purged_at.is_(None)
        )
    ).all()
    for row in rows:
        row.payload = None
        row.purged_at = now
    return len(rows)
