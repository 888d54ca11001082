"""One browser session of the inbox: where the case store is, who is signed in, what they decided.

Everything here is set up once per session by `start()`, the inbox's edge: its `Settings` are read
once, and the application's start-up (`henpin.app.startup`) brings the case store up to date and
gives its URL, which pages hand to the application's functions. Pages read all of it through these
functions instead of poking `st.session_state` directly. `check()` runs before every page: it ends a session
that sat idle too long (HENPIN_SESSION_HOURS), that is older than HENPIN_SESSION_MAX_HOURS, or
whose operator's password was reset since, and follows what admins changed meanwhile (a
deactivated operator is signed out at their next click, a new role applies at once).

Streamlit runs a widget's callback before the page script, so before `check()`: every callback
is wrapped in `guarded()`, which checks again and acts only for a session that still holds.
Ending a session, by sign-out or by any of these checks, clears all of its state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, ParamSpec

import streamlit as st

from henpin import accounts
from henpin.accounts import AuditAction, SignInResult, SignInStatus
from henpin.app.startup import open_case_store
from henpin.policy import PolicyHolder
from henpin.settings import Settings, load_settings
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES


@dataclass(frozen=True)
class SignedIn:
    """The operator using this browser session."""

    name: str
    role: str
    signed_in_at: datetime
    session_epoch: int = 0  # the operator's epoch at sign-in; a password reset raises it

    @property
    def can_decide(self) -> bool:
        """Viewers read cases; operators and admins decide them."""
        return self.role in accounts.DECIDING_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Sent:
    """What came of the last decision this session sent on a case, for the case page to show."""

    step: str  # the question it answered
    level: str  # success, warning or error: how the page shows it
    message: str
    settled: bool = True  # the question got an answer (ours or someone's): no form again


SETTINGS = "edge.settings"  # dotted: kept apart from the session's own keys, as widgets' are
POLICY_FILE = "edge.policy_file"


def settings() -> Settings:
    """This session's settings: read from the environment once, when the session starts."""
    if SETTINGS not in st.session_state:
        st.session_state[SETTINGS] = load_settings()
    found: Settings = st.session_state[SETTINGS]
    return found


def policy_problem() -> str | None:
    """What is wrong with policies.yaml on disk (file, line, key path), or None when it is good.
    Runners keep the last good policy in force meanwhile; the inbox says so on every page. One
    watcher per session: it rereads the file only when it changed."""
    if POLICY_FILE not in st.session_state:
        st.session_state[POLICY_FILE] = PolicyHolder(Path(settings().policies))
    holder: PolicyHolder = st.session_state[POLICY_FILE]
    return holder.problem()


def _browser_language() -> str:
    """Before sign-in: the browser's language when the inbox speaks it, else English."""
    try:
        locale: object = st.context.locale
    except Exception:  # no browser behind this run (tests, bare mode)
        locale = None
    lang = locale.lower().split("-")[0] if isinstance(locale, str) else DEFAULT_LANGUAGE
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def start() -> None:
    """Set up this browser session's state, once."""
    if "store_url" in st.session_state:
        return
    st.session_state.store_url = open_case_store(settings())  # the inbox's start-up
    st.session_state.operator = None
    st.session_state.last_active = None
    st.session_state.lang = _browser_language()
    st.session_state.sent = {}
    st.session_state.notice = None  # a message for the sign-in page (why you were signed out)


def store_url() -> str:
    url: str = st.session_state.store_url
    return url


def where() -> str:
    """From where this session acts, for the audit log: the client's address, and the address a
    reverse proxy says it forwarded for (recorded, not trusted: either can be spoofed)."""
    try:
        ip: object = st.context.ip_address
        forwarded: object = st.context.headers.get("X-Forwarded-For")
    except Exception:  # no browser connection behind this run
        ip, forwarded = None, None
    # Only strings count: without a browser (tests, bare mode) Streamlit hands back stand-ins.
    place = "inbox " + (ip if isinstance(ip, str) and ip else "localhost")
    if isinstance(forwarded, str) and forwarded:
        place += f" for {forwarded.split(',')[0].strip()}"
    return place[:60]


def client() -> str:
    """Whom sign-in failures are counted against, with the name (see `client_of`)."""
    try:
        ip: object = st.context.ip_address
        forwarded: object = st.context.headers.get("X-Forwarded-For")
    except Exception:  # no browser connection behind this run
        ip, forwarded = None, None
    return client_of(ip, forwarded)


def client_of(ip: object, forwarded: object) -> str:
    """The browser's address: Streamlit's `st.context.ip_address` (the TCP peer, which a client
    cannot forge; None when it is this machine). A connection from this machine is the reverse
    proxy the README puts in front of the inbox: the address it appended last to
    X-Forwarded-For is the browser's (earlier entries come from the client and are not
    trusted). With neither, "localhost". A per-browser-session id would not do: a stranger gets
    a new one with every connection."""
    if isinstance(ip, str) and ip:
        return ip
    if isinstance(forwarded, str) and (last := forwarded.split(",")[-1].strip()):
        return f"proxied {last}"[:64]
    return "localhost"


def operator() -> SignedIn | None:
    op: SignedIn | None = st.session_state.get("operator")
    return op


def require_operator() -> SignedIn:
    """The signed-in operator; a page stops here if nobody is signed in."""
    op = operator()
    if op is None:
        st.stop()
    return op


def require_admin() -> SignedIn:
    """The signed-in admin; anyone else gets a plain refusal and the page stops."""
    from ui.i18n import t

    op = require_operator()
    if not op.is_admin:
        st.error(t("admin.only"))
        st.stop()
    return op


def require_decider() -> SignedIn:
    """The signed-in operator, if their role may decide cases; a viewer gets a plain refusal
    and the page stops."""
    from ui.i18n import label, t

    op = require_operator()
    if not op.can_decide:
        st.error(t("decision.not-allowed", role=label("role", op.role)))
        st.stop()
    return op


def _end(notice: tuple[str, dict[str, Any]] | None) -> None:
    """Clear everything this session held (flash messages, a password shown once, widget
    values, what it sent), keeping only its language and why it ended."""
    lang = st.session_state.get("lang")
    st.session_state.clear()
    start()
    if lang in LANGUAGES:
        st.session_state.lang = lang
    st.session_state.notice = notice


def max_session_age() -> timedelta:
    """How long a session lasts after its sign-in, however active (HENPIN_SESSION_MAX_HOURS)."""
    return timedelta(hours=settings().session_max_hours)


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 2)


def _why_over(op: SignedIn, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """Why the session must end now, or None: idle too long, too old, deactivated or removed,
    or the operator's password was reset since it signed in."""
    last: datetime | None = st.session_state.get("last_active")
    idle = accounts.session_lifetime()
    if last is None or now - last > idle:
        return ("session.expired", {"hours": _hours(idle)})
    oldest = max_session_age()
    if now - op.signed_in_at > oldest:
        return ("session.too_old", {"hours": _hours(oldest)})
    current = accounts.find_operator(store_url(), op.name)
    if current is None or not current.active:
        return ("session.deactivated", {})
    if current.session_epoch != op.session_epoch:
        return ("session.password_reset", {})
    if current.role != op.role:
        st.session_state.operator = replace(op, role=current.role)
    return None


def check(now: datetime | None = None) -> None:
    """Before each page and each callback: end a session that no longer holds (audited), follow
    admins' role changes, note this activity."""
    op = operator()
    if op is None:
        return
    now = now or datetime.now(UTC)
    why = _why_over(op, now)
    if why is not None:
        accounts.audit(
            store_url(),
            op.name,
            AuditAction.SESSION_EXPIRED,
            where=where(),
            detail={"why": why[0].removeprefix("session.")},
        )
        _end(why)
        return
    st.session_state.last_active = now


Need = Literal["signed-in", "decider", "admin"]
P = ParamSpec("P")


def still_allowed(need: Need) -> SignedIn | None:
    """Check the session again (as `check()` does) and return its operator if they are still
    signed in and their current role allows `need`; else None."""
    check()
    op = operator()
    if op is None:
        return None
    if (need == "admin" and not op.is_admin) or (need == "decider" and not op.can_decide):
        return None
    return op


def guarded(callback: Callable[P, None], need: Need = "signed-in") -> Callable[P, None]:
    """`callback`, run only if the session still holds and allows `need` when it is clicked.

    Streamlit runs callbacks before the page script, so before `check()`: without this, a
    session that idled out, was deactivated, demoted or had its password reset would still act
    once. When the session no longer holds, nothing is done; the page that follows shows why.
    """

    @functools.wraps(callback)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        if still_allowed(need) is not None:
            callback(*args, **kwargs)

    return run


def notice() -> tuple[str, dict[str, Any]] | None:
    """Why this session was signed out (shown once on the sign-in page)."""
    found: tuple[str, dict[str, Any]] | None = st.session_state.get("notice")
    return found


def sign_in(name: str, password: str) -> SignInResult:
    """Check the name and password (with the lockout); on success this session is theirs."""
    result = accounts.sign_in(store_url(), name, password, client=client(), where=where())
    if result.status is SignInStatus.SIGNED_IN and result.operator is not None:
        op = result.operator
        _end(None)  # nothing of a session before this sign-in carries over
        now = datetime.now(UTC)
        st.session_state.operator = SignedIn(
            name=op.name, role=op.role, signed_in_at=now, session_epoch=op.session_epoch
        )
        st.session_state.last_active = now
        if op.language in LANGUAGES:
            st.session_state.lang = op.language
    return result


def sign_out() -> None:
    """End this session: audited, and all its state cleared."""
    op = operator()
    if op is not None:
        accounts.audit(store_url(), op.name, AuditAction.LOGOUT, where=where())
    _end(None)


def keep_after_own_reset(epoch: int) -> None:
    """An admin who reset their own password keeps this session (their other ones end)."""
    op = operator()
    if op is not None:
        st.session_state.operator = replace(op, session_epoch=epoch)


def set_language(lang: str) -> None:
    """Switch this session's language; a signed-in operator keeps it for next time."""
    if lang not in LANGUAGES:
        return
    st.session_state.lang = lang
    check()  # a callback: the session is checked before it writes anything for its operator
    op = operator()
    if op is not None:
        accounts.set_language(store_url(), op.name, lang, where=where())


def sent_decision(case_id: int) -> Sent | None:
    """What the last decision this session sent on the case came to, if it sent one."""
    sent: Sent | None = st.session_state.sent.get(case_id)
    return sent


def remember_sent(case_id: int, sent: Sent) -> None:
    st.session_state.sent[case_id] = sent


def prefect_ui_url() -> str | None:
    """The Prefect UI's address for links to flow runs (HENPIN_PREFECT_UI_URL), if configured."""
    return settings().prefect_ui_url


def query_int(name: str) -> int | None:
    """An integer from the page's URL (`?case=12`), or None when absent or not a number."""
    raw: Any = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def holds(now: datetime | None = None) -> bool:
    """Whether this session still holds (as `check()` judges it), without counting this as the
    operator's activity: for the inbox's auto-refresh, which must let an idle session end."""
    op = operator()
    if op is None:
        return False
    return _why_over(op, now or datetime.now(UTC)) is None
