"""The case page: the order, the buyer's reason, what policy recommends and why, the deadline,
the decision form while the case waits, and everything that happened to the case so far."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from henpin.service import show_case
from ui import display, session
from ui.decision import decision_part
from ui.i18n import label, t

INBOX_PAGE = "screens/cases.py"

operator = session.require_operator()
store_url = session.store_url()
now = datetime.now(UTC)

st.page_link(INBOX_PAGE, label=t("case.back"))
case_id = session.query_int("case")
if case_id is None:
    st.info(t("case.none_selected"))
    st.stop()
case = show_case(store_url, case_id)
if case is None:
    st.error(t("case.not_found", case_id=case_id))
    st.stop()


# --- what the case is -------------------------------------------------------------------------
st.title(t("case.title", type=label("case_type", case.type), order_id=case.order_id))
st.caption(
    t(
        "case.subtitle",
        case_id=case.id,
        marketplace=display.marketplace_name(case.marketplace_id),
        state=label("state", case.state),
    )
)
if case.needs_attention:
    st.warning(t("case.needs_attention", reason=display.plain(case.needs_attention)))
if case.outcome:
    st.markdown(t("case.outcome", outcome=label("outcome", case.outcome)))
if case.deadline:
    left = display.time_left(case.deadline, now)
    st.markdown(t("case.deadline", at=display.at(case.deadline), left=left))
    if case.timeout_choice:
        st.caption(t("case.deadline_passes", choice=label("choice", case.timeout_choice)))

order, advice = st.columns(2)
with order:
    st.subheader(t("case.order"))
    o = case.order
    st.markdown(
        f"{t('case.order_status')}: **{display.plain(o.get('fulfillment_status') or '—')}**  \n"
        f"{t('case.order_created')}: {display.at_text(o.get('created_time'))}  \n"
        f"{t('case.order_value')}: **{display.money(o.get('value'))}**"
    )
    st.markdown(f"**{t('case.buyer_reason')}**")
    if o.get("buyer_cancel_reason"):
        st.markdown(f"> {display.plain(o['buyer_cancel_reason'])}")
    else:
        st.caption(t("case.buyer_reason_none"))
with advice:
    st.subheader(t("case.recommendation"))
    rec = case.recommendation
    if rec.get("action"):
        st.markdown(t("case.recommendation_action", action=label("choice", rec["action"])))
        if rec.get("rule"):
            st.markdown(t("case.recommendation_rule", rule=rec["rule"]))
        if rec.get("reason"):
            st.markdown(t("case.recommendation_reason", reason=display.plain(rec["reason"])))
    else:
        st.caption(t("case.recommendation_none"))

st.subheader(t("case.items"))
st.dataframe(
    [
        {
            t("case.item.sku"): item.get("sku") or "—",
            t("case.item.title"): item.get("title") or "—",
            t("case.item.quantity"): item.get("quantity"),
            t("case.item.unit_price"): display.money(item.get("unit_price")),
            t("case.item.reason"): item.get("buyer_cancel_reason") or "",
        }
        for item in case.order.get("items", [])
    ],
    hide_index=True,
)

# --- the decision -----------------------------------------------------------------------------
decision_part(case, operator)

# --- links and history ------------------------------------------------------------------------
st.subheader(t("case.links"))
seller_central, prefect = st.columns(2)
if url := display.seller_central_order_url(case.marketplace_id, case.order_id):
    seller_central.link_button(t("case.link_seller_central"), url)
if url := display.flow_run_url(session.prefect_ui_url(), case.flow_run_id):
    prefect.link_button(t("case.link_flow_run"), url)

st.subheader(t("case.timeline"))
if not case.timeline:
    st.caption(t("case.timeline_none"))
for event in case.timeline:
    st.markdown(f"`{display.at(event.at)}` {display.plain(event.message)}")

st.subheader(t("case.decisions"))
if not case.decisions:
    st.caption(t("case.decisions_none"))
else:
    st.dataframe(
        [
            {
                t("col.at"): display.at(d.at),
                t("col.operator"): d.operator,
                t("col.choice"): label("choice", d.choice),
                t("col.note"): d.note,
                t("col.source"): label("source", d.source),
            }
            for d in case.decisions
        ],
        hide_index=True,
    )

st.subheader(t("case.actions"))
if not case.actions:
    st.caption(t("case.actions_none"))
else:
    st.dataframe(
        [
            {
                t("col.at"): display.at(a.updated_at),
                t("col.kind"): a.kind,
                t("col.status"): a.status,
                t("col.feed_id"): a.amazon_feed_id or "—",
                t("col.result"): " — ".join(x for x in (a.result_code, a.result_message) if x),
            }
            for a in case.actions
        ],
        hide_index=True,
    )
