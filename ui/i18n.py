"""Every word the inbox shows, per language, so a new language is one more table, not a page edit.

Pages call `t("key", name=value)`; the language is the browser session's (`lang` in session
state, set from the operator's profile at sign-in and switchable in the sidebar). A key missing
in a language falls back to English; a key missing everywhere shows the key itself, so a typo is
visible instead of blank. Names that come from data (choices, case types, outcomes) go through
`label()`, which shows unknown names as they are; choices and answer fields fall back to the
words their question was asked with (`choice_label()`, `field_label()`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st

from ui.text_en import EN
from ui.text_ja import JA

DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "ja": "日本語"}

TEXT: dict[str, dict[str, str]] = {"en": EN, "ja": JA}


def current_language() -> str:
    lang = st.session_state.get("lang", DEFAULT_LANGUAGE)
    return lang if lang in TEXT else DEFAULT_LANGUAGE


def translate(lang: str, key: str, /, **params: Any) -> str:
    """The text for `key` in `lang` (English if that language lacks it), with params filled in."""
    template = TEXT.get(lang, {}).get(key) or TEXT[DEFAULT_LANGUAGE].get(key) or key
    return template.format(**params) if params else template


def t(key: str, /, **params: Any) -> str:
    """The text for `key` in this browser session's language."""
    return translate(current_language(), key, **params)


def label(kind: str, name: str | None) -> str:
    """A plain-language name for a data value (choice, case type, state, ...); unknown ones as-is."""
    if not name:
        return "—"
    key = f"{kind}.{name}"
    lang = current_language()
    if key in TEXT.get(lang, {}) or key in TEXT[DEFAULT_LANGUAGE]:
        return translate(lang, key)
    return name


def choice_label(choice: str, asked_as: object = None) -> str:
    """A choice in the operator's language; one the inbox has no words for shows the words its
    question was asked with, else its name."""
    if f"choice.{choice}" in TEXT[DEFAULT_LANGUAGE]:
        return label("choice", choice)
    return str(asked_as) if asked_as else choice


def option_label(option: str, described: object = None) -> str:
    """An answer field's option: the inbox's words for it, else its name with the words its
    question gives beside it (a condition's description in policies.yaml), else its name."""
    if f"option.{option}" in TEXT[DEFAULT_LANGUAGE]:
        return label("option", option)
    about = described.get(option) if isinstance(described, dict) else None
    return f"{option} — {about}" if about else option


def field_label(name: str, asked_as: object = None) -> str:
    """An answer field's name in the operator's language (else as its question names it)."""
    if f"field.{name}" in TEXT[DEFAULT_LANGUAGE]:
        return label("field", name)
    return str(asked_as) if asked_as else name


def worded(values: Iterable[Any], words: Callable[[Any], str]) -> Callable[[Any], str]:
    """A widget's `format_func`: each option's words, fixed while the page is drawn (a function
    that read the session's language later could word the options in another language)."""
    table = {v: words(v) for v in values}
    return lambda v: table.get(v, str(v))
