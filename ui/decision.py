"""The case page's decision part: the form while a question waits, and what came of an answer.

The form is built from the case's waiting question: its choices (the recommended one marked),
the extra fields some choices need (amounts, a condition, a tracking number), photos at a
returned item's inspection (`ui.evidence`), and a note. The submit runs `send_decision` as a
callback, once per click and before the page is drawn again, so a double click or a rerun never
sends a second decision: the first answer this session got for the question is remembered and
shown instead of the form. A case someone else has claimed is
decided only after ticking "decide anyway".
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from henpin.app.cases import CaseDetail
from henpin.app.decide import DecisionCode, decide_as
from ui import display, session, words
from ui.evidence import check_form_photos, keep_form_photos, photo_inputs, takes_photos, uploads_in
from ui.i18n import choice_label, field_label, label, option_label, t, worded
from ui.messages import decision_text

SETTLED = (DecisionCode.ALREADY_DECIDED, DecisionCode.NOT_WAITING, DecisionCode.NO_CASE)


def send_decision(
    case_id: int,
    step: str,
    form: str,
    operator: str,
    fields: list[str],
    holder: str | None,
    photos: bool = False,
) -> None:
    """Send the form's choice, fields and note to `decide_as()` and remember what came of it.
    Photos the form took are checked first (a bad one sends nothing) and kept once the decision
    is accepted."""
    before = session.sent_decision(case_id)
    if before is not None and before.step == step and before.settled:
        return  # a second click on a question already answered: the first answer stands
    choice = st.session_state.get(f"{form}.choice")
    if choice is None:
        session.remember_sent(
            case_id, session.Sent(step, "error", t("case.decide_pick_one"), settled=False)
        )
        return
    if holder and not st.session_state.get(f"{form}.over_claim"):
        text = t("case.decide_confirm_claim", name=display.plain(holder))
        session.remember_sent(case_id, session.Sent(step, "warning", text, settled=False))
        return
    uploads = uploads_in(form) if photos else []
    if (refused := check_form_photos(case_id, uploads)) is not None:
        session.remember_sent(case_id, session.Sent(step, "error", refused, settled=False))
        return
    values = {name: st.session_state.get(f"{form}.field.{name}") for name in fields}
    outcome = decide_as(
        session.store_url(),
        case_id,
        choice=choice,
        operator=operator,
        note=str(st.session_state.get(f"{form}.note") or "").strip(),
        fields={k: v for k, v in values.items() if v not in (None, "")},
        seen_step=step,
        over_claim=bool(holder),
        where=session.where(),
    )
    settled = outcome.accepted or outcome.code in SETTLED
    level, message = outcome.level, decision_text(outcome)
    if outcome.accepted and uploads:
        kept, said = keep_form_photos(case_id, step, operator, uploads)
        level, message = (level if kept else "warning"), f"{message}\n\n{said}"
    session.remember_sent(case_id, session.Sent(step, level, message, settled=settled))


def _field(form: str, spec: dict[str, Any]) -> None:
    """One extra answer field, as the question describes it (kind, bounds, proposal)."""
    name, kind = str(spec.get("name")), spec.get("kind", "text")
    text = field_label(name, spec.get("label"))
    if spec.get("currency"):
        text += f" ({spec['currency']})"
    needed = [choice_label(c) for c in spec.get("required_for", [])]
    helps = [t("case.field_needed_for", choices=", ".join(needed))] if needed else []
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None or high is not None:
        helps.append(t("case.field_bounds", low=low if low is not None else "—", high=high or "—"))
    key = f"{form}.field.{name}"
    if kind == "option":
        st.selectbox(
            text,
            spec.get("options", []),
            index=None,
            key=key,
            help=" ".join(helps) or None,
            format_func=worded(
                spec.get("options", []), lambda v: option_label(v, spec.get("option_labels"))
            ),
            placeholder=t("case.field_choose"),
        )
    else:
        st.text_input(
            text,
            value=spec.get("proposed") or "",
            key=key,
            help=" ".join(helps) or None,
            max_chars=2000,
        )


def decision_form(case: CaseDetail, step: str, operator: session.SignedIn) -> None:
    """One option per choice the case offers (the recommended one marked), fields, note, submit."""
    form = f"decide.{case.id}"
    question = case.question or {}
    recommended = question.get("recommended") or case.recommendation.get("action")
    fields = [f for f in question.get("fields", []) if isinstance(f, dict) and f.get("name")]
    holder = case.claimed_by if case.claimed_by not in (None, operator.name) else None
    note_needed = [choice_label(c) for c in question.get("note_required_for", [])]

    def choice_text(choice: str) -> str:
        text = choice_label(choice, question.get("labels", {}).get(choice))
        return t("case.decide_recommended", label=text) if choice == recommended else text

    with st.form(form):
        st.radio(
            t("case.decide_choice"),
            options=case.choices,
            format_func=worded(case.choices, choice_text),
            index=None,  # no default: the operator picks on purpose
            key=f"{form}.choice",
        )
        for spec in fields:
            _field(form, spec)
        photos = takes_photos(case, step)
        if photos:
            photo_inputs(form)
        note = t("case.decide_note")
        if note_needed:
            note = t("case.decide_note_needed", choices=", ".join(note_needed))
        st.text_area(note, key=f"{form}.note", max_chars=2000)
        if holder:
            st.checkbox(
                t("case.decide_over_claim", name=display.plain(holder)), key=f"{form}.over_claim"
            )
        st.form_submit_button(
            t("case.decide_submit"),
            type="primary",
            key=f"{form}.submit",
            on_click=session.guarded(send_decision, "decider"),
            args=(
                case.id,
                step,
                form,
                operator.name,
                [str(f["name"]) for f in fields],
                holder,
                photos,
            ),
        )


def decision_part(case: CaseDetail, operator: session.SignedIn) -> None:
    """What this session's last answer came to, then the form if the question is still open."""
    sent = session.sent_decision(case.id)
    if sent is not None:
        {"success": st.success, "warning": st.warning}.get(sent.level, st.error)(sent.message)
    step = case.waiting_step
    if case.state != "waiting" or not step:
        return
    if sent is not None and sent.step == step and sent.settled:
        return  # this session's answer (or the one that beat it) is shown above
    st.subheader(t("case.decide"))
    question = case.question or {}
    lines = words.prompt_lines(question, case.marketplace_id)
    if question.get("title") and lines is not None:  # worded in the operator's language
        with st.expander(t("case.question_as_asked")):
            st.markdown(f"**{words.question_title(question)}**\n\n" + "\n".join(lines))
    elif question.get("title"):  # stored before questions had codes: as asked
        with st.expander(t("case.question_as_asked")):
            st.text(f"{question['title']}\n\n{question.get('prompt', '')}")
    answered = next((d for d in case.decisions if d.step == step), None)
    if answered is not None:
        who = t("case.decided_by_deadline") if answered.source == "deadline" else answered.operator
        choice = label("choice", answered.choice)
        st.info(t("case.already_decided", who=who, choice=choice, at=display.at(answered.at)))
    elif not operator.can_decide:
        st.caption(t("case.decide_viewer", role=label("role", operator.role)))
    else:
        decision_form(case, step, operator)
