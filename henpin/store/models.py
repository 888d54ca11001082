"""The case store's tables: cases, their timeline, operator decisions, Amazon actions and feeds.

Typed SQLAlchemy 2 models. Alembic migrations in `henpin/store/migrations` create them; never
`create_all` in production code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session, relationship
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from henpin.policy.reasons import Phrase


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back an aware UTC datetime (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the case store; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class Operator(Base):
    """A person who may log in to the inbox."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="operator")  # viewer, operator, admin
    language: Mapped[str] = mapped_column(String(5), default="en")
    active: Mapped[bool] = mapped_column(default=True)
    # Raised by a password reset: the operator's sessions signed in under an older value end at
    # their next click.
    session_epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignInThrottle(Base):
    """Failed sign-ins for one name from one client (the client's address), and for one name
    from all clients it never signed in from (client "*"). Counted before the password is
    checked, in one UPDATE, so parallel guesses cannot slip past the count."""

    __tablename__ = "sign_in_throttles"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)  # as typed: maybe no operator
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)  # in a row (the client) / since the last lock
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)  # a known client


class Case(Base):
    """One buyer's cancellation or return, handled by one flow run. One case per order and type."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("type", "order_id", name="uq_case_type_order"),
        Index("ix_cases_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(30))
    order_id: Mapped[str] = mapped_column(String(40))
    marketplace_id: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="open")
    outcome: Mapped[str | None] = mapped_column(String(40), default=None)
    policy_version: Mapped[str | None] = mapped_column(String(64), default=None)
    flow_run_id: Mapped[str | None] = mapped_column(String(36), default=None)
    # While waiting for an operator: the question's step name, allowed choices and deadline.
    waiting_step: Mapped[str | None] = mapped_column(String(40), default=None)
    choices: Mapped[list[Any]] = mapped_column(default=list)
    deadline: Mapped[datetime | None] = mapped_column(default=None)
    timeout_choice: Mapped[str | None] = mapped_column(String(40), default=None)
    # The waiting question in full: prompt, choice labels, extra fields and their bounds.
    question: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recommendation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    order_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    needs_attention: Mapped[str | None] = mapped_column(Text, default=None)
    # The same reason as a coded phrase ({kind, code, values}: henpin/policy/reasons.py), so
    # the inbox words it in the operator's language; None for a flag set before it had one.
    needs_attention_reason: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, default=None, nullable=True
    )
    # Case-type specific facts (e.g. a return's reason and comment, the item's condition).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # A case that continues another (a cancel asked by message → the buyer's cancel request).
    parent_case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(80), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    personal_data_purged_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Closed by the outbox on Amazon's word (an action's `closes_case`) while its flow run still
    # waits for Amazon's result: the housekeeper resumes the run, which ends it and clears this.
    run_to_finish: Mapped[bool] = mapped_column(default=False)

    events: Mapped[list[Event]] = relationship(
        back_populates="case", order_by="Event.id", cascade="all, delete-orphan"
    )
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="case", order_by="Decision.id", cascade="all, delete-orphan"
    )
    actions: Mapped[list[Action]] = relationship(back_populates="case", order_by="Action.id")

    def close(self, outcome: str, message: str, **data: Any) -> bool:
        """End the case with one outcome and say so on its timeline (with `data`); False, and
        nothing changed, when it is closed already: a closed case keeps its first outcome."""
        if self.state == "closed":
            return False
        self.state = "closed"
        self.outcome = outcome
        self.closed_at = utcnow()
        self.waiting_step = None
        self.choices = []
        self.question = {}
        session = object_session(self)
        assert session is not None, "close a case loaded in a session"
        session.add(
            Event(
                case_id=self.id, kind="closed", message=message, data={"outcome": outcome, **data}
            )
        )
        return True

    def flag_attention(self, why: Phrase | None) -> None:
        """Flag the case "needs attention" with why (its English words, kept as they always
        were, and its code and values), or take the flag off (None)."""
        self.needs_attention = None if why is None else why.text
        self.needs_attention_reason = None if why is None else why.as_json()


class Event(Base):
    """A line of a case's timeline: what happened, when, in words an operator reads."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="events")


class Decision(Base):
    """A person's (or the deadline's) answer to one question of a case. One winner per question."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("case_id", "step", name="uq_decision_case_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))
    choice: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    operator: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(20))  # inbox, cli, prefect-ui, deadline
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the form's extra fields
    policy_version: Mapped[str | None] = mapped_column(String(64), default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="decisions")


class Feed(Base):
    """One feed document sent to Amazon, carrying many actions as messages."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_type: Mapped[str] = mapped_column(String(60))
    marketplace_id: Mapped[str] = mapped_column(String(20))
    amazon_feed_id: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    status: Mapped[str] = mapped_column(String(20), default="preparing")
    document: Mapped[str] = mapped_column(Text, default="")
    report: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    actions: Mapped[list[Action]] = relationship(back_populates="feed", order_by="Action.id")


class Action(Base):
    """An Amazon action in the durable outbox, stored with its idempotency key before sending."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_status_type", "status", "feed_type", "marketplace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    feed_type: Mapped[str] = mapped_column(String(60))
    marketplace_id: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id"), default=None)
    message_id: Mapped[int | None] = mapped_column(default=None)
    result_code: Mapped[str | None] = mapped_column(String(60), default=None)
    result_message: Mapped[str | None] = mapped_column(Text, default=None)
    # How its case ends when Amazon confirms it (`henpin.domain.ClosesCase`), if its flow said.
    closes_case: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case | None] = relationship(back_populates="actions")
    feed: Mapped[Feed | None] = relationship(back_populates="actions")


class Checkpoint(Base):
    """How far a repeated job (e.g. order ingestion per marketplace) has got."""

    __tablename__ = "checkpoints"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """Append-only audit log: who did what, when, from where. Never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(120), default="")
    source: Mapped[str] = mapped_column(
        String(60), default=""
    )  # inbox, cli, system; client address
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UnreadablePayload(Base):
    """What Amazon sent for an order Henpin could not read and could tie to no case (no order
    id), kept for a person to look at. It may hold a buyer's name and address, so it lives here,
    purged after the policy's retention, never in the append-only audit log (whose entry names
    this row)."""

    __tablename__ = "unreadable_payloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(60), default="")  # ingest, returns report, ...
    problem: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(default=None)


class PolicyVersion(Base):
    """The text of every policy version a case was decided under, for replay and audit."""

    __tablename__ = "policy_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """One thing Henpin told people (or claimed to tell), so it is told once: a case that waits,
    is due soon, went past its deadline or needs attention, a feed that stalled, or a digest.

    The row is committed before anything is sent (the unique kind and subject make one process
    the sender); a crash while sending leaves it `sending`, and it is never sent again.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("kind", "subject", name="uq_notification_kind_subject"),
        Index("ix_notifications_kind_status", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # waiting, due-soon, overdue, ..., digest
    subject: Mapped[str] = mapped_column(String(120))  # e.g. case:12:item-condition, feed:3:late
    case_id: Mapped[int | None] = mapped_column(default=None, index=True)
    feed_id: Mapped[int | None] = mapped_column(default=None)
    # waiting (told as an event, not yet in a digest), grouped, sending, sent, failed, no-target
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # ids and targets, no buyer data
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class CasePhoto(Base):
    """A photo an operator attached to a case as evidence (a returned item's condition, for a
    SAFE-T claim or an A-to-z dispute). The image itself is a file under the data folder
    (`file`, relative to HENPIN_HOME); the purge deletes it with the case's personal data and
    keeps this row as the fact that a photo was there (`purged_at`)."""

    __tablename__ = "case_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    step: Mapped[str | None] = mapped_column(String(40), default=None)  # the question it went with
    file: Mapped[str] = mapped_column(String(200))  # e.g. evidence/case-12/3f2a....jpg
    name: Mapped[str] = mapped_column(String(200))  # as uploaded: the operator's file name
    content_type: Mapped[str] = mapped_column(String(40))  # read from the image, not the name
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(80))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
