"""Sign-in: name and password, checked against the operators in the case store."""

from __future__ import annotations

import streamlit as st

from ui import session
from ui.i18n import t

st.title(t("app.title"))
st.subheader(t("login.title"))
st.write(t("login.intro"))

with st.form("login", clear_on_submit=True):
    name = st.text_input(t("login.name"), key="login.name")
    password = st.text_input(t("login.password"), type="password", key="login.password")
    submitted = st.form_submit_button(t("login.submit"), type="primary", key="login.submit")

if submitted:
    if session.sign_in(name, password) is None:
        st.error(t("login.failed"))  # one message for both: no hint which one was wrong
    else:
        st.rerun()
