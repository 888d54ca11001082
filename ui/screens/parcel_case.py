"""A parcel is coming back and its carrier told Amazon nothing (refused, unclaimed, or a wrong
address): the operator types the order id, says what happened, checks the order Amazon has,
and opens the refused-delivery or address-error case. An order has one parcel case at a time:
the preview says which case is in the way, if any."""

from __future__ import annotations

import streamlit as st

from henpin.app.cases import CaseNotOpened
from henpin.app.parcels import ParcelPreview, open_parcel_case, preview_parcel_case
from henpin.cases.parcels import PARCEL_KINDS
from ui import display, session
from ui.i18n import label, t

CASE_PAGE = "screens/case.py"

operator = session.require_decider()
store_url = session.store_url()

st.title(t("parcel.title"))
st.caption(t("parcel.intro"))

order_id = st.text_input(t("parcel.order_id"), key="parcel.order_id", placeholder="113-…")
kind = st.radio(
    t("parcel.kind"),
    options=list(PARCEL_KINDS),
    format_func=lambda k: t(f"parcel.kind.{k}"),
    key="parcel.kind",
)
note = st.text_area(t("parcel.note"), key="parcel.note", height=80)


def preview_clicked() -> None:
    # A callback runs before the page does: read the fields' new values from the session.
    st.session_state.pop("parcel.error", None)
    typed = str(st.session_state.get("parcel.order_id", ""))
    chosen = st.session_state.get("parcel.kind") or PARCEL_KINDS[0]
    try:
        st.session_state["parcel.preview"] = preview_parcel_case(store_url, typed, chosen)
    except CaseNotOpened as exc:
        st.session_state["parcel.preview"] = None
        st.session_state["parcel.error"] = str(exc)


st.button(
    t("parcel.preview"),
    key="parcel.preview_button",
    on_click=session.guarded(preview_clicked, "decider"),
)
if error := st.session_state.get("parcel.error"):
    st.error(display.plain(error))

preview: ParcelPreview | None = st.session_state.get("parcel.preview")
if preview is not None and (preview.order_id != order_id.strip() or preview.kind != kind):
    preview = None  # the order id or the kind changed since: preview again
if preview is not None:
    st.subheader(t("parcel.order"))
    st.markdown(
        t(
            "parcel.order_facts",
            marketplace=preview.marketplace,
            status=display.plain(label("order_status", preview.fulfillment_status)),
            value=display.plain(display.money(preview.value)),
        )
    )
    st.dataframe(
        [
            {
                t("case.item.sku"): item.get("sku") or "—",
                t("case.item.title"): item.get("title") or "—",
                t("case.item.quantity"): item.get("quantity"),
                t("case.item.unit_price"): display.money(item.get("unit_price")),
            }
            for item in preview.items
        ],
        hide_index=True,
    )
    if preview.packages:
        st.markdown(t("parcel.packages"))
        st.dataframe(
            [
                {
                    t("parcel.package.status"): p.get("status") or "—",
                    t("parcel.package.detail"): p.get("detailed_status") or "—",
                    t("parcel.package.tracking"): p.get("tracking_number") or "—",
                }
                for p in preview.packages
            ],
            hide_index=True,
        )
    else:
        st.caption(t("parcel.no_packages"))
    if preview.problem:
        st.warning(t("parcel.cannot_open", problem=display.plain(preview.problem)))
    else:
        st.markdown(t("parcel.will_open", type=label("case_type", preview.case_type)))
        if st.button(t("parcel.open"), key="parcel.open", type="primary"):
            try:
                opened = open_parcel_case(
                    store_url,
                    preview.order_id,
                    kind=preview.kind,
                    operator=operator.name,
                    note=note,
                    where=session.where(),
                )
            except CaseNotOpened as exc:
                st.error(display.plain(str(exc)))
            else:
                st.session_state["parcel.preview"] = None
                st.switch_page(CASE_PAGE, query_params={"case": str(opened.id)})
