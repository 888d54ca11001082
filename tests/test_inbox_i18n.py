"""The inbox's words and figures: every language has every text, and times and money read right."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest

from henpin.domain import Outcome
from ui import display
from ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, TEXT, translate

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_language_has_every_text_with_the_same_placeholders(lang: str) -> None:
    english = TEXT[DEFAULT_LANGUAGE]
    assert set(TEXT[lang]) == set(english)
    for key, template in english.items():
        assert placeholders(TEXT[lang][key]) == placeholders(template), key


def test_every_outcome_has_a_plain_name() -> None:
    for outcome in Outcome:
        assert f"outcome.{outcome.value}" in TEXT[DEFAULT_LANGUAGE]


def test_a_missing_text_falls_back_to_english_then_to_its_key() -> None:
    assert translate("fr", "inbox.title") == "Inbox"
    assert translate("en", "no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("due_in", "shown"),
    [
        (timedelta(days=2, hours=3, minutes=5), "2 d 3 h left"),
        (timedelta(hours=5, minutes=10), "5 h 10 min left"),
        (timedelta(hours=1, minutes=30), ":orange[**1 h 30 min left**]"),
        (timedelta(seconds=20), ":orange[**less than a minute left**]"),
        (timedelta(minutes=-45), ":red[**overdue by 45 min**]"),
        (timedelta(days=-1), ":red[**overdue by 1 d**]"),
    ],
)
def test_time_left_before_a_deadline(due_in: timedelta, shown: str) -> None:
    assert display.time_left(NOW + due_in, NOW) == shown


def test_money_and_timestamps() -> None:
    assert display.money({"amount": "1234.5", "currency": "JPY"}) == "1,234.5 JPY"
    assert display.money(None) == "—"
    assert display.at_text("2026-03-02T08:15:00Z") == "2026-03-02 08:15 UTC"
    assert display.at_text("not a time") == "not a time"


def test_outside_text_cannot_format_the_page() -> None:
    shown = display.plain("![x](http://tracker.example/p.png) :red[urgent] $x$")
    assert shown == "!\\[x\\](http://tracker.example/p.png) :red\\[urgent\\] \\$x\\$"
