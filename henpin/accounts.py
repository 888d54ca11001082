"""Who may use the inbox, and the trail they leave.

Sign-in with a lockout after repeated failures, the three roles, operator management by admins,
how long an idle session lasts, and the append-only audit log (who did what, when, from where).
The inbox calls these; refusals carry a `code` (and parameters) so each language words them its
own way.
"""

from __future__ import annotations

import csv
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
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Operator

ROLES = ("viewer", "operator", "admin")
DECIDING_ROLES = ("operator", "admin")
LANGUAGES = ("en", "ja")

MAX_FAILED_LOGINS = 5  # this many wrong passwords in a row lock the name ...
LOCKOUT = timedelta(minutes=15)  # ... for this long
DEFAULT_SESSION_HOURS = 8.0
UNKNOWN_NAME_MEMORY = timedelta(days=1)  # failures on names that are no operator count this long

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
    RELEASE = "release"
    OPERATOR_ADDED = "operator-added"
    ROLE_CHANGED = "operator-role-changed"
    DEACTIVATED = "operator-deactivated"
    REACTIVATED = "operator-reactivated"
    PASSWORD_RESET = "operator-password-reset"
    UNLOCKED = "operator-unlocked"
    LANGUAGE_CHANGED = "operator-language-changed"
    AUDIT_EXPORTED = "audit-exported"
    CASE_OPENED = "case-opened"  # a person opened a case by hand (e.g. a parcel case by order id)
    CASE_OPEN_REFUSED = "case-open-refused"


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
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime

    @property
    def can_decide(self) -> bool:
        return self.role in DECIDING_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _view(op: Operator) -> OperatorView:
    return OperatorView(
        name=op.name,
        role=op.role,
        language=op.language,
        active=op.active,
        failed_logins=op.failed_logins,
        locked_until=op.locked_until,
        created_at=op.created_at,
    )


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def session_lifetime() -> timedelta:
    """How long a signed-in session may sit idle (HENPIN_SESSION_HOURS, default 8 hours).

    A value that is not a number between 0.05 and 720 hours falls back to the default: a typo
    must not leave sessions open forever.
    """
    raw = os.environ.get("HENPIN_SESSION_HOURS", "").strip()
    try:
        hours = float(raw) if raw else DEFAULT_SESSION_HOURS
    except ValueError:
        hours = DEFAULT_SESSION_HOURS
    if not 0.05 <= hours <= 720:
        hours = DEFAULT_SESSION_HOURS
    return timedelta(hours=hours)


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


def _last_failure_of_unknown_name(s: Session, name: str, now: datetime) -> AuditEntry | None:
    return s.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.action == AuditAction.LOGIN_FAILED,
            AuditEntry.actor == name[:80],
            AuditEntry.at >= now - UNKNOWN_NAME_MEMORY,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )


def _iso(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def sign_in(
    store_url: str, name: str, password: str, *, where: str = "", now: datetime | None = None
) -> SignInResult:
    """Check a name and password; count failures and lock the name after too many.

    A name that is no operator is counted and locked the same way (through the audit log), so
    the answers never tell an attacker which names exist. While locked, the password is not even
    checked.
    """
    now = _now(now)
    name = name.strip()
    with session_scope(store_url) as s:
        op = s.scalar(select(Operator).where(Operator.name == name)) if name else None
        if op is None:
            last = _last_failure_of_unknown_name(s, name, now)
            detail = last.detail if last is not None else {}
            locked_until = _iso(detail.get("locked_until"))
            failures = int(detail.get("failures", 0)) if locked_until is None else 0
        else:
            locked_until, failures = op.locked_until, op.failed_logins
        if locked_until is not None and locked_until > now:
            _add_audit(
                s,
                name or "?",
                AuditAction.LOGIN_LOCKED,
                where=where,
                now=now,
                detail={"locked_until": locked_until.isoformat()},
            )
            return SignInResult(SignInStatus.LOCKED, retry_at=locked_until)
        if op is None:
            _hasher.hash(password)  # spend the time a real check takes
            right = False
        else:
            try:
                right = _hasher.verify(op.password_hash, password)
            except (VerificationError, InvalidHashError):
                right = False
        if not right:
            failures += 1
            lock = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
            if op is not None:
                op.failed_logins = 0 if lock else failures
                op.locked_until = lock
            _add_audit(
                s,
                name or "?",
                AuditAction.LOGIN_FAILED,
                where=where,
                now=now,
                detail={"failures": failures, "locked_until": lock.isoformat() if lock else None},
            )
            if lock is not None:
                return SignInResult(SignInStatus.LOCKED, retry_at=lock)
            return SignInResult(SignInStatus.REFUSED)
        assert op is not None
        if not op.active:
            _add_audit(s, op.name, AuditAction.LOGIN_INACTIVE, where=where, now=now)
            return SignInResult(SignInStatus.INACTIVE)
        op.failed_logins, op.locked_until = 0, None
        if _hasher.check_needs_rehash(op.password_hash):
            op.password_hash = _hasher.hash(password)  # keep hashes at today's parameters
        _add_audit(s, op.name, AuditAction.LOGIN, where=where, now=now)
        return SignInResult(SignInStatus.SIGNED_IN, operator=_view(op))


def find_operator(store_url: str, name: str) -> OperatorView | None:
    """The operator as the store has them now (role and active flag may have changed)."""
    with session_scope(store_url) as s:
        op = s.scalar(select(Operator).where(Operator.name == name))
        return _view(op) if op is not None else None


def list_operators(store_url: str) -> list[OperatorView]:
    with session_scope(store_url) as s:
        return [_view(op) for op in s.scalars(select(Operator).order_by(Operator.name)).all()]


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


def _valid_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 80:
        raise AccountRefused("bad-name", "a name has 1 to 80 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise AccountRefused("bad-name", "a name has no control characters")
    return name


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise AccountRefused("bad-role", f"role must be one of {', '.join(ROLES)}", role=role)
    return role


def _operator(s: Session, name: str) -> Operator:
    op = s.scalar(select(Operator).where(Operator.name == name))
    if op is None:
        raise AccountRefused("no-operator", f"there is no operator {name!r}", name=name)
    return op


def _other_active_admins(s: Session, name: str) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(Operator)
            .where(Operator.role == "admin", Operator.active.is_(True), Operator.name != name)
        )
        or 0
    )


def _keep_an_admin(s: Session, op: Operator) -> None:
    """Refuse a change that would leave nobody able to manage operators."""
    if op.role == "admin" and op.active and _other_active_admins(s, op.name) == 0:
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
    by: str,
    where: str = "",
    language: str = "en",
    password: str | None = None,
) -> str:
    """Add an operator; returns their first password (shown once, never stored in clear)."""
    name, role = _valid_name(name), _valid_role(role)
    if language not in LANGUAGES:
        language = "en"
    password = password or new_password()
    with session_scope(store_url) as s:
        if s.scalar(select(Operator).where(Operator.name == name)) is not None:
            raise AccountRefused("name-taken", f"there is already an operator {name!r}", name=name)
        s.add(
            Operator(name=name, password_hash=_hasher.hash(password), role=role, language=language)
        )
        _add_audit(
            s, by, AuditAction.OPERATOR_ADDED, target=name, where=where, detail={"role": role}
        )
    return password


def set_role(store_url: str, name: str, role: str, *, by: str, where: str = "") -> None:
    role = _valid_role(role)
    with session_scope(store_url) as s:
        op = _operator(s, name)
        if op.role == role:
            return
        if role != "admin":
            _keep_an_admin(s, op)
        before, op.role = op.role, role
        _add_audit(
            s,
            by,
            AuditAction.ROLE_CHANGED,
            target=name,
            where=where,
            detail={"from": before, "to": role},
        )


def set_active(store_url: str, name: str, active: bool, *, by: str, where: str = "") -> None:
    """Deactivate (signed-in sessions end at their next click) or reactivate an operator."""
    with session_scope(store_url) as s:
        op = _operator(s, name)
        if op.active == active:
            return
        if not active:
            if name == by:
                raise AccountRefused("self", "you cannot deactivate yourself", name=name)
            _keep_an_admin(s, op)
        op.active = active
        action = AuditAction.REACTIVATED if active else AuditAction.DEACTIVATED
        _add_audit(s, by, action, target=name, where=where)


def reset_password(store_url: str, name: str, *, by: str, where: str = "") -> str:
    """A new password for the operator (shown once); also lifts a lockout."""
    password = new_password()
    with session_scope(store_url) as s:
        op = _operator(s, name)
        op.password_hash = _hasher.hash(password)
        op.failed_logins, op.locked_until = 0, None
        _add_audit(s, by, AuditAction.PASSWORD_RESET, target=name, where=where)
    return password


def unlock(store_url: str, name: str, *, by: str, where: str = "") -> None:
    with session_scope(store_url) as s:
        op = _operator(s, name)
        op.failed_logins, op.locked_until = 0, None
        _add_audit(s, by, AuditAction.UNLOCKED, target=name, where=where)
