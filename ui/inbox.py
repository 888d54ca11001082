"""Henpin's inbox: `streamlit run ui/inbox.py`.

Signs the operator in, then offers the inbox (cases waiting for a decision, soonest deadline
first) and the case page. Every page requires sign-in: signed out, the only page there is the
sign-in page. Data comes only through `henpin.service`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from ui import display, session
from ui.i18n import LANGUAGES, current_language, label, t

SCREENS = Path(__file__).parent / "screens"

st.set_page_config(page_title="Henpin inbox", page_icon="📮", layout="wide")
session.start()

lang = current_language()
st.sidebar.selectbox(
    t("app.language"),
    options=list(LANGUAGES),
    index=list(LANGUAGES).index(lang),
    format_func=LANGUAGES.__getitem__,
    key=f"app.language.{lang}",  # a fresh widget when the language changes elsewhere (sign-in)
    on_change=lambda: session.set_language(st.session_state[f"app.language.{lang}"]),
)

operator = session.operator()
if operator is None:
    page = st.navigation(
        [st.Page(SCREENS / "login.py", title=t("login.title"), url_path="login")],
        position="hidden",
    )
else:
    st.sidebar.markdown(
        t(
            "session.signed_in_as",
            name=display.plain(operator.name),
            role=label("role", operator.role),
        )
    )
    if st.sidebar.button(t("session.sign_out"), key="session.sign_out"):
        session.sign_out()
        st.rerun()
    page = st.navigation(
        [
            st.Page(SCREENS / "cases.py", title=t("nav.inbox"), icon="📥", default=True),
            st.Page(SCREENS / "case.py", title=t("nav.case"), icon="📄", url_path="case"),
        ]
    )

try:
    page.run()
except SQLAlchemyError as exc:
    # Never the URL (it may hold a database password): only what kind of failure it was.
    st.error(t("store.unreachable", error=type(exc).__name__))
