"""Who may use the inbox, and the trail they leave.

Sign-in with a lockout after repeated failures (per name and client, counted before the password
is checked), the three roles, operator management by admins (each change re-checks, in its own
transaction, that its admin is still an active admin and that an active admin remains), how long
an idle session lasts, and the append-only audit log (who did what, when, from where).
The inbox calls these; refusals carry a `code` (and parameters) so each language words them its
own way.
"""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, case, delete, func, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from henpin.settings import load_settings
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Operator, SignInThrottle, UTCDateTime

ROLES = ("viewer", "operator", "admin")
DECIDING_ROLES = ("operator", "admin")
LANGUAGES = ("en", "ja")

MAX_FAILED_LOGINS = 5  # this many wrong passwords in a row from one client lock the name there
MAX_FAILED_LOGINS_PER_NAME = 20  # ... this many from clients it never signed in from, for them all
LOCKOUT = timedelta(minutes=15)  # ... for this long
ALL_CLIENTS = "*"  # the throttle row counting a name's failures from all unknown clients
UNKNOWN_NAME_MEMORY = timedelta(
    days=1
)  # failures from a client never signed in from count this long

_hasher = PasswordHasher()


class AuditAction(StrEnum):
    """What the audit log records. Each row: who, this, on what, when, from where."""

    LOGIN = "login"
    LOGIN_FAILED = "login-failed"
    LOGIN_LOCKED = "login-refused-locked"
    LOGIN_INACTIVE = "login-refused-inactive"
    LOGOUT = "logout"
    SESSION_EXPIRED = "session-expired"
    DECISION = "decision"
    DECISION_REFUSED = "decision-refused"
    CLAIM = "claim"
    MESSAGE_SETTLED = "message-settled"  # a person said whether an uncertain message went out
    FEED_SETTLED = "feed-settled"  # a person answered for a feed whose report did not add up
    RELEASE = "release"
    OPERATOR_ADDED = "operator-added"
    ROLE_CHANGED = "operator-role-changed"
    DEACTIVATED = "operator-deactivated"
    REACTIVATED = "operator-reactivated"
    PASSWORD_RESET = "operator-password-reset"
    UNLOCKED = "operator-unlocked"
    OPERATOR_CHANGE_REFUSED = "operator-change-refused"  # e.g. `henpin operator add` a taken name
    LANGUAGE_CHANGED = "operator-language-changed"
    AUDIT_EXPORTED = "audit-exported"
    CASE_OPENED = "case-opened"  # a person opened a case by hand (e.g. a parcel case by order id)
    CASE_OPEN_REFUSED = "case-open-refused"
    EXPORTED = "exported"  # a CSV of cases or refunds for accounting (henpin/exports.py)


class AccountRefused(Exception):
    """An account change an admin asked for cannot be made; `code` names why (for translation)."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class OperatorView:
    """An operator as the inbox shows them (never the password hash)."""

    name: str
    role: str
    language: str
    active: bool
    failed_logins: int  # the most wrong passwords in a row from any one client
    locked_until: datetime | None  # the latest lock on the name (for one client or for all)
    created_at: datetime
    session_epoch: int = 0  # raised by a password reset: older sessions end

    @property
    def can_decide(self) -> bool:
        return self.role in DECIDING_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _view(op: Operator, locks: tuple[int, datetime | None] = (0, None)) -> OperatorView:
    return OperatorView(
        name=op.name,
        role=op.role,
        language=op.language,
        active=op.active,
        failed_logins=locks[0],
        locked_until=locks[1],
        created_at=op.created_at,
        session_epoch=op.session_epoch,
    )


def _locks_by_name(s: Session, names: list[str]) -> dict[str, tuple[int, datetime | None]]:
    """Per name: the most failures in a row from one client, and its latest lock."""
    t = SignInThrottle
    rows = s.execute(
        select(t.name, func.max(t.failures), func.max(t.locked_until))
        .where(t.name.in_(names))
        .group_by(t.name)
    ).all()
    return {name: (int(failures or 0), until) for name, failures, until in rows}


def _locks(s: Session, name: str) -> tuple[int, datetime | None]:
    return _locks_by_name(s, [name]).get(name, (0, None))


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def session_lifetime() -> timedelta:
    """How long a signed-in session may sit idle (HENPIN_SESSION_HOURS, default 8 hours).

    A value that is not a number between 0.05 (HENPIN_SESSION_MIN_HOURS, lowered by tests only)
    and 720 hours falls back to the default: a typo must not leave sessions open forever.
    """
    return timedelta(hours=load_settings().session_hours)


# --- the audit log -----------------------------------------------------------------------------


def _add_audit(
    s: Session,
    actor: str,
    action: AuditAction | str,
    *,
    target: str = "",
    where: str = "",
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    s.add(
        AuditEntry(
            at=_now(now),
            actor=actor[:80],
            action=str(action)[:60],
            target=target[:120],
            source=where[:60],
            detail=detail or {},
        )
    )


def audit(
    store_url: str,
    actor: str,
    action: AuditAction | str,
    *,
    target: str = "",
    where: str = "",
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Append one line to the audit log. Lines are only ever added, never changed or removed."""
    with session_scope(store_url) as s:
        _add_audit(s, actor, action, target=target, where=where, detail=detail, now=now)


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    detail: dict[str, Any] = field(default_factory=dict)


def audit_lines(
    store_url: str,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
) -> list[AuditLine]:
    """The newest audit lines first, optionally only one actor's, one action's, or since a time."""
    q = select(AuditEntry)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action == action)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    with session_scope(store_url) as s:
        rows = s.scalars(q.order_by(AuditEntry.id.desc()).limit(limit)).all()
        return [
            AuditLine(e.at, e.actor, e.action, e.target, e.source, dict(e.detail or {}))
            for e in rows
        ]


def audit_actions(store_url: str) -> list[str]:
    """Every action name the log holds, for the audit page's filter."""
    with session_scope(store_url) as s:
        return sorted(s.scalars(select(AuditEntry.action).distinct()).all())


def _csv_cell(value: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet; names typed at the sign-in
    # form reach this log, so they are made inert.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv(lines: list[AuditLine]) -> str:
    """The audit lines as CSV (UTC ISO times; detail as JSON), safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "target", "source", "detail"])
    for line in lines:
        writer.writerow(
            [
                line.at.astimezone(UTC).isoformat(),
                *(
                    _csv_cell(v)
                    for v in (
                        line.actor,
                        line.action,
                        line.target,
                        line.source,
                        json.dumps(line.detail, ensure_ascii=False, sort_keys=True, default=str),
                    )
                ),
            ]
        )
    return out.getvalue()


# --- signing in ----------------------------------------------------------------------------------


class SignInStatus(StrEnum):
    SIGNED_IN = "signed-in"
    REFUSED = "refused"  # name and password do not match (no hint which)
    LOCKED = "locked"  # too many failures: retry after `retry_at`
    INACTIVE = "inactive"  # right password, but an admin deactivated the operator


@dataclass(frozen=True)
class SignInResult:
    status: SignInStatus
    operator: OperatorView | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Attempt:
    """One sign-in attempt as its throttle counted it (before the password was checked)."""

    allowed: bool  # False: already locked, the password is not checked
    failures: int
    locked_until: datetime | None  # set when locked (by this attempt, or before it)
    known_client: bool  # the name signed in from this client before


def _ensure_throttle_row(s: Session, name: str, client: str) -> None:
    values = {"name": name, "client": client, "failures": 0}
    insert_ = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    s.execute(insert_(SignInThrottle).values(**values).on_conflict_do_nothing())


def _count_attempt(s: Session, name: str, client: str, limit: int, now: datetime) -> _Attempt:
    """Count one attempt for (name, client) in a single UPDATE, before the password is checked.

    The attempt that reaches `limit` takes the lock itself (undone if its password is right), so
    no number of parallel attempts gets more than `limit` passwords checked. A lock that has run
    out starts the count afresh.
    """
    _ensure_throttle_row(s, name, client)
    t = SignInThrottle
    lock_over = and_(t.locked_until.is_not(None), t.locked_until <= now)
    failures = case((lock_over, 1), else_=t.failures + 1)
    lock_at = literal(now + LOCKOUT, UTCDateTime())
    row = s.execute(
        update(t)
        .where(t.name == name, t.client == client)
        .where(or_(t.locked_until.is_(None), t.locked_until <= now))
        .values(
            failures=failures,
            locked_until=case((failures >= limit, lock_at), else_=null()),
            last_attempt_at=now,
        )
        .returning(t.failures, t.locked_until, t.last_success_at)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is not None:
        return _Attempt(True, row.failures, row.locked_until, row.last_success_at is not None)
    held = s.execute(
        select(t.failures, t.locked_until, t.last_success_at).where(
            t.name == name, t.client == client
        )
    ).one()
    return _Attempt(False, held.failures, held.locked_until, held.last_success_at is not None)


def _forget_stale_throttles(s: Session, now: datetime) -> None:
    """Counts of clients that never signed in are kept a day after their last attempt (names
    typed at the form are no operators' business longer than that)."""
    t = SignInThrottle
    s.execute(
        delete(t)
        .where(t.last_success_at.is_(None), t.last_attempt_at < now - UNKNOWN_NAME_MEMORY)
        .where(or_(t.locked_until.is_(None), t.locked_until <= now))
        .execution_options(synchronize_session=False)
    )


def _take_attempt(s: Session, name: str, client: str, now: datetime) -> _Attempt:
    """The client's own count, then (for a client the name never signed in from) the name's
    count over all such clients."""
    _forget_stale_throttles(s, now)
    mine = _count_attempt(s, name, client, MAX_FAILED_LOGINS, now)
    if not mine.allowed or mine.known_client:
        return mine
    everyone = _count_attempt(s, name, ALL_CLIENTS, MAX_FAILED_LOGINS_PER_NAME, now)
    if not everyone.allowed:
        return everyone
    locks = [at for at in (mine.locked_until, everyone.locked_until) if at is not None]
    return _Attempt(True, mine.failures, max(locks, default=None), False)


def _forgive_before(s: Session, name: str, client: str, counted: int, now: datetime) -> None:
    """A right password clears the client's failures counted up to and including it (it was
    the `counted`-th); attempts counted after it, still being checked, stay counted, and so
    does a lock one of them took. The client is now one the name signed in from."""
    t = SignInThrottle
    s.execute(
        update(t)
        .where(t.name == name, t.client == client)
        .values(
            failures=case((t.failures > counted, t.failures - counted), else_=0),
            locked_until=null() if counted >= MAX_FAILED_LOGINS else t.locked_until,
            last_success_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _right_password(op: Operator | None, password: str) -> bool:
    if op is None:
        _hasher.hash(password)  # spend the time a real check takes
        return False
    try:
        return _hasher.verify(op.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(
    store_url: str,
    name: str,
    password: str,
    *,
    client: str = "local",
    where: str = "",
    now: datetime | None = None,
) -> SignInResult:
    """Check a name and password, throttled per name and client.

    Five wrong passwords in a row from one client lock that name for that client for 15
    minutes; twenty from clients the name never signed in from lock it for all such clients (a
    client the operator signed in from before keeps its own count only). So a stranger cannot
    lock an operator out of their usual place, and guessing from many places still stops. The
    attempt is counted, in its own transaction, before the password is checked. A name that is
    no operator is counted the same way, so the answers never tell which names exist.
    """
    now = _now(now)
    name = name.strip()[:80]
    client = client[:64] or "local"
    with session_scope(store_url) as s:
        attempt = _take_attempt(s, name, client, now)
        if not attempt.allowed:
            until = attempt.locked_until
            _add_audit(
                s,
                name or "?",
                AuditAction.LOGIN_LOCKED,
                where=where,
                now=now,
                detail={"locked_until": until.isoformat() if until else None},
            )
            return SignInResult(SignInStatus.LOCKED, retry_at=until)
        op = s.scalar(select(Operator).where(Operator.name == name)) if name else None
        if op is not None:
            s.expunge(op)
    # The count is committed; the slow Argon2 checks run without holding any lock.
    right = _right_password(op, password)
    rehashed = None
    if right and op is not None and _hasher.check_needs_rehash(op.password_hash):
        rehashed = _hasher.hash(password)  # keep hashes at today's parameters
    with session_scope(store_url) as s:
        if not right:
            until = attempt.locked_until
            _add_audit(
                s,
                name or "?",
                AuditAction.LOGIN_FAILED,
                where=where,
                now=now,
                detail={
                    "failures": attempt.failures,
                    "locked_until": until.isoformat() if until else None,
                },
            )
            if until is not None:
                return SignInResult(SignInStatus.LOCKED, retry_at=until)
            return SignInResult(SignInStatus.REFUSED)
        assert op is not None
        current = s.scalar(select(Operator).where(Operator.name == name))
        if current is None or current.password_hash != op.password_hash:
            # reset while the password was checked: the one checked no longer holds
            _add_audit(s, name, AuditAction.LOGIN_FAILED, where=where, now=now)
            return SignInResult(SignInStatus.REFUSED)
        _forgive_before(s, name, client, attempt.failures, now)
        if not current.active:
            _add_audit(s, name, AuditAction.LOGIN_INACTIVE, where=where, now=now)
            return SignInResult(SignInStatus.INACTIVE)
        if rehashed is not None:
            current.password_hash = rehashed
        _add_audit(s, current.name, AuditAction.LOGIN, where=where, now=now)
        return SignInResult(SignInStatus.SIGNED_IN, operator=_view(current, _locks(s, name)))


def find_operator(store_url: str, name: str) -> OperatorView | None:
    """The operator as the store has them now (role and active flag may have changed)."""
    with session_scope(store_url) as s:
        op = s.scalar(select(Operator).where(Operator.name == name))
        return _view(op, _locks(s, name)) if op is not None else None


def list_operators(store_url: str) -> list[OperatorView]:
    with session_scope(store_url) as s:
        ops = s.scalars(select(Operator).order_by(Operator.name)).all()
        locks = _locks_by_name(s, [op.name for op in ops])
        return [_view(op, locks.get(op.name, (0, None))) for op in ops]


def set_language(store_url: str, name: str, language: str, *, where: str = "") -> None:
    """Remember the operator's inbox language for their next sign-in."""
    if language not in LANGUAGES:
        raise AccountRefused("unknown-language", f"unknown language {language!r}", lang=language)
    with session_scope(store_url) as s:
        op = s.scalar(select(Operator).where(Operator.name == name))
        if op is not None and op.language != language:
            op.language = language
            _add_audit(
                s,
                name,
                AuditAction.LANGUAGE_CHANGED,
                target=name,
                where=where,
                detail={"language": language},
            )


# --- operator management (admins) -----------------------------------------------------------------


def valid_name(name: str) -> str:
    """An operator's name as the inbox's form and `henpin operator` take it, or AccountRefused:
    1 to 80 characters, none of them control, format or line-separator characters, and no space
    at either end (a name is typed at the sign-in form and shown in the audit log as it is)."""
    if not name or len(name) > 80:
        raise AccountRefused("bad-name", "a name has 1 to 80 characters")
    if any(
        unicodedata.category(c) in _NOT_IN_NAMES or unicodedata.category(c)[0] == "C" for c in name
    ):
        raise AccountRefused("bad-name", "a name has no control characters")
    if name != name.strip():
        raise AccountRefused("bad-name", "a name has no space at its start or end")
    return name


_NOT_IN_NAMES = ("Zl", "Zp")  # line and paragraph separators


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccountRefused("bad-role", f"role must be one of {', '.join(ROLES)}", role=role)
    return role


def _operator(s: Session, name: str) -> Operator:
    op = s.scalar(select(Operator).where(Operator.name == name))
    if op is None:
        raise AccountRefused("no-operator", f"there is no operator {name!r}", name=name)
    return op


@dataclass(frozen=True)
class Actor:
    """Who changes an account, for the audit log and the checks.

    An admin of the inbox is checked again in the change's own transaction (still there, still
    active, still admin). A person at the command line is not an operator: whoever may run
    `henpin` on the machine may read the store anyway; they are recorded by their system login.
    """

    name: str
    where: str
    inbox_admin: bool = True

    @classmethod
    def command_line(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no login name for this uid (some containers)
            user = f"uid {os.getuid()}"
        return cls(name=f"cli:{user}"[:80], where="cli", inbox_admin=False)


def _admin(by: str | Actor, where: str) -> Actor:
    return by if isinstance(by, Actor) else Actor(name=by, where=where)


def _check_actor(s: Session, actor: Actor) -> None:
    """The acting admin is still an active admin, read after taking the lock the change needs:
    a write to their own row (SQLite: the database's write lock; PostgreSQL: that row's lock),
    so no change to them can slip in between this check and the change."""
    if not actor.inbox_admin:
        return
    s.execute(
        update(Operator)
        .where(Operator.name == actor.name)
        .values(session_epoch=Operator.session_epoch)
        .execution_options(synchronize_session=False)
    )
    me = s.scalar(select(Operator).where(Operator.name == actor.name))
    if me is None or not me.active or me.role != "admin":
        raise AccountRefused(
            "not-admin", f"{actor.name} is no longer an active admin", name=actor.name
        )


def _lock_admins(s: Session) -> None:
    """Take the rows of every active admin (PostgreSQL: FOR UPDATE, in name order) before a
    change that could leave none. On SQLite the change's own write serialises writers."""
    s.execute(
        select(Operator.id)
        .where(Operator.role == "admin", Operator.active.is_(True))
        .order_by(Operator.name)
        .with_for_update()
    )


def _an_admin_remains(s: Session, op: Operator) -> None:
    """After the change (flushed, still in its transaction, which holds SQLite's write lock or
    PostgreSQL's admin row locks): refuse, and so roll back, a change that left nobody able to
    manage operators."""
    s.flush()
    remaining = s.scalar(
        select(func.count())
        .select_from(Operator)
        .where(Operator.role == "admin", Operator.active.is_(True))
    )
    if not remaining:
        raise AccountRefused(
            "last-admin",
            f"{op.name} is the last active admin; make another admin first",
            name=op.name,
        )


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_operator(
    store_url: str,
    name: str,
    *,
    role: str,
    by: str | Actor,
    where: str = "",
    language: str = "en",
    password: str | None = None,
) -> str:
    """Add an operator; returns their first password (shown once, never stored in clear).
    A name already taken is refused: a role or password changes only by its own command."""
    actor = _admin(by, where)
    name, role = valid_name(name), _valid_role(role)
    if language not in LANGUAGES:
        language = "en"
    password = password or new_password()
    password_hash = _hasher.hash(password)
    with session_scope(store_url) as s:
        _check_actor(s, actor)
        if s.scalar(select(Operator).where(Operator.name == name)) is not None:
            raise AccountRefused("name-taken", f"there is already an operator {name!r}", name=name)
        s.add(Operator(name=name, password_hash=password_hash, role=role, language=language))
        _add_audit(
            s,
            actor.name,
            AuditAction.OPERATOR_ADDED,
            target=name,
            where=actor.where,
            detail={"role": role},
        )
    return password


def set_role(store_url: str, name: str, role: str, *, by: str | Actor, where: str = "") -> None:
    """Give an operator another role. Two admins demoting each other at once never leave no
    admin: the admins' rows are locked and the count is taken after the change, in one
    transaction."""
    actor = _admin(by, where)
    role = _valid_role(role)
    with session_scope(store_url) as s:
        _lock_admins(s)
        _check_actor(s, actor)
        op = _operator(s, name)
        if op.role == role:
            return
        before, op.role = op.role, role
        _an_admin_remains(s, op)
        _add_audit(
            s,
            actor.name,
            AuditAction.ROLE_CHANGED,
            target=name,
            where=actor.where,
            detail={"from": before, "to": role},
        )


def set_active(
    store_url: str, name: str, active: bool, *, by: str | Actor, where: str = ""
) -> None:
    """Deactivate (signed-in sessions end at their next click) or reactivate an operator."""
    actor = _admin(by, where)
    with session_scope(store_url) as s:
        _lock_admins(s)
        _check_actor(s, actor)
        op = _operator(s, name)
        if op.active == active:
            return
        if not active and name == actor.name:
            raise AccountRefused("self", "you cannot deactivate yourself", name=name)
        op.active = active
        _an_admin_remains(s, op)
        action = AuditAction.REACTIVATED if active else AuditAction.DEACTIVATED
        _add_audit(s, actor.name, action, target=name, where=actor.where)


@dataclass(frozen=True)
class PasswordReset:
    password: str  # shown once
    session_epoch: int  # the operator's sessions from before the reset have ended


def _clear_throttles(s: Session, name: str) -> None:
    s.execute(
        update(SignInThrottle)
        .where(SignInThrottle.name == name)
        .values(failures=0, locked_until=None)
        .execution_options(synchronize_session=False)
    )


def reset_password(
    store_url: str,
    name: str,
    *,
    by: str | Actor,
    where: str = "",
    password: str | None = None,
) -> PasswordReset:
    """A new password for the operator (random unless given; shown once). It lifts their
    lockouts and ends every session they have open: each session carries the operator's session
    epoch, which this raises."""
    actor = _admin(by, where)
    password = password or new_password()
    password_hash = _hasher.hash(password)
    with session_scope(store_url) as s:
        _check_actor(s, actor)
        op = _operator(s, name)
        op.password_hash = password_hash
        op.session_epoch += 1
        _clear_throttles(s, name)
        _add_audit(s, actor.name, AuditAction.PASSWORD_RESET, target=name, where=actor.where)
        return PasswordReset(password, op.session_epoch)


def unlock(store_url: str, name: str, *, by: str | Actor, where: str = "") -> None:
    """Lift the name's sign-in locks, from every client."""
    actor = _admin(by, where)
    with session_scope(store_url) as s:
        _check_actor(s, actor)
        _operator(s, name)
        _clear_throttles(s, name)
        _add_audit(s, actor.name, AuditAction.UNLOCKED, target=name, where=actor.where)


# --- set-up's operators ---


def add_operator(
    store_url: str,
    name: str,
    password: str | None = None,
    role: str = "operator",
    *,
    by: Actor | None = None,
) -> str:
    """Create an operator; returns the password in plain text once (random unless given).

    A name already taken is refused (AccountRefused `name-taken`): a role or password changes
    only by its own command (`accounts.set_role`, `accounts.reset_password`). Name and role are
    checked as the inbox checks them; the addition is audited (by whoever set Henpin up, unless
    `by` says who).
    """
    return create_operator(
        store_url, name, role=role, password=password, by=by or Actor("henpin", "setup", False)
    )


def add_demo_admin(store_url: str, name: str, password: str) -> bool:
    """Demo mode's admin, created on the first `henpin up` only: True when created now. Later
    starts leave it as it is (a password or role an admin changed stays changed)."""
    try:
        add_operator(store_url, name, password, role="admin", by=Actor("henpin up", "demo", False))
    except AccountRefused as refused:
        if refused.code != "name-taken":
            raise
        return False
    return True
