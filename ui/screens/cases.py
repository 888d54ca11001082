"""The inbox: the cases to work on, overdue first; filters, sorting, and who has which case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from henpin.domain import CaseState, CaseType
from henpin.inbox_ops import OPEN_STATES, CaseFilter, SortOrder, facets, find_cases
from henpin.service import CaseSummary
from ui import display, session
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
}
for key, default in DEFAULTS.items():
    st.session_state[key] = st.session_state.get(key, default)


def case_row(case: CaseSummary) -> None:
    """One case in one line: what it is, who has it, what policy recommends, its deadline."""
    with st.container(border=True):
        what, advice, when, go = st.columns([5, 5, 3, 2], vertical_alignment="center")
        flag = (
            f":red-badge[:material/warning: {t('inbox.needs_attention')}] "
            if case.needs_attention
            else ""
        )
        what.markdown(
            f"{flag}**{label('case_type', case.type)}** · `{case.order_id}` · "
            f"{case.marketplace or case.marketplace_id}"
        )
        holder = case.claimed_by if case.state != CaseState.CLOSED else None
        claim = ""
        if holder == operator.name:
            claim = f" · :blue-badge[:material/back_hand: {t('inbox.claimed_by_you')}]"
        elif holder:
            claim = f" · :violet-badge[:material/lock: {t('inbox.claimed_by', name=display.plain(holder))}]"
        what.markdown(f"{label('state', case.state)}{claim}")
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

# --- at a glance --------------------------------------------------------------------------------
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
    column.metric(t(text), find_cases(store_url, f, now=now, limit=0).total)

# --- filters ----------------------------------------------------------------------------------------
known = facets(store_url)
types = sorted({*known.types, *(c.value for c in CaseType), *st.session_state["inbox.types"]})
markets = sorted({*known.marketplaces, *st.session_state["inbox.marketplaces"]})
claimers = [ANYONE, NOBODY, operator.name] + [n for n in known.claimers if n != operator.name]
if st.session_state["inbox.claimed"] not in claimers:
    claimers.append(str(st.session_state["inbox.claimed"]))

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


def claimer_text(value: str) -> str:
    if value == ANYONE:
        return t("filter.claimed.anyone")
    if value == NOBODY:
        return t("filter.claimed.nobody")
    return t("filter.claimed.me") if value == operator.name else value


row2[1].selectbox(
    t("filter.claimed"), claimers, format_func=worded(claimers, claimer_text), key="inbox.claimed"
)
row2[2].selectbox(
    t("filter.sort"),
    [s.value for s in SortOrder],
    format_func=worded(list(SortOrder), lambda v: t(f"sort.{v}")),
    key="inbox.sort",
)

st.checkbox(t("filter.needs_attention"), key="inbox.attention")

claimed = str(st.session_state["inbox.claimed"])
chosen = CaseFilter(
    types=tuple(st.session_state["inbox.types"]),
    marketplaces=tuple(st.session_state["inbox.marketplaces"]),
    states=tuple(st.session_state["inbox.states"]),
    due_within=DUE_WINDOWS[str(st.session_state["inbox.due"])],
    claimed_by=None if claimed == ANYONE else "" if claimed == NOBODY else claimed,
    needs_attention=bool(st.session_state["inbox.attention"]),
)

# --- the list ---------------------------------------------------------------------------------------
pages = max(1, -(-find_cases(store_url, chosen, now=now, limit=0).total // PAGE_SIZE))
page_no = min(max(int(st.session_state["inbox.page"]), 1), pages)
found = find_cases(
    store_url,
    chosen,
    sort=SortOrder(st.session_state["inbox.sort"]),
    now=now,
    limit=PAGE_SIZE,
    offset=(page_no - 1) * PAGE_SIZE,
)
heading, bulk = st.columns([6, 2], vertical_alignment="bottom")
heading.subheader(t("inbox.matching", count=found.total))
if operator.can_decide:
    bulk.page_link(BULK_PAGE, label=t("inbox.bulk_link"), icon=":material/checklist:")
if not found.cases:
    st.info(
        t("inbox.none_match")
        if found.total == 0 and chosen != CaseFilter()
        else t("inbox.waiting_none")
    )
for case in found.cases:
    case_row(case)
if pages > 1:
    st.session_state["inbox.page"] = page_no
    st.selectbox(
        t("inbox.page"),
        list(range(1, pages + 1)),
        key="inbox.page",
        format_func=worded(range(1, pages + 1), lambda n: t("inbox.page_of", page=n, pages=pages)),
    )
