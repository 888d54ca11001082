"""The inbox: the cases to work on, overdue first, in one table that keeps itself up to date.

Filters and search live in the page's URL (`?type=cancel-request&q=113-12`), so a view can be
shared. The table refreshes itself every HENPIN_INBOX_REFRESH_SECONDS (default 30) and counts the
cases opened since the operator last looked; a refresh is not the operator's activity, so an
idle session still ends (ui/session.py). Select a row to open its case, or several to decide
them together; operators and admins export cases and refunds as CSV here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from henpin.app.cases import OPEN_STATES, CaseFilter, CaseSummary, SortOrder, facets, find_cases
from henpin.app.exports import ExportKind, ExportRefused, Period, export
from henpin.domain import CaseState, CaseType
from ui import display, session, words
from ui.i18n import label, t, worded

CASE_PAGE = "screens/case.py"
BULK_PAGE = "screens/bulk.py"
PAGE_SIZE = 50
DUE_WINDOWS = {
    "any": None,
    "overdue": timedelta(0),
    "2h": timedelta(hours=2),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
}
ANYONE, NOBODY = "\x00anyone", "\x00nobody"  # not operator names: names have no control characters


def refresh_seconds() -> int:
    """How often the list refreshes itself (HENPIN_INBOX_REFRESH_SECONDS, at least 2)."""
    return session.settings().inbox_refresh_seconds


operator = session.require_operator()
store_url = session.store_url()
now = datetime.now(UTC)

# Filters live in session state under their widget keys, so they survive a visit to a case.
DEFAULTS: dict[str, object] = {
    "inbox.types": [],
    "inbox.marketplaces": [],
    "inbox.states": list(OPEN_STATES),
    "inbox.due": "any",
    "inbox.claimed": ANYONE,
    "inbox.sort": SortOrder.DEADLINE.value,
    "inbox.page": 1,
    "inbox.attention": False,
    "inbox.search": "",
}
for key, default in DEFAULTS.items():
    st.session_state[key] = st.session_state.get(key, default)


# --- the view in the URL --------------------------------------------------------------------------
URL_KEYS = ("type", "market", "state", "due", "claimed", "unclaimed", "sort", "attention", "q")


def view_in_url() -> dict[str, str]:
    """The filters and search as URL parameters; a filter left as it starts is left out."""
    s = st.session_state
    claimed = str(s["inbox.claimed"])
    states = list(s["inbox.states"])
    view = {
        "type": ",".join(s["inbox.types"]),
        "market": ",".join(s["inbox.marketplaces"]),
        "state": "" if sorted(states) == sorted(OPEN_STATES) else ",".join(states) or "all",
        "due": "" if s["inbox.due"] == "any" else str(s["inbox.due"]),
        "claimed": "" if claimed in (ANYONE, NOBODY) else claimed,
        "unclaimed": "1" if claimed == NOBODY else "",
        "sort": "" if s["inbox.sort"] == SortOrder.DEADLINE.value else str(s["inbox.sort"]),
        "attention": "1" if s["inbox.attention"] else "",
        "q": str(s["inbox.search"]).strip(),
    }
    return {k: v for k, v in view.items() if v}


def view_from_url(params: dict[str, str]) -> None:
    """Set the filters from a URL someone shared (values the inbox does not know are left out)."""
    s = st.session_state

    def listed(name: str) -> list[str]:
        return [v for v in params.get(name, "").split(",") if v]

    s["inbox.types"] = listed("type")
    s["inbox.marketplaces"] = listed("market")
    states = [v for v in listed("state") if v in {c.value for c in CaseState}]
    s["inbox.states"] = states if "state" in params else list(OPEN_STATES)
    s["inbox.due"] = params["due"] if params.get("due") in DUE_WINDOWS else "any"
    s["inbox.claimed"] = (
        NOBODY if params.get("unclaimed") == "1" else params.get("claimed") or ANYONE
    )
    sort = params.get("sort", "")
    s["inbox.sort"] = sort if sort in {o.value for o in SortOrder} else SortOrder.DEADLINE.value
    s["inbox.attention"] = params.get("attention") == "1"
    s["inbox.search"] = params.get("q", "")[:100]
    s["inbox.page"] = 1


# A URL that differs from the one this page last wrote came from outside (a shared link, the
# browser's back button): it sets the view. No parameters at all (back from a case) keeps it.
url_view = {k: v for k, v in st.query_params.to_dict().items() if k in URL_KEYS}
if url_view and url_view != st.session_state.get("inbox.url_written"):
    view_from_url(url_view)

# Everything above the list runs only when the operator does something (the list refreshes
# alone): this moment is when they last looked.
seen_at: datetime = now
st.session_state["inbox.full_run"] = True  # the list below shows the cases as they are now

title, refresh = st.columns([6, 1], vertical_alignment="bottom")
title.title(t("inbox.title"))
refresh.button(t("inbox.refresh"), key="inbox.refresh")  # any click reruns the page

# --- filters ----------------------------------------------------------------------------------------
known = facets(store_url)
types = sorted({*known.types, *(c.value for c in CaseType), *st.session_state["inbox.types"]})
markets = sorted({*known.marketplaces, *st.session_state["inbox.marketplaces"]})
claimers = [ANYONE, NOBODY, operator.name] + [n for n in known.claimers if n != operator.name]
if st.session_state["inbox.claimed"] not in claimers:
    claimers.append(str(st.session_state["inbox.claimed"]))

st.text_input(
    t("inbox.search"),
    key="inbox.search",
    placeholder=t("inbox.search_placeholder"),
    max_chars=100,
    icon=":material/search:",
)


def claimer_text(value: str) -> str:
    if value == ANYONE:
        return t("filter.claimed.anyone")
    if value == NOBODY:
        return t("filter.claimed.nobody")
    return t("filter.claimed.me") if value == operator.name else value


# The filters fold away (a phone shows the list sooner); open while any is set.
filtering = bool(set(view_in_url()) - {"q"})
with st.expander(t("inbox.filters"), expanded=filtering, icon=":material/filter_list:"):
    row1 = st.columns(3)
    row1[0].multiselect(
        t("filter.type"),
        types,
        format_func=worded(types, lambda v: label("case_type", v)),
        key="inbox.types",
        placeholder=t("filter.all"),
    )
    row1[1].multiselect(
        t("filter.marketplace"),
        markets,
        format_func=worded(markets, display.marketplace_name),
        key="inbox.marketplaces",
        placeholder=t("filter.all"),
    )
    row1[2].multiselect(
        t("filter.state"),
        [s.value for s in CaseState],
        format_func=worded(list(CaseState), lambda v: label("state", v)),
        key="inbox.states",
        placeholder=t("filter.all"),
    )
    row2 = st.columns(3)
    row2[0].selectbox(
        t("filter.due"),
        list(DUE_WINDOWS),
        format_func=worded(DUE_WINDOWS, lambda v: t(f"filter.due.{v}")),
        key="inbox.due",
    )

    row2[1].selectbox(
        t("filter.claimed"),
        claimers,
        format_func=worded(claimers, claimer_text),
        key="inbox.claimed",
    )
    row2[2].selectbox(
        t("filter.sort"),
        [s.value for s in SortOrder],
        format_func=worded(list(SortOrder), lambda v: t(f"sort.{v}")),
        key="inbox.sort",
    )

    st.checkbox(t("filter.needs_attention"), key="inbox.attention")

written = view_in_url()
for name in URL_KEYS:
    if name in written:
        st.query_params[name] = written[name]
    elif name in st.query_params:
        del st.query_params[name]
st.session_state["inbox.url_written"] = written

claimed = str(st.session_state["inbox.claimed"])
chosen = CaseFilter(
    types=tuple(st.session_state["inbox.types"]),
    marketplaces=tuple(st.session_state["inbox.marketplaces"]),
    states=tuple(st.session_state["inbox.states"]),
    due_within=DUE_WINDOWS[str(st.session_state["inbox.due"])],
    claimed_by=None if claimed == ANYONE else "" if claimed == NOBODY else claimed,
    needs_attention=bool(st.session_state["inbox.attention"]),
    search=str(st.session_state["inbox.search"]).strip(),
)


# --- the list, refreshed on its own ------------------------------------------------------------------
def noted() -> None:
    """A click inside the list is the operator's activity (a refresh is not): noted by the guard."""


def urgency(c: CaseSummary, at: datetime) -> str:
    """How a deadline is coloured: red when overdue, orange when near, else as it is."""
    if c.deadline is None or c.outcome:
        return ""
    left = c.deadline - at
    if left <= timedelta(0):
        return "color: #d33; font-weight: bold"
    return "color: #e67e00; font-weight: bold" if left <= display.SOON else ""


def table_rows(cases: list[CaseSummary], at: datetime) -> Any:
    """One line per case: what it is, who has it, what policy recommends, its deadline (red
    when overdue, orange when near)."""
    rows: list[dict[str, Any]] = []
    for c in cases:
        flags = []
        if c.created_at > seen_at:
            flags.append(t("inbox.new"))
        if c.needs_attention:
            why = words.attention(c.needs_attention, c.needs_attention_reason, c.marketplace_id)
            flags.append(t("inbox.needs_attention_why", reason=words.as_cell(why)))
        holder = c.claimed_by if c.state != CaseState.CLOSED else None
        who = ""
        if holder == operator.name:
            who = t("inbox.claimed_by_you")
        elif holder:
            who = t("inbox.claimed_by", name=holder)
        rec = c.recommendation
        advice = label("choice", rec["action"]) if rec.get("action") else ""
        if advice and rec.get("rule"):
            advice += f" ({rec['rule']})"
        rows.append(
            {
                t("col.deadline"): label("outcome", c.outcome)
                if c.outcome
                else display.time_left_plain(c.deadline, at),
                t("col.case_type"): label("case_type", c.type),
                t("col.order"): c.order_id,
                t("col.marketplace"): c.marketplace or c.marketplace_id,
                t("col.flags"): " · ".join(flags),
                t("col.state"): label("state", c.state),
                t("col.claimed"): who,
                t("col.recommendation"): advice or t("inbox.no_recommendation"),
            }
        )
    frame = pd.DataFrame(rows, index=pd.Index([c.id for c in cases], name="#"))
    colours = [urgency(c, at) for c in cases]
    return frame.style.apply(lambda _: colours, subset=[t("col.deadline")])


def selected_rows(table_key: str | None) -> list[int]:
    """The rows selected in the table drawn last (by its key), if any."""
    state: Any = st.session_state.get(table_key) if table_key else None
    try:
        return list(state["selection"]["rows"])
    except (KeyError, TypeError):
        return []


def pick_for_bulk(picked: list[CaseSummary]) -> None:
    """Hand the chosen cases to the bulk page (one case type: the first one's)."""
    kind = picked[0].type
    st.session_state["bulk.picked"] = {"type": kind, "cases": [c.id for c in picked]}


@st.fragment(run_every=refresh_seconds())
def live_list() -> None:
    # Not session.check(): a refresh is not the operator's activity. A session that ran out
    # reruns the whole page, whose check ends it and shows why.
    if not session.holds():
        st.rerun()
    at = datetime.now(UTC)
    waiting = CaseFilter(states=(CaseState.WAITING.value,))
    glance = st.columns(5)
    for column, (text, f) in zip(
        glance,
        [
            ("inbox.count_waiting", waiting),
            ("inbox.count_overdue", CaseFilter(states=waiting.states, due_within=timedelta(0))),
            ("inbox.count_soon", CaseFilter(states=waiting.states, due_within=display.SOON)),
            ("inbox.count_mine", CaseFilter(claimed_by=operator.name)),
            ("inbox.count_attention", CaseFilter(needs_attention=True)),
        ],
        strict=True,
    ):
        column.metric(t(text), find_cases(store_url, f, now=at, limit=0).total)

    fresh = find_cases(store_url, CaseFilter(states=(), created_after=seen_at), limit=0).total
    if fresh:
        st.info(
            t("inbox.new_since", count=fresh, at=display.plain(f"{seen_at:%H:%M} UTC")),
            icon=":material/notifications:",
        )

    pages = max(1, -(-find_cases(store_url, chosen, now=at, limit=0).total // PAGE_SIZE))
    page_no = min(max(int(st.session_state["inbox.page"]), 1), pages)
    found = find_cases(
        store_url,
        chosen,
        sort=SortOrder(st.session_state["inbox.sort"]),
        now=at,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    # While rows are selected the table keeps the cases it showed (a refresh must not move a
    # selection onto other cases); the table is a new one whenever its cases change.
    kept: list[CaseSummary] | None = st.session_state.get("inbox.shown")
    full_run = st.session_state.pop("inbox.full_run", False)
    if kept is not None and not full_run and selected_rows(st.session_state.get("inbox.table_key")):
        cases = kept
    else:
        cases = found.cases
    st.session_state["inbox.shown"] = cases
    digest = hashlib.sha1(",".join(str(c.id) for c in cases).encode()).hexdigest()[:10]
    table_key = f"inbox.table.{digest}"
    st.session_state["inbox.table_key"] = table_key

    heading, bulk = st.columns([6, 2], vertical_alignment="bottom")
    heading.subheader(t("inbox.matching", count=found.total))
    if operator.can_decide:
        bulk.page_link(BULK_PAGE, label=t("inbox.bulk_link"), icon=":material/checklist:")
    if not cases:
        st.info(
            t("inbox.none_match")
            if found.total == 0 and chosen != CaseFilter()
            else t("inbox.waiting_none")
        )
        return
    event = st.dataframe(
        table_rows(cases, at),
        key=table_key,
        on_select=session.guarded(noted),
        selection_mode="multi-row" if operator.can_decide else "single-row",
    )
    picked = [cases[i] for i in event.selection.rows if i < len(cases)]
    if not picked:
        st.caption(t("inbox.select_hint" if operator.can_decide else "inbox.select_hint_viewer"))
    else:
        go, together = st.columns([2, 4])
        if len(picked) == 1 and go.button(
            t("inbox.open_selected", id=picked[0].id), key="inbox.open_selected", type="primary"
        ):
            st.switch_page(CASE_PAGE, query_params={"case": str(picked[0].id)})
        if operator.can_decide:
            same = {c.type for c in picked} == {picked[0].type} and all(
                c.state == CaseState.WAITING for c in picked
            )
            if not same:
                together.caption(t("inbox.bulk_one_type"))
            elif (
                together.button(
                    t("inbox.bulk_selected", count=len(picked)), key="inbox.bulk_selected"
                )
                and session.still_allowed("decider") is not None
            ):
                pick_for_bulk(picked)
                st.switch_page(BULK_PAGE)
    if pages > 1:
        st.session_state["inbox.page"] = page_no
        st.selectbox(
            t("inbox.page"),
            list(range(1, pages + 1)),
            key="inbox.page",
            format_func=worded(
                range(1, pages + 1), lambda n: t("inbox.page_of", page=n, pages=pages)
            ),
            on_change=session.guarded(noted),
        )


live_list()


# --- exports for accounting ---------------------------------------------------------------------------
def make_export() -> None:
    """Build the CSV the operator asked for (checked and audited by henpin.exports)."""
    s = st.session_state
    first, last = s["export.from"], s["export.to"]
    market = s["export.marketplace"]
    try:
        s["export.ready"] = export(
            store_url,
            s["export.kind"],
            Period(first, last),
            None if market == "all" else market,
            by=operator.name,
            where=session.where(),
        )
        s["export.problem"] = None
    except ExportRefused as refused:
        s["export.ready"] = None
        s["export.problem"] = t(f"export.{refused.code}")


if operator.can_decide:
    with st.expander(t("export.title"), icon=":material/download:"):
        today = now.date()
        kinds = [k.value for k in ExportKind]
        markets_all = ["all", *known.marketplaces]
        st.radio(
            t("export.kind"),
            kinds,
            format_func=worded(kinds, lambda v: t(f"export.kind.{v}")),
            key="export.kind",
            horizontal=True,
        )
        first_col, last_col, market_col = st.columns(3)
        first_col.date_input(
            t("export.from"), value=date(today.year, today.month, 1), key="export.from"
        )
        last_col.date_input(t("export.to"), value=today, key="export.to")
        market_col.selectbox(
            t("export.marketplace"),
            markets_all,
            format_func=worded(
                markets_all,
                lambda v: t("filter.all") if v == "all" else display.marketplace_name(v),
            ),
            key="export.marketplace",
        )
        st.caption(t("export.help"))
        st.button(
            t("export.make"), key="export.make", on_click=session.guarded(make_export, "decider")
        )
        if problem := st.session_state.get("export.problem"):
            st.error(problem)
        ready = st.session_state.get("export.ready")
        if ready is not None:
            st.download_button(
                t("export.download", rows=ready.rows, name=ready.file_name),
                data=ready.text.encode("utf-8"),
                file_name=ready.file_name,
                mime="text/csv",
                key="export.download",
                on_click="ignore",
                type="primary",
            )
