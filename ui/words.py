"""What policy and the flows recorded, worded in the operator's language: a recommendation's
reason, a timeline entry, a question's title and prompt lines, why a case needs attention, the
notes under the money of each way out, how a refund proposal was reached.

Each is kept as a code and its values (`reason_code`/`reason_values`, an event's kind and data,
a question's `title_code`/`prompt_lines`), next to the English words written when it was
recorded. The inbox words the code in the session's language (`reason.<code>`, `event.<kind>`,
`prompt.<code>`, `attention.<code>`, `money_note.<code>`, `explanation.<code>` in ui/text_*.py) and its values as the page shows them (money in the
marketplace's format, choices and outcomes by their labels). Something recorded before it had a
code, or with a code the inbox has no words for, shows its English words as they were written.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from henpin.policy.reasons import (
    PHRASES,
    is_money,
    is_phrase,
    is_phrase_list,
    is_reason_list,
    is_time,
)
from henpin.questions import AS_WRITTEN
from ui import display
from ui.i18n import DEFAULT_LANGUAGE, TEXT, choice_label, current_language, label, t

#: Values named so are choices (a policy's action) and read as the choice's label.
CHOICE_VALUES = frozenset({"action", "choice", "timeout_choice"})


def has_words(key: str) -> bool:
    return key in TEXT[DEFAULT_LANGUAGE]


def value_words(
    name: str, value: Any, marketplace_id: str | None = None, kind: str = "reason"
) -> str:
    """One value of a reason or a line (or of another phrase of `kind`), as markdown-safe
    words; a value that is a phrase itself is of its own `kind`, else of its parent phrase's
    (a reason, within a question's line or a timeline entry)."""
    kind = kind if kind in PHRASES else "reason"
    if is_money(value):
        return display.plain(display.money(value, marketplace_id))
    if kind == "reason" and is_reason_list(value):
        return t("reason.and").join(
            coded_words("reason", v["code"], v.get("values") or {}, marketplace_id) or v["code"]
            for v in value
        )
    if is_phrase_list(value):
        return t(f"{kind}.join").join(value_words(name, v, marketplace_id, kind) for v in value)
    if is_phrase(value) or (isinstance(value, dict) and isinstance(value.get("code"), str)):
        own = value.get("kind") or kind
        return coded_words(own, value["code"], value.get("values") or {}, marketplace_id) or (
            display.plain(value["code"])
        )
    if value is None or value == "":
        return "—"
    if name in CHOICE_VALUES:
        return display.plain(choice_label(str(value)))
    if name == "outcome":
        return display.plain(label("outcome", str(value)))
    if name == "status" and has_words(f"order_status.{value}"):
        return display.plain(label("order_status", str(value)))
    if name == "language" and has_words(f"language.{value}"):
        return display.plain(label("language", str(value)))
    if name == "action_kind" and has_words(f"action.{value}"):
        return display.plain(label("action", str(value)))
    if name == "adjustment" and has_words(f"adjustment.{value}"):
        return display.plain(label("adjustment", str(value)))
    if is_time(value):
        return _when(value["utc"])
    if isinstance(value, str) and has_words(f"value.{value}"):
        return t(f"value.{value}")
    return display.plain(value)


def coded_words(
    kind: str, code: str | None, values: Any, marketplace_id: str | None = None
) -> str | None:
    """`<kind>.<code>` in the session's language with its values filled in; None when the inbox
    has no words for that code (the caller then shows what was recorded)."""
    if not isinstance(code, str) or not has_words(f"{kind}.{code}"):
        return None
    values = values if isinstance(values, dict) else {}
    return t(
        f"{kind}.{code}",
        **{k: value_words(k, v, marketplace_id, kind) for k, v in values.items()},
    )


#: Facts a rule looked at that are moments (ISO times), shown in the operator's time zone.
TIME_INPUTS = frozenset({"created_time", "evaluated_at", "expected_delivery", "requested_at"})


def input_value(name: str, value: Any, marketplace_id: str | None = None) -> str:
    """One fact a rule looked at (a recommendation's `inputs`), as the page shows it: times in
    the operator's zone, Amazon's codes and choices in words, money as its marketplace writes
    it; anything else as `display.amount()`."""
    if name in TIME_INPUTS and isinstance(value, str):
        return display.at_text(value)
    if name == "fulfillment_status" and isinstance(value, str):
        return label("order_status", value)
    if name == "marketplace_id" and isinstance(value, str):
        return display.marketplace_name(value)
    if name == "on_deadline" and isinstance(value, str):
        return choice_label(value)
    if isinstance(value, str) and has_words(f"value.{value}"):
        return t(f"value.{value}")
    return display.amount(value, marketplace_id)


def reason(advice: dict[str, Any], marketplace_id: str | None = None) -> str:
    """Why policy recommends what it does, in the operator's language; the recorded English
    words for a recommendation stored without a reason code."""
    worded = coded_words(
        "reason", advice.get("reason_code"), advice.get("reason_values"), marketplace_id
    )
    return worded if worded is not None else display.plain(advice.get("reason") or "")


def attention(
    words: str | None, reason: dict[str, Any] | None, marketplace_id: str | None = None
) -> str:
    """Why a case needs attention, in the operator's language. In English, the words written
    when it was flagged (they name Amazon's and Henpin's own codes as they are); so too when it
    was flagged without a code, or with one the inbox has no words for."""
    if isinstance(reason, dict) and (current_language() != DEFAULT_LANGUAGE or not words):
        worded = coded_words(
            str(reason.get("kind") or "attention"),
            reason.get("code"),
            reason.get("values"),
            marketplace_id,
        )
        if worded is not None:
            return worded
    return display.plain(words or "")


def money_notes(option: dict[str, Any], marketplace_id: str | None = None) -> str:
    """The notes under one way out's money, in the operator's language (`note_phrases`); the
    English notes as they were stored for options computed before notes had codes."""
    phrases = option.get("note_phrases")
    if isinstance(phrases, list) and phrases:
        return t("money_note.join").join(
            value_words("notes", p, marketplace_id, "money_note") for p in phrases
        )
    notes = option.get("notes")
    return display.amount(notes, marketplace_id) if notes else "—"


_ESCAPED = re.compile(r"\\([\\`*_\[\]<>#|$~])")


def as_cell(markdown: str) -> str:
    """Words made for st.markdown, for a table cell (which shows text as it is)."""
    return _ESCAPED.sub(r"\1", markdown)


def _when(value: Any) -> str:
    try:
        return display.at(datetime.fromisoformat(str(value)))
    except ValueError:
        return display.plain(value)


def event_text(
    kind: str, message: str, data: dict[str, Any], marketplace_id: str | None = None
) -> str:
    """A timeline line: events the inbox knows are worded in the operator's language; the rest
    show their kind in words and the flow's own text."""
    who = display.plain(data.get("operator") or "?")
    if kind == "decision" and data.get("choice"):
        if data.get("source") == "deadline":
            who = t("case.decided_by_deadline")
        return t("event.decision", who=who, choice=choice_label(str(data["choice"])))
    if kind == "claim":
        if data.get("previous"):
            return t("event.take_over", who=who, name=display.plain(data["previous"]))
        return t("event.claim", who=who)
    if kind == "release":
        return t("event.release", who=who)
    if kind == "recommendation" and data.get("action") and data.get("reason_code"):
        return t(
            "event.recommendation",
            action=display.plain(choice_label(str(data["action"]))),
            rule=display.plain(data.get("rule") or "—"),
            reason=reason(data, marketplace_id),
        )
    if kind == "closed" and data.get("outcome"):
        return t("event.closed", outcome=display.plain(label("outcome", str(data["outcome"]))))
    if kind == "waiting" and data.get("deadline") and data.get("timeout_choice"):
        return t(
            "event.waiting",
            deadline=_when(data["deadline"]),
            choice=display.plain(choice_label(str(data["timeout_choice"]))),
        )
    said = (
        attention(message, data["attention"], marketplace_id)
        if is_phrase(data.get("attention"))  # a needs-attention flag, by its code
        else display.plain(message)
    )
    if has_words(f"event_kind.{kind}"):
        return f"**{t(f'event_kind.{kind}')}**: {said}"
    return said


def question_title(question: dict[str, Any]) -> str:
    """A question's title in the operator's language (as asked when it has no title code)."""
    worded = coded_words("question", question.get("title_code"), question.get("title_values"))
    return worded if worded is not None else display.plain(question.get("title") or "")


def prompt_lines(question: dict[str, Any], marketplace_id: str | None = None) -> list[str] | None:
    """A question's prompt, one markdown line per fact, in the operator's language; None when the
    question was stored without lines (show its prompt text as asked)."""
    lines = question.get("prompt_lines")
    if not isinstance(lines, list) or not lines:
        return None
    shown = []
    for line in lines:
        if not isinstance(line, dict):
            continue
        if line.get("code") == AS_WRITTEN:
            shown.append(display.plain(line.get("text") or ""))
            continue
        worded = coded_words("prompt", line.get("code"), line.get("values"), marketplace_id)
        if worded is None:  # a line the inbox has no words for: as it was written
            worded = display.plain(line.get("text") or line.get("code") or "")
        shown.append(worded)
    return shown
