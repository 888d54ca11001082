"""Sign-in: name and password, checked against the operators in the case store.

Five wrong passwords in a row from one client (address) lock the name there for 15 minutes;
twenty from clients the name never signed in from lock it for all of those (henpin.accounts.
sign_in). The message says when to retry.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from henpin.accounts import SignInStatus
from ui import display, session
from ui.i18n import t

st.title(t("app.title"))
st.subheader(t("login.title"))
st.write(t("login.intro"))
if (why := session.notice()) is not None:
    key, params = why
    st.info(t(key, **params))

with st.form("login", clear_on_submit=True):
    name = st.text_input(t("login.name"), key="login.name", max_chars=80)
    password = st.text_input(t("login.password"), type="password", key="login.password")
    submitted = st.form_submit_button(t("login.submit"), type="primary", key="login.submit")

if submitted:
    result = session.sign_in(name, password)
    if result.status is SignInStatus.SIGNED_IN:
        st.rerun()
    elif result.status is SignInStatus.LOCKED and result.retry_at is not None:
        left = display.span(result.retry_at - datetime.now(UTC))
        st.error(t("login.locked", at=display.at(result.retry_at), left=left))
    elif result.status is SignInStatus.INACTIVE:
        st.error(t("login.inactive"))
    else:
        st.error(t("login.failed"))  # one message for both: no hint which one was wrong
