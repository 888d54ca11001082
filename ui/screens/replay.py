"""Policy replay, for the owner: paste or upload a proposed policies.yaml and see, case by case
and in total, how past cases would have been decided under it (`henpin policy replay` does the
same from the command line). Nothing is changed: the policy in force stays as it is."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from henpin.app.replay import replay
from henpin.policy import PolicyError, parse_policy
from ui import display, session, words
from ui.i18n import choice_label, label, t

session.require_admin()
store_url = session.store_url()

st.title(t("replay.title"))
st.caption(t("replay.intro"))

if "replay.text" not in st.session_state:
    try:  # start from the policy in force: the owner edits a copy of it
        st.session_state["replay.text"] = session.settings().policies.read_text(encoding="utf-8")
    except OSError:
        st.session_state["replay.text"] = ""
uploaded = st.file_uploader(t("replay.upload"), type=["yaml", "yml"], key="replay.upload")
if uploaded is not None:
    st.session_state["replay.text"] = uploaded.getvalue().decode("utf-8", errors="replace")
text = st.text_area(t("replay.policy"), key="replay.text", height=320)
since_on = st.checkbox(t("replay.since_on"), key="replay.since_on")
since_day = st.date_input(
    t("replay.since"),
    value=datetime.now(UTC).date() - timedelta(days=30),
    key="replay.since",
    disabled=not since_on,
)

if st.button(t("replay.run"), key="replay.run", type="primary"):
    try:
        proposed = parse_policy(text.encode("utf-8"), source="proposed policy")
    except PolicyError as exc:
        st.error(f"{t('replay.bad_policy')}\n\n```\n{exc}\n```")
        st.stop()
    since = datetime.combine(since_day, time(), tzinfo=UTC) if since_on else None
    with st.status(t("replay.running"), expanded=False) as status:
        bar = st.progress(0.0, text=t("replay.progress", done=0, total="…"))

        def progress(done: int, total: int) -> None:
            bar.progress(
                done / total if total else 1.0, text=t("replay.progress", done=done, total=total)
            )

        report = replay(store_url, proposed, since=since, progress=progress)
        status.update(label=t("replay.done"), state="complete")
    st.subheader(t("replay.result", version=report.policy_version))
    changed, operator_col, automatic_col = st.columns(3)
    changed.metric(t("replay.changed"), f"{report.changed} / {report.cases}")
    operator_col.metric(
        t("replay.to_operator"),
        report.to_operator_after,
        delta=report.to_operator_after - report.to_operator_before,
        delta_color="off",
    )
    automatic_col.metric(
        t("replay.automatic"),
        report.automatic_after,
        delta=report.automatic_after - report.automatic_before,
        delta_color="off",
    )
    if report.value_changed:
        st.markdown(
            t(
                "replay.value_changed",
                money=", ".join(
                    display.plain(display.money_of(v, c)) for c, v in report.value_changed.items()
                ),
            )
        )
    rows = [r for r in report.rows if r.changed]
    if not rows:
        st.info(t("replay.no_change"))
    else:
        st.dataframe(
            [
                {
                    t("col.case"): r.case_id,
                    t("col.case_type"): label("case_type", r.type),
                    t("col.order"): r.order_id,
                    t("replay.was"): f"{choice_label(r.was_action or '—')} ({r.was_rule or '—'})",
                    t("replay.would"): f"{choice_label(r.would_action)} ({r.would_rule})",
                    t("col.reason"): words.reason(
                        {
                            "reason": r.would_reason,
                            "reason_code": r.would_reason_code,
                            "reason_values": r.would_reason_values,
                        },
                        r.marketplace_id,
                    ),
                }
                for r in rows
            ],
            hide_index=True,
        )
