"""The inbox: cases waiting for a decision, soonest deadline first; then those in progress and,
on request, the recently closed ones with their outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from henpin.service import CaseSummary, list_cases
from ui import display, session
from ui.i18n import label, t

CASE_PAGE = "screens/case.py"
RECENT_CLOSED = 20

session.require_operator()
store_url = session.store_url()
now = datetime.now(UTC)


def case_row(case: CaseSummary) -> None:
    """One case in one line: what it is, what policy recommends, its deadline or outcome."""
    with st.container(border=True):
        what, advice, when, go = st.columns([4, 5, 3, 1], vertical_alignment="center")
        flag = f":red-badge[⚠ {t('inbox.needs_attention')}] " if case.needs_attention else ""
        what.markdown(
            f"{flag}**{label('case_type', case.type)}** · `{case.order_id}` · "
            f"{case.marketplace or case.marketplace_id}"
        )
        what.caption(label("state", case.state))
        rec = case.recommendation
        if rec.get("action"):
            advice.markdown(t("inbox.recommends", action=label("choice", rec["action"])))
            if rec.get("rule"):
                advice.caption(t("inbox.rule", rule=rec["rule"]))
        else:
            advice.caption(t("inbox.no_recommendation"))
        if case.outcome:
            when.markdown(t("inbox.outcome", outcome=label("outcome", case.outcome)))
        else:
            when.markdown(display.time_left(case.deadline, now))
        if go.button(t("inbox.open"), key=f"inbox.open.{case.id}"):
            st.switch_page(CASE_PAGE, query_params={"case": str(case.id)})


title, refresh = st.columns([6, 1], vertical_alignment="bottom")
title.title(t("inbox.title"))
refresh.button(t("inbox.refresh"), key="inbox.refresh")  # any click reruns the page

waiting = list_cases(store_url, state="waiting")  # the service sorts them: soonest deadline first
st.subheader(t("inbox.waiting", count=len(waiting)))
if not waiting:
    st.info(t("inbox.waiting_none"))
for case in waiting:
    case_row(case)

in_progress = list_cases(store_url, state="acting") + list_cases(store_url, state="open")
if in_progress:
    st.subheader(t("inbox.in_progress", count=len(in_progress)))
    for case in in_progress:
        case_row(case)

if st.toggle(t("inbox.show_closed"), key="inbox.show_closed"):
    st.subheader(t("inbox.closed"))
    closed = list_cases(store_url, state="closed", limit=RECENT_CLOSED)
    if not closed:
        st.caption(t("inbox.closed_none"))
    for case in closed:
        case_row(case)
