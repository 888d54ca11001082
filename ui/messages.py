"""Results of what an operator did (decide, claim, manage accounts), in the operator's language.

The operations return codes and parameters; this module turns them into sentences, so the same
outcome reads right in every language.
"""

from __future__ import annotations

from typing import Any

from henpin.accounts import AccountRefused
from henpin.app.claims import ClaimCode, ClaimResult
from henpin.app.decide import DecisionCode, DecisionOutcome
from ui import display
from ui.i18n import label, t


def decision_text(outcome: DecisionOutcome) -> str:
    """One sentence: what came of a decision on a case."""
    p: dict[str, Any] = outcome.params
    case_id, choice = outcome.case_id, label("choice", outcome.choice)
    code = outcome.code
    if code is DecisionCode.ALREADY_DECIDED:
        who = t("case.decided_by_deadline") if p.get("by_deadline") else display.plain(p.get("who"))
        return t(
            "decision.already-decided",
            case_id=case_id,
            who=who,
            winner=label("choice", p.get("winner")),
            at=display.at(p.get("at")),
        )
    if code is DecisionCode.NOT_WAITING:
        state = label("state", p.get("state"))
        if p.get("outcome"):
            state += f", {label('outcome', p.get('outcome'))}"
        return t("decision.not-waiting", case_id=case_id, state=state)
    if code is DecisionCode.NOT_A_CHOICE:
        choices = ", ".join(label("choice", c) for c in p.get("choices", []))
        return t("decision.not-a-choice", case_id=case_id, choice=choice, choices=choices)
    if code is DecisionCode.NOT_ALLOWED:
        return t("decision.not-allowed", role=label("role", p.get("role")))
    if code in (DecisionCode.INVALID_ANSWER, DecisionCode.WRONG_TYPE, DecisionCode.STORE_ERROR):
        return t(
            f"decision.{code.value}",
            case_id=case_id,
            detail=display.plain(p.get("detail", "")),
            error=p.get("error", ""),
        )
    text = t(
        f"decision.{code.value}",
        case_id=case_id,
        choice=choice,
        name=display.plain(p.get("claimed_by", "")),
        step=p.get("step", ""),
    )
    if outcome.accepted and p.get("claimed_by"):
        text += " " + t("decision.over_claim_note", name=display.plain(p["claimed_by"]))
    return text


def claim_text(result: ClaimResult) -> str:
    before = result.code in (ClaimCode.TAKEN_OVER, ClaimCode.RELEASED)
    name = display.plain((result.previous if before else result.claimed_by) or "")
    return t(f"claim.{result.code.value}", case_id=result.case_id, name=name)


def account_text(refused: AccountRefused) -> str:
    return t(f"account.{refused.code}", **{k: display.plain(v) for k, v in refused.params.items()})
