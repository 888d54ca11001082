"""Henpin's inbox: `streamlit run ui/inbox.py`.

Signs the operator in, then offers the inbox, the case page, bulk decisions, the dashboard and,
for admins, operators and the audit log. Every page requires sign-in: signed out, the only page
there is the sign-in page. An idle session ends after HENPIN_SESSION_HOURS (default 8), any
session HENPIN_SESSION_MAX_HOURS after sign-in (default 12); every button re-checks the session
before it acts (ui/session.py).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from ui import display, session
from ui.i18n import LANGUAGES, current_language, label, t

SCREENS = Path(__file__).parent / "screens"

st.set_page_config(page_title="Henpin inbox", page_icon="📮", layout="wide")
# Operators see the app, not Streamlit's developer menu, and never a traceback (it could show
# configuration); errors reach them as the plain messages below.
st.set_option("client.toolbarMode", "viewer")
st.set_option("client.showErrorDetails", "none")
session.start()
try:
    session.check()
except SQLAlchemyError as exc:
    st.error(t("store.unreachable", error=type(exc).__name__))
    st.stop()

lang = current_language()
st.sidebar.selectbox(
    t("app.language"),
    options=list(LANGUAGES),
    index=list(LANGUAGES).index(lang),
    format_func=LANGUAGES.__getitem__,
    key=f"app.language.{lang}",  # a fresh widget when the language changes elsewhere (sign-in)
    on_change=lambda: session.set_language(st.session_state[f"app.language.{lang}"]),
)
if display.local_zone() != "UTC":  # the operator's times are local: UTC is a switch away
    st.sidebar.toggle(
        t("time.in_utc"),
        key=display.UTC_TOGGLE,
        help=t("time.zone_help", zone=display.local_zone()),
    )

# The signed-in pages' addresses. Signed out, each of them shows the sign-in page, so a link from a
# notification (`/case?case=42`) or a colleague opens that page, with its query, once signed in
# (an address Streamlit does not know would say "Page not found" and lose it).
SIGNED_IN_PATHS = ("case", "bulk", "message", "parcel", "dashboard", "operators", "audit", "replay")

operator = session.operator()
if operator is None:
    login = SCREENS / "login.py"
    page = st.navigation(
        [
            st.Page(login, title=t("login.title"), url_path="login", default=True),
            *(st.Page(login, title=t("login.title"), url_path=path) for path in SIGNED_IN_PATHS),
        ],
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
    work = [
        st.Page(SCREENS / "cases.py", title=t("nav.inbox"), icon=":material/inbox:", default=True),
        st.Page(
            SCREENS / "case.py", title=t("nav.case"), icon=":material/description:", url_path="case"
        ),
    ]
    if operator.can_decide:
        work += [
            st.Page(
                SCREENS / "bulk.py",
                title=t("nav.bulk"),
                icon=":material/checklist:",
                url_path="bulk",
            ),
            st.Page(
                SCREENS / "message_case.py",
                title=t("nav.message_case"),
                icon=":material/mail:",
                url_path="message",
            ),
            st.Page(
                SCREENS / "parcel_case.py",
                title=t("nav.parcel_case"),
                icon=":material/local_shipping:",
                url_path="parcel",
            ),
        ]
    pages = {
        t("nav.section.work"): work,
        t("nav.section.numbers"): [
            st.Page(
                SCREENS / "dashboard.py",
                title=t("nav.dashboard"),
                icon=":material/bar_chart:",
                url_path="dashboard",
            )
        ],
    }
    if operator.is_admin:
        pages[t("nav.section.admin")] = [
            st.Page(
                SCREENS / "operators.py",
                title=t("nav.operators"),
                icon=":material/group:",
                url_path="operators",
            ),
            st.Page(
                SCREENS / "audit.py",
                title=t("nav.audit"),
                icon=":material/receipt_long:",
                url_path="audit",
            ),
            st.Page(
                SCREENS / "replay.py",
                title=t("nav.replay"),
                icon=":material/compare_arrows:",
                url_path="replay",
            ),
        ]
    page = st.navigation(pages)
    # A bad edit of policies.yaml stops nothing (the last good policy stays in force), but
    # everyone working cases should see it until the owner fixes it.
    problem = session.policy_problem()
    if problem:
        st.warning(f"{t('policy.bad_edit')}\n\n```\n{problem}\n```", icon=":material/warning:")

try:
    page.run()
except SQLAlchemyError as exc:
    # Never the URL (it may hold a database password): only what kind of failure it was.
    st.error(t("store.unreachable", error=type(exc).__name__))
