"""A buyer asked to cancel by message (SP-API cannot read buyer messages): the operator brings
the message in, checks the reply Henpin will send in the buyer's language, and opens the
case. Its flow sends that reply and waits for the buyer's own cancel request."""

from __future__ import annotations

import streamlit as st

from henpin.app.cases import CaseNotOpened
from henpin.app.messages import ReplyPreview, open_cancel_by_message, preview_cancel_by_message
from ui import display, session
from ui.i18n import label, t

CASE_PAGE = "screens/case.py"

operator = session.require_decider()
store_url = session.store_url()

st.title(t("message.title"))
st.caption(t("message.intro"))

order_id = st.text_input(t("message.order_id"), key="message.order_id", placeholder="113-…")
words = st.text_area(t("message.words"), key="message.words", height=120)


def preview_clicked() -> None:
    # A callback runs before the page does: read the field's new value from the session.
    st.session_state.pop("message.error", None)
    typed = str(st.session_state.get("message.order_id", ""))
    try:
        st.session_state["message.preview"] = preview_cancel_by_message(store_url, typed)
    except CaseNotOpened as exc:
        st.session_state["message.preview"] = None
        st.session_state["message.error"] = str(exc)


st.button(
    t("message.preview"),
    key="message.preview_button",
    on_click=session.guarded(preview_clicked, "decider"),
)
if error := st.session_state.get("message.error"):
    st.error(display.plain(error))

preview: ReplyPreview | None = st.session_state.get("message.preview")
if preview is not None and preview.order_id != order_id.strip():
    preview = None  # the order id changed since: preview again
if preview is not None:
    st.subheader(t("message.reply"))
    st.markdown(
        t(
            "message.reply_facts",
            marketplace=preview.marketplace,
            language=label("language", preview.language),
            to=display.plain(preview.to or "—"),
        )
    )
    if preview.reply_in_seller_central:
        st.info(t("message.seller_central"))
    st.text_input(t("message.subject"), value=preview.subject, disabled=True)
    st.text_area(t("message.body"), value=preview.body, height=260, disabled=True)
    if preview.open_case_id is not None:
        st.warning(t("message.already_open", case=preview.open_case_id))
    elif st.button(t("message.open"), key="message.open", type="primary"):
        try:
            opened = open_cancel_by_message(
                store_url, preview.order_id, buyer_message=words, operator=operator.name
            )
        except CaseNotOpened as exc:
            st.error(display.plain(str(exc)))
        else:
            st.session_state["message.preview"] = None
            st.switch_page(CASE_PAGE, query_params={"case": str(opened.id)})
