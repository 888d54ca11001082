"""Bulk decisions: pick several waiting cases of one type and one answer for all, preview what
each will do (and its money), confirm, then read per case what succeeded and what did not.

Nothing is decided before the confirmation; the cases are then decided one after another (never
in parallel: SQLite has a single writer). A case that changed since the preview is refused for
that case alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from henpin.app.cases import CaseFilter, find_cases
from henpin.app.decide import BulkLine, DecisionOutcome, decide_bulk, preview_bulk
from henpin.domain import CaseState
from ui import display, session
from ui.i18n import choice_label, label, t, worded
from ui.messages import decision_text

MAX_CASES = 200
ICONS = {"success": "✓", "warning": "⚠", "error": "✗"}  # in every font, unlike emoji

operator = session.require_decider()
store_url = session.store_url()
now = datetime.now(UTC)

st.title(t("bulk.title"))
st.caption(t("bulk.intro"))

waiting = find_cases(store_url, CaseFilter(states=(CaseState.WAITING.value,)), limit=2000).cases
types = sorted({c.type for c in waiting})
results: list[DecisionOutcome] | None = st.session_state.get("bulk.results")

# Cases picked in the inbox's table arrive here preselected (those still waiting).
picked: dict[str, Any] | None = st.session_state.pop("bulk.picked", None)
if picked and picked["type"] in types:
    still = {c.id for c in waiting if c.type == picked["type"]}
    for key in ("bulk.results", "bulk.preview", "bulk.problem"):
        st.session_state.pop(key, None)
    results = None
    st.session_state["bulk.type"] = picked["type"]
    st.session_state["bulk.cases"] = [i for i in picked["cases"] if i in still]
    if left_out := len(picked["cases"]) - len(st.session_state["bulk.cases"]):
        st.warning(t("bulk.picked_left_out", count=left_out))


def decide_confirmed(confirmed: dict[str, Any]) -> None:
    """Decide the confirmed cases one after another, with a progress bar, then show results."""
    lines: list[BulkLine] = confirmed["lines"]
    with st.status(t("bulk.deciding", count=len(lines)), expanded=True) as status:
        bar = st.progress(0.0, text=t("bulk.progress", done=0, total=len(lines)))

        def progress(done: int, total: int) -> None:
            bar.progress(
                done / total if total else 1.0, text=t("bulk.progress", done=done, total=total)
            )

        st.session_state["bulk.results"] = decide_bulk(
            store_url,
            lines,
            choice=str(confirmed["inputs"][2]),
            note=str(confirmed["inputs"][3]),
            operator=operator.name,
            over_claims=confirmed["over_claims"],
            where=session.where(),
            progress=progress,
        )
        status.update(label=t("bulk.decided"), state="complete")
    st.rerun()


if (confirmed := st.session_state.pop("bulk.confirmed", None)) is not None:
    decide_confirmed(confirmed)


def show_results(outcomes: list[DecisionOutcome]) -> None:
    done = sum(o.accepted for o in outcomes)
    (st.success if done == len(outcomes) else st.warning)(
        t("bulk.summary", done=done, total=len(outcomes), failed=len(outcomes) - done)
    )
    st.dataframe(
        [
            {
                t("col.case"): o.case_id,
                t(
                    "col.result"
                ): f"{ICONS[o.level]} {t('bulk.ok') if o.accepted else t('bulk.not_ok')}",
                t("col.message"): decision_text(o),
            }
            for o in outcomes
        ],
        hide_index=True,
    )


if results is not None:
    st.subheader(t("bulk.results"))
    show_results(results)
    if st.button(t("bulk.again"), key="bulk.again"):
        del st.session_state["bulk.results"]
        st.rerun()
    st.stop()

if not types:
    st.info(t("bulk.nothing_waiting"))
    st.stop()

case_type = st.selectbox(
    t("bulk.type"),
    types,
    format_func=worded(types, lambda v: label("case_type", v)),
    key="bulk.type",
)
of_type = [c for c in waiting if c.type == case_type][:MAX_CASES]
by_id = {c.id: c for c in of_type}
chosen_ids = [i for i in st.session_state.get("bulk.cases", []) if i in by_id]
st.session_state["bulk.cases"] = chosen_ids


def select_all() -> None:
    st.session_state["bulk.cases"] = list(by_id)


def case_text(case_id: int) -> str:
    c = by_id[case_id]
    left = display.time_left_plain(c.deadline, now)
    holder = c.claimed_by if c.claimed_by and c.claimed_by != operator.name else None
    claimed = f" · {t('bulk.claimed', name=holder)}" if holder else ""
    return f"#{c.id} · {c.order_id} · {c.marketplace or c.marketplace_id} · {left}{claimed}"


pick, everything = st.columns([6, 1], vertical_alignment="bottom")
pick.multiselect(
    t("bulk.cases", count=len(of_type)),
    list(by_id),
    format_func=worded(by_id, case_text),
    key="bulk.cases",
    placeholder=t("bulk.cases_placeholder"),
)
everything.button(
    t("bulk.select_all"), key="bulk.select_all", on_click=session.guarded(select_all, "decider")
)
choices: list[str] = []
for c in of_type:
    choices += [x for x in c.choices if x not in choices]
choice = st.radio(
    t("bulk.choice"),
    choices,
    format_func=worded(choices, choice_label),
    index=None,
    key="bulk.choice",
)
st.text_area(t("bulk.note"), key="bulk.note", max_chars=2000)


def current_inputs() -> tuple[str, tuple[int, ...], str | None, str]:
    """What the operator has chosen right now (read from session state, so a callback sees the
    values of the click, not of the page drawn before it)."""
    return (
        str(st.session_state.get("bulk.type")),
        tuple(st.session_state.get("bulk.cases", [])),
        st.session_state.get("bulk.choice"),
        str(st.session_state.get("bulk.note") or "").strip(),
    )


def make_preview() -> None:
    inputs = current_inputs()
    kind, ids, pick, text = inputs
    if not ids or pick is None:
        st.session_state["bulk.preview"] = None
        st.session_state["bulk.problem"] = t("bulk.pick_first")
        return
    st.session_state["bulk.problem"] = None
    lines = preview_bulk(
        store_url, list(ids), case_type=kind, choice=pick, note=text, operator=operator.name
    )
    st.session_state["bulk.preview"] = {"inputs": inputs, "lines": lines}


def confirm() -> None:
    """The confirmation: the page decides the previewed cases next, showing its progress."""
    preview: dict[str, Any] | None = st.session_state.pop("bulk.preview", None)
    if preview is None:
        return  # a second click: the first already decided
    preview["over_claims"] = bool(st.session_state.get("bulk.over_claims"))
    st.session_state["bulk.confirmed"] = preview
    for key in ("bulk.cases", "bulk.choice", "bulk.note", "bulk.over_claims"):
        st.session_state.pop(key, None)


st.button(
    t("bulk.preview"), key="bulk.preview_button", on_click=session.guarded(make_preview, "decider")
)
if problem := st.session_state.get("bulk.problem"):
    st.error(problem)
preview = st.session_state.get("bulk.preview")
if preview is None or preview["inputs"] != current_inputs():
    st.stop()  # nothing previewed yet, or the selection changed since: preview again

lines: list[BulkLine] = preview["lines"]


def line_status(line: BulkLine) -> str:
    if line.problem is not None:
        outcome = DecisionOutcome(line.case_id, line.problem, str(choice), {"detail": line.detail})
        return f"{ICONS['error']} {decision_text(outcome)}"
    if line.claimed_by:
        return f"{ICONS['warning']} {t('bulk.claimed', name=display.plain(line.claimed_by))}"
    return f"{ICONS['success']} {t('bulk.ready')}"


st.subheader(t("bulk.preview_title"))
st.dataframe(
    [
        {
            t("col.case"): line.case_id,
            t("col.order"): line.order_id,
            t("col.marketplace"): display.marketplace_name(line.marketplace_id),
            t("col.deadline"): display.time_left_plain(line.deadline, now),
            t("col.will_do"): choice_label(str(choice))
            + ("" if line.recommended in (None, choice) else f" ({t('bulk.not_recommended')})"),
            t("col.money"): display.option_summary(line.money, line.marketplace_id)
            if line.money
            else display.money(line.order_value, line.marketplace_id),
            t("col.status"): line_status(line),
        }
        for line in lines
    ],
    hide_index=True,
)
ready = [line for line in lines if line.ready]
claimed = [line for line in ready if line.claimed_by]
if claimed:
    st.checkbox(t("bulk.over_claims", count=len(claimed)), key="bulk.over_claims")
count = len(ready) - (0 if st.session_state.get("bulk.over_claims") else len(claimed))
st.markdown(t("bulk.will_decide", count=count, total=len(lines)))
go, back = st.columns([2, 6])
go.button(
    t("bulk.confirm", count=count),
    type="primary",
    key="bulk.confirm",
    on_click=session.guarded(confirm, "decider"),
    disabled=count == 0,
)
if back.button(t("bulk.change"), key="bulk.change"):
    st.session_state.pop("bulk.preview", None)
    st.rerun()
