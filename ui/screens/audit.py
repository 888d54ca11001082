"""Admins read the audit log (who did what, when, from where) and export it as CSV."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import streamlit as st

from henpin import accounts
from henpin.accounts import AuditAction
from ui import display, session
from ui.i18n import t, worded

PERIODS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}
ALL = ""
LIMIT = 5000

admin = session.require_admin()
store_url = session.store_url()
now = datetime.now(UTC)

st.title(t("audit.title"))
st.caption(t("audit.intro"))
names = [ALL] + [op.name for op in accounts.list_operators(store_url)]
actions = [ALL, *accounts.audit_actions(store_url)]
who_col, what_col, when_col = st.columns(3)
actor = who_col.selectbox(
    t("audit.actor"),
    names,
    key="audit.actor",
    format_func=worded(names, lambda v: v or t("filter.all")),
)
action = what_col.selectbox(
    t("audit.action"),
    actions,
    key="audit.action",
    format_func=worded(actions, lambda v: v or t("filter.all")),
)
period = when_col.selectbox(
    t("dash.period"), list(PERIODS), index=1, key="audit.period",
    format_func=worded(PERIODS, lambda v: t(f"dash.period.{v}")),
)  # fmt: skip
window = PERIODS[period]
lines = accounts.audit_lines(
    store_url,
    actor=actor or None,
    action=action or None,
    since=now - window if window is not None else None,
    limit=LIMIT,
)


def exported() -> None:
    accounts.audit(
        store_url, admin.name, AuditAction.AUDIT_EXPORTED, where=session.where(),
        detail={"lines": len(lines), "actor": actor, "action": action, "period": period},
    )  # fmt: skip


count, download = st.columns([4, 2], vertical_alignment="bottom")
count.markdown(t("audit.count", count=len(lines)))
download.download_button(
    t("audit.export"),
    data=accounts.audit_csv(lines),
    file_name=f"henpin-audit-{now:%Y%m%d-%H%M}.csv",
    mime="text/csv",
    key="audit.export",
    on_click=session.guarded(exported, "admin"),
)
if not lines:
    st.caption(t("audit.none"))
else:
    st.dataframe(
        [
            {
                t("col.at"): display.at(line.at),
                t("col.operator"): line.actor,
                t("audit.action"): line.action,
                t("audit.target"): line.target,
                t("audit.source"): line.source,
                t("audit.detail"): json.dumps(line.detail, ensure_ascii=False, default=str)
                if line.detail
                else "",
            }
            for line in lines
        ],
        hide_index=True,
    )
