"""The dashboard: what the cancellation rate sees, refunds and fees recovered, how fast cases
are decided, and how old the open ones are. Numbers from `henpin.metrics`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from henpin.app import metrics
from ui import display, session
from ui.i18n import label, t, worded

PERIODS = {
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "all": None,
}

session.require_operator()
store_url = session.store_url()
now = datetime.now(UTC)

title, period = st.columns([5, 2], vertical_alignment="bottom")
title.title(t("dash.title"))
chosen = period.selectbox(
    t("dash.period"),
    list(PERIODS),
    index=1,
    format_func=worded(PERIODS, lambda v: t(f"dash.period.{v}")),
    key="dash.period",
)
window = PERIODS[chosen]
since = now - window if window is not None else None


def bar(frame: pd.DataFrame, x: str, y: str, colour: str, x_order: list[str] | None = None) -> None:
    """A stacked bar chart of a frame with columns x, y and c (colour), titled in words."""
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("x:N", title=x, sort=x_order, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("y:Q", title=y),
            color=alt.Color("c:N", title=colour),
            tooltip=[
                alt.Tooltip("x:N", title=x),
                alt.Tooltip("c:N", title=colour),
                alt.Tooltip("y:Q", title=y),
            ],
        )
    )
    st.altair_chart(chart.properties(height=260))


def short_market(marketplace_id: str) -> str:
    return display.marketplace_name(marketplace_id)


# --- cancellations ----------------------------------------------------------------------------------
st.subheader(t("dash.cancellations"))
st.caption(t("dash.cancellations_help"))
cancels = metrics.cancellations_by_cause(store_url, since=since)
buyer = sum(c.orders for c in cancels if c.cause == "buyer")
seller = sum(c.orders for c in cancels if c.cause == "seller")
a, b, c = st.columns(3)
a.metric(t("dash.cause.buyer"), buyer)
b.metric(t("dash.cause.seller"), seller)
c.metric(t("dash.seller_share"), f"{seller / (buyer + seller):.0%}" if buyer + seller else "—")
if cancels:
    bar(
        pd.DataFrame(
            [
                {
                    "x": short_market(r.marketplace_id),
                    "y": r.orders,
                    "c": t(f"dash.cause.{r.cause}"),
                }
                for r in cancels
            ]
        ),
        t("col.marketplace"),
        t("dash.orders"),
        t("dash.cause"),
    )
else:
    st.caption(t("dash.none"))

# --- refunds and fees -------------------------------------------------------------------------------
st.subheader(t("dash.refunds"))
refunds = metrics.refunds_by_reason(store_url, since=since)
if refunds:
    left, right = st.columns([3, 2])
    with left:
        st.dataframe(
            [
                {
                    t("col.reason"): label("adjustment", r.reason),
                    t("col.marketplace"): short_market(r.marketplace_id),
                    t("dash.refunds_count"): r.refunds,
                    t("dash.amount"): display.money_of(r.amount, r.currency, r.marketplace_id),
                }
                for r in refunds
            ],
            hide_index=True,
        )
    with right:
        bar(
            pd.DataFrame(
                [
                    {
                        "x": label("adjustment", r.reason),
                        "y": r.refunds,
                        "c": short_market(r.marketplace_id),
                    }
                    for r in refunds
                ]
            ),
            t("col.reason"),
            t("dash.refunds_count"),
            t("col.marketplace"),
        )
else:
    st.caption(t("dash.none"))

st.subheader(t("dash.fees"))
fees = metrics.fees_recovered(store_url, since=since)
if fees:
    columns = st.columns(min(len(fees), 4))
    for i, f in enumerate(fees):
        columns[i % len(columns)].metric(
            f"{short_market(f.marketplace_id)}",
            display.money_of(f.amount, f.currency, f.marketplace_id),
            help=t("dash.fees_cases", count=f.cases),
        )
else:
    st.caption(t("dash.fees_none"))

# --- speed and backlog ------------------------------------------------------------------------------
st.subheader(t("dash.time_to_decision"))
times = metrics.time_to_decision(store_url, since=since)
if times:
    st.dataframe(
        [
            {
                t("col.case_type"): label("case_type", d.case_type),
                t("dash.by_person"): d.by_person,
                t("dash.by_deadline"): d.by_deadline,
                t("dash.median"): display.span(timedelta(minutes=d.median_minutes))
                if d.median_minutes is not None
                else "—",
                t("dash.p90"): display.span(timedelta(minutes=d.p90_minutes))
                if d.p90_minutes is not None
                else "—",
            }
            for d in times
        ],
        hide_index=True,
    )
else:
    st.caption(t("dash.none"))

st.subheader(t("dash.open_by_age"))
ages = metrics.open_cases_by_age(store_url, now=now)
if ages:
    order = [t(f"dash.age.{name}") for name, _ in metrics.AGE_BUCKETS]
    bar(
        pd.DataFrame(
            [
                {"x": t(f"dash.age.{r.age}"), "y": r.cases, "c": label("case_type", r.case_type)}
                for r in ages
            ]
        ),
        t("dash.age"),
        t("dash.cases"),
        t("col.case_type"),
        x_order=order,
    )
else:
    st.caption(t("dash.open_none"))
