"""The case page's decision part: the form while a question waits, and what came of an answer.

The form's submit runs `send_decision` as a callback, once per click and before the page is
drawn again, so a double click or a rerun never sends a second decision: the first answer this
session got for the question is remembered and shown instead of the form.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from henpin.service import CaseDetail, DecisionRefused, decide
from ui import display, session
from ui.i18n import label, t


def send_decision(case_id: int, step: str, form: str, operator: str) -> None:
    """Send the form's choice and note to `decide()` and remember what came of it."""
    before = session.sent_decision(case_id)
    if before is not None and before.step == step and before.settled:
        return  # a second click on a question already answered: the first answer stands
    choice = st.session_state.get(f"{form}.choice")
    if choice is None:
        session.remember_sent(case_id, session.Sent(step, "error", t("case.decide_pick_one")))
        return
    try:
        result = decide(
            session.store_url(),
            case_id,
            choice=choice,
            note=st.session_state.get(f"{form}.note", "").strip(),
            operator=operator,
            source="inbox",
        )
        sent = session.Sent(step, "success" if result.accepted else "warning", result.message)
    except DecisionRefused as refused:
        sent = session.Sent(step, "error", str(refused))
    except SQLAlchemyError as exc:
        sent = session.Sent(step, "error", t("store.unreachable", error=type(exc).__name__))
    session.remember_sent(case_id, sent)


def decision_form(case: CaseDetail, step: str, operator: str) -> None:
    """One option per choice the case offers (the recommended one marked), a note, submit."""
    form = f"decide.{case.id}"
    recommended = case.recommendation.get("action")

    def choice_text(choice: str) -> str:
        text = label("choice", choice)
        return t("case.decide_recommended", label=text) if choice == recommended else text

    with st.form(form):
        st.radio(
            t("case.decide_choice"),
            options=case.choices,
            format_func=choice_text,
            index=None,  # no default: the operator picks on purpose
            key=f"{form}.choice",
        )
        st.text_area(t("case.decide_note"), key=f"{form}.note", max_chars=2000)
        st.form_submit_button(
            t("case.decide_submit"),
            type="primary",
            key=f"{form}.submit",
            on_click=send_decision,
            args=(case.id, step, form, operator),
        )


def decision_part(case: CaseDetail, operator: session.SignedIn) -> None:
    """What this session's last answer came to, then the form if the question is still open."""
    sent = session.sent_decision(case.id)
    if sent is not None and (case.waiting_step is None or sent.step == case.waiting_step):
        {"success": st.success, "warning": st.warning}.get(sent.level, st.error)(sent.message)
    step = case.waiting_step
    if case.state != "waiting" or not step:
        return
    st.subheader(t("case.decide"))
    answered = next((d for d in case.decisions if d.step == step), None)
    if sent is not None and sent.step == step and sent.settled:
        return  # this session's answer (or the one that beat it) is shown above
    if answered is not None:
        who = t("case.decided_by_deadline") if answered.source == "deadline" else answered.operator
        choice = label("choice", answered.choice)
        st.info(t("case.already_decided", who=who, choice=choice, at=display.at(answered.at)))
    elif not operator.can_decide:
        st.caption(t("case.decide_viewer", role=label("role", operator.role)))
    else:
        decision_form(case, step, operator.name)
