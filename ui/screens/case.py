"""The case page: the order, the buyer's words, what policy recommends and why, the money of each
option, who is working on it, the decision form while the case waits, links to Seller Central
and the Prefect flow run, and everything that happened to the case so far."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from henpin.app.cases import CaseDetail, EventView, case_options, show_case
from henpin.app.claims import claim, release
from henpin.app.feeds import FeedSettleCode, feeds_in_attention, settle_feed
from henpin.app.messages import SettleCode, settle_message
from ui import display, session, words
from ui.decision import decision_part
from ui.evidence import evidence_part
from ui.i18n import choice_label, label, t
from ui.messages import claim_text

INBOX_PAGE = "screens/cases.py"
CASE_PAGE = "screens/case.py"
# Buyer data shown to operators and admins only (issue 4: personal data).
PERSONAL = {"confirmed_address", "buyer_name", "buyer_email", "shipping_address", "address"}
SHOWN_ELSEWHERE = {"options", "raw_payload", "buyer_message", "buyer_comment", "money", "return"}

operator = session.require_operator()
store_url = session.store_url()
now = datetime.now(UTC)

st.page_link(INBOX_PAGE, label=t("case.back"))
case_id = session.query_int("case")
if case_id is None:
    st.info(t("case.none_selected"))
    # Or by its number, as a notification or a colleague names it ("case 12").
    with st.form("case.open_by_number"):
        number = st.number_input(t("case.open_by_number"), min_value=1, step=1, value=None)
        if st.form_submit_button(t("case.open_by_number_submit")) and number is not None:
            st.query_params["case"] = str(int(number))
            st.rerun()
    st.stop()
found = show_case(store_url, case_id)
if found is None:
    st.error(t("case.not_found", case_id=case_id))
    st.stop()
case: CaseDetail = found
sees_personal_data = operator.can_decide


def claim_clicked(take_over: bool) -> None:
    result = claim(store_url, case.id, operator.name, take_over=take_over, where=session.where())
    st.session_state[f"claim.result.{case.id}"] = (result.ok, claim_text(result))


def release_clicked() -> None:
    result = release(store_url, case.id, operator.name, where=session.where())
    st.session_state[f"claim.result.{case.id}"] = (result.ok, claim_text(result))


def claim_part() -> None:
    """Who is working on the case, and the buttons to claim, take over or release it."""
    shown = st.session_state.pop(f"claim.result.{case.id}", None)
    if shown is not None:
        (st.success if shown[0] else st.warning)(shown[1])
    if case.state == "closed":
        return
    holder = case.claimed_by
    text, buttons = st.columns([4, 2], vertical_alignment="center")
    if holder == operator.name:
        text.markdown(t("case.claimed_by_you"))
    elif holder:
        text.markdown(t("case.claimed_by", name=display.plain(holder)))
    else:
        text.caption(t("case.unclaimed"))
    if not operator.can_decide:
        return
    if holder is None:
        buttons.button(
            t("case.claim"),
            key=f"claim.{case.id}",
            on_click=session.guarded(claim_clicked, "decider"),
            args=(False,),
        )
    elif holder == operator.name or operator.is_admin:
        buttons.button(
            t("case.release"),
            key=f"release.{case.id}",
            on_click=session.guarded(release_clicked, "decider"),
        )
    if holder not in (None, operator.name):
        buttons.button(
            t("case.take_over", name=display.plain(holder)),
            key=f"take_over.{case.id}",
            on_click=session.guarded(claim_clicked, "decider"),
            args=(True,),
        )


def buyer_words() -> None:
    """What the buyer said: Amazon's cancel reason, their message or their return comment.

    Shown with st.text, never as markdown: no link, image or address in it becomes live
    (st.markdown is GitHub-flavoured and turns bare URLs and e-mail addresses into links;
    st.text writes "text without Markdown": docs.streamlit.io/develop/api-reference/text)."""
    st.markdown(f"**{t('case.buyer_words')}**")
    said = False
    if reason := case.order.get("buyer_cancel_reason"):
        st.caption(t("case.buyer_reason"))
        st.text(str(reason))
        said = True
    if reason_code := case.details.get("reason_code"):
        st.caption(t("case.return_reason_code"))
        st.markdown(f"`{display.plain(reason_code)}`")
        said = True
    for key in ("buyer_message", "buyer_comment"):
        words = case.details.get(key)
        if not words:
            continue
        said = True
        st.caption(t(f"case.{key}"))
        if sees_personal_data:
            st.text(str(words))
        else:
            st.caption(t("case.personal_hidden"))
    if not said:
        st.caption(t("case.buyer_reason_none"))


def options_table() -> None:
    """The money of each way out, when the case type computes it."""
    options = case_options(case.details, case.recommendation, case.question)
    if not options:
        return
    st.subheader(t("case.options"))
    recommended = case.question.get("recommended") or case.recommendation.get("action")
    money_keys = list(
        dict.fromkeys(k for o in options for k in o if k not in ("choice", "label", "note_phrases"))
    )
    rows = []
    for option in options:
        row = {t("case.option"): choice_label(str(option["choice"]), option.get("label"))}
        row[t("case.option_recommended")] = "★" if option["choice"] == recommended else ""
        for key in money_keys:
            row[label("money", key)] = (
                words.as_cell(words.money_notes(option, case.marketplace_id))
                if key == "notes"
                else display.option_amount(
                    option.get(key), option.get("currency"), case.marketplace_id
                )
            )
        rows.append(row)
    st.dataframe(rows, hide_index=True)


def facts_table() -> None:
    """The case type's own facts (a return's reason, a confirmed address, a reship...)."""
    facts = {
        k: v for k, v in case.details.items() if k not in SHOWN_ELSEWHERE and v not in (None, "")
    }
    if not sees_personal_data:
        facts = {k: v for k, v in facts.items() if k not in PERSONAL}
    if not facts:
        return
    st.subheader(t("case.facts"))
    st.dataframe(
        [
            {
                t("col.fact"): label("detail", k),
                t("col.value"): display.amount(v, case.marketplace_id),
            }
            for k, v in facts.items()
        ],
        hide_index=True,
    )


def event_text(event: EventView) -> str:
    """A timeline line in the operator's language (ui/words.py)."""
    return words.event_text(event.kind, event.message, event.data, case.marketplace_id)


# --- what the case is -------------------------------------------------------------------------
# Answered but not yet moved on: the flow continues within a minute; no deadline to show.
answered = case.state == "waiting" and any(d.step == case.waiting_step for d in case.decisions)
st.title(t("case.title", type=label("case_type", case.type), order_id=case.order_id))
st.caption(
    t(
        "case.subtitle",
        case_id=case.id,
        marketplace=display.marketplace_name(case.marketplace_id),
        state=t("case.state_answered") if answered else label("state", case.state),
    )
)
if case.parent_case_id:
    st.page_link(
        CASE_PAGE,
        label=t("case.parent", case_id=case.parent_case_id),
        query_params={"case": str(case.parent_case_id)},
    )
if case.needs_attention:
    why = words.attention(case.needs_attention, case.needs_attention_reason, case.marketplace_id)
    st.warning(t("case.needs_attention", reason=why))
if case.outcome:
    st.markdown(t("case.outcome", outcome=label("outcome", case.outcome)))
if case.deadline and not answered:
    left = display.time_left(case.deadline, now)
    st.markdown(
        t("case.deadline", at=display.at(case.deadline), left=left),
        help=t("time.utc_help", at=display.at_utc(case.deadline)),
    )
    if case.timeout_choice:
        st.caption(t("case.deadline_passes", choice=choice_label(case.timeout_choice)))
claim_part()

order, advice = st.columns(2)
with order:
    st.subheader(t("case.order"))
    o = case.order
    st.markdown(
        f"{t('case.order_status')}: **{display.plain(label('order_status', o.get('fulfillment_status')))}**  \n"
        f"{t('case.order_created')}: {display.at_text(o.get('created_time'))}  \n"
        f"{t('case.order_value')}: **{display.plain(display.money(o.get('value'), case.marketplace_id))}**"
    )
    buyer_words()
with advice:
    st.subheader(t("case.recommendation"))
    rec = case.recommendation
    if not rec.get("action") and case.question.get("recommended"):
        st.markdown(
            t("case.recommendation_action", action=choice_label(str(case.question["recommended"])))
        )
    elif rec.get("action"):
        st.markdown(t("case.recommendation_action", action=choice_label(str(rec["action"]))))
        if rec.get("rule"):
            st.markdown(t("case.recommendation_rule", rule=rec["rule"]))
        if rec.get("reason"):
            st.markdown(
                t("case.recommendation_reason", reason=words.reason(rec, case.marketplace_id))
            )
        if isinstance(rec.get("inputs"), dict) and rec["inputs"]:
            with st.expander(t("case.recommendation_inputs")):
                st.dataframe(
                    [
                        {
                            t("col.fact"): label("input", k),
                            t("col.value"): words.input_value(k, v, case.marketplace_id),
                        }
                        for k, v in rec["inputs"].items()
                    ],
                    hide_index=True,
                )
    else:
        st.caption(t("case.recommendation_none"))

options_table()

st.subheader(t("case.items"))
st.dataframe(
    [
        {
            t("case.item.sku"): item.get("sku") or "—",
            t("case.item.title"): item.get("title") or "—",
            t("case.item.quantity"): item.get("quantity"),
            t("case.item.unit_price"): display.money(item.get("unit_price"), case.marketplace_id),
            t("case.item.price_paid"): display.paid_part(
                item, "item_price", "item_discount", marketplace_id=case.marketplace_id
            ),
            t("case.item.shipping_paid"): display.paid_part(
                item, "shipping", "shipping_discount", marketplace_id=case.marketplace_id
            ),
            t("case.item.promotion"): display.paid_part(
                item, "item_discount", marketplace_id=case.marketplace_id
            )
            if (item.get("paid") or {}).get("promotion_ids")
            else "—",
            t("case.item.reason"): item.get("buyer_cancel_reason") or "",
        }
        for item in case.order.get("items", [])
    ],
    hide_index=True,
)
facts_table()

# --- the decision -----------------------------------------------------------------------------
decision_part(case, operator)
evidence_part(case, operator)  # photos of a returned item, and the claim pack

# --- links and history ------------------------------------------------------------------------
st.subheader(t("case.links"))
links: dict[str, str] = {}
if url := display.seller_central_order_url(case.marketplace_id, case.order_id):
    links[url] = t("case.link_seller_central")
if case.type == "return-request" and (
    url := display.manage_returns_url(case.marketplace_id, case.order_id)
):
    links[url] = t("case.link_manage_returns")
# The Prefect UI is for those who decide: a viewer gets no way in from here.
if operator.can_decide and (
    url := display.flow_run_url(session.prefect_ui_url(), case.flow_run_id)
):
    links[url] = t("case.link_flow_run")
for name, url in (case.question.get("links") or {}).items():
    links.setdefault(str(url), str(name))
for column, (url, text) in zip(st.columns(max(len(links), 1)), links.items(), strict=False):
    column.link_button(text, url)
if not links:
    st.caption(t("case.links_none"))

st.subheader(t("case.timeline"))
if not case.timeline:
    st.caption(t("case.timeline_none"))
for event in case.timeline:
    st.markdown(
        f"`{display.at(event.at)}` {event_text(event)}",
        help=t("time.utc_help", at=display.at_utc(event.at)),
    )

st.subheader(t("case.decisions"))
if not case.decisions:
    st.caption(t("case.decisions_none"))
else:
    st.dataframe(
        [
            {
                t("col.at"): display.at(d.at),
                t("col.operator"): d.operator,
                t("col.choice"): choice_label(d.choice),
                t("col.note"): d.note,
                t("col.source"): label("source", d.source),
                t("col.policy_version"): d.policy_version or "—",
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
                t("col.kind"): label("action", a.kind),
                t("col.status"): label("action_status", a.status),
                t("col.feed_id"): a.amazon_feed_id or "—",
                t("col.result"): " — ".join(x for x in (a.result_code, a.result_message) if x),
            }
            for a in case.actions
        ],
        hide_index=True,
    )


def settle_clicked(key: str, was_sent: bool) -> None:
    code = settle_message(
        store_url, case.id, key, was_sent=was_sent, operator=operator.name, where=session.where()
    )
    st.session_state[f"settle.result.{case.id}"] = code


def uncertain_part() -> None:
    """Messages Henpin could not tell were sent: never resent alone; the operator says."""
    shown = st.session_state.pop(f"settle.result.{case.id}", None)
    if shown is not None:
        ok = shown in (SettleCode.MARKED_SENT, SettleCode.MARKED_NOT_SENT)
        (st.success if ok else st.warning)(label("settle", shown))
    if not operator.can_decide:
        return
    for a in case.actions:
        if not a.uncertain:
            continue
        st.warning(
            f"{t('case.uncertain', kind=label('action', a.kind))}\n\n"
            f"{display.plain(a.result_message or '')}"
        )
        sent, not_sent = st.columns(2)
        sent.button(
            t("case.uncertain.sent"),
            key=f"settle.sent.{a.key}",
            on_click=session.guarded(settle_clicked, "decider"),
            args=(a.key, True),
        )
        not_sent.button(
            t("case.uncertain.not_sent"),
            key=f"settle.not_sent.{a.key}",
            on_click=session.guarded(settle_clicked, "decider"),
            args=(a.key, False),
        )


uncertain_part()


def feed_settle_clicked(feed_id: int, answer: str) -> None:
    code = settle_feed(store_url, feed_id, answer, operator=operator.name, where=session.where())
    st.session_state[f"feed.settle.result.{case.id}"] = code


def feed_attention_part() -> None:
    """Feeds whose Amazon report did not account for this case's action: the raw report, and
    (for operators) the three answers; the first answer wins."""
    shown = st.session_state.pop(f"feed.settle.result.{case.id}", None)
    if shown is not None:
        ok = shown in (
            FeedSettleCode.SENT_AGAIN,
            FeedSettleCode.MARKED_DONE,
            FeedSettleCode.MARKED_NOT_DONE,
        )
        (st.success if ok else st.warning)(label("settle", shown))
    for feed in feeds_in_attention(store_url, case.id):
        st.warning(t("case.feed_attention", feed=feed.amazon_feed_id or feed.id))
        with st.expander(t("case.feed_report")):
            st.code(feed.report or "", language="xml")
        if not operator.can_decide:
            continue
        columns = st.columns(3)
        for column, (answer, text) in zip(
            columns,
            [
                ("send-again", "case.feed.send_again"),
                ("done", "case.feed.done"),
                ("not-done", "case.feed.not_done"),
            ],
            strict=True,
        ):
            column.button(
                t(text),
                key=f"feed.settle.{feed.id}.{answer}",
                on_click=session.guarded(feed_settle_clicked, "decider"),
                args=(feed.id, answer),
            )


feed_attention_part()
if sees_personal_data and case.details.get("raw_payload"):
    with st.expander(t("case.raw_payload")):
        st.json(case.details["raw_payload"])
