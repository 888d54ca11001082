"""One browser session of the inbox: where the case store is, who is signed in, what they decided.

Everything here is set up once per session by `start()`; pages read it through these functions
instead of poking `st.session_state` directly, so session expiry, failed-login limits and roles
(issue 4) have one place to go.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from henpin.service import authenticate
from henpin.settings import load_settings
from henpin.store.db import migrate
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES

DECIDING_ROLES = ("operator", "admin")


@dataclass(frozen=True)
class SignedIn:
    """The operator using this browser session."""

    name: str
    role: str
    signed_in_at: datetime

    @property
    def can_decide(self) -> bool:
        """Viewers read cases; operators and admins decide them."""
        return self.role in DECIDING_ROLES


@dataclass(frozen=True)
class Sent:
    """What came of the last decision this session sent on a case, for the case page to show."""

    step: str  # the question it answered
    level: str  # success, warning or error: how the page shows it
    message: str

    @property
    def settled(self) -> bool:
        """The question got an answer (ours or someone's): the form must not be offered again."""
        return self.level != "error"


@st.cache_resource(show_spinner=False)
def _prepared_store(url: str) -> str:
    """Bring the case store's schema up to date once per process (a no-op when it already is)."""
    migrate(url)
    return url


def start() -> None:
    """Set up this browser session's state, once."""
    if "store_url" in st.session_state:
        return
    st.session_state.store_url = load_settings().store_url
    st.session_state.operator = None
    st.session_state.lang = DEFAULT_LANGUAGE
    st.session_state.sent = {}


def store_url() -> str:
    return _prepared_store(str(st.session_state.store_url))


def operator() -> SignedIn | None:
    op: SignedIn | None = st.session_state.get("operator")
    return op


def require_operator() -> SignedIn:
    """The signed-in operator; a page stops here if nobody is signed in."""
    op = operator()
    if op is None:
        st.stop()
    return op


def sign_in(name: str, password: str) -> SignedIn | None:
    """Check the name and password against the store; on success this session is theirs."""
    op = authenticate(store_url(), name.strip(), password)
    if op is None:
        return None
    signed_in = SignedIn(name=op.name, role=op.role, signed_in_at=datetime.now(UTC))
    st.session_state.operator = signed_in
    if op.language in LANGUAGES:
        st.session_state.lang = op.language
    st.session_state.sent = {}
    return signed_in


def sign_out() -> None:
    st.session_state.operator = None
    st.session_state.sent = {}


def set_language(lang: str) -> None:
    if lang in LANGUAGES:
        st.session_state.lang = lang


def sent_decision(case_id: int) -> Sent | None:
    """What the last decision this session sent on the case came to, if it sent one."""
    sent: Sent | None = st.session_state.sent.get(case_id)
    return sent


def remember_sent(case_id: int, sent: Sent) -> None:
    st.session_state.sent[case_id] = sent


def prefect_ui_url() -> str | None:
    """The Prefect UI's address for links to flow runs (HENPIN_PREFECT_UI_URL), if configured."""
    url = os.environ.get("HENPIN_PREFECT_UI_URL", "").strip()
    return url.rstrip("/") or None


def query_int(name: str) -> int | None:
    """An integer from the page's URL (`?case=12`), or None when absent or not a number."""
    raw: Any = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
