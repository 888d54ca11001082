"""The inbox's words and figures: every language has every text, every page reads right in every
language, and times and money read right."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from henpin import accounts, metrics
from henpin.domain import CaseState, CaseType, Outcome
from henpin.inbox_ops import ClaimCode, DecisionCode, SortOrder
from tests.test_inbox_support import (
    PAGES,
    address_error_case,
    app,
    closed_case,
    fresh_store,
    on_page,
    refund_action,
    set_operator,
    signed_in,
    waiting_case,
)
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
    assert shown == "!\\[x\\](http\u2060://tracker.example/p.png) :red\\[urgent\\] \\$x\\$"


def test_outside_text_has_no_autolinks() -> None:
    """GFM links bare URLs and e-mail addresses even when escaped: each is broken by an
    invisible word joiner, and reads the same."""
    shown = display.plain("See https://evil.example, www.evil.example or mail a.b@evil.example")
    assert "https://" not in shown and "www." not in shown and "b@" not in shown
    assert shown.replace("\u2060", "") == (
        "See https://evil.example, www.evil.example or mail a.b@evil.example"
    )


# --- every text the pages ask for exists, and every page reads right in every language ------------

UI = Path(__file__).parents[1] / "ui"
KEY_LIKE = re.compile(
    r"\b(?:" + "|".join(sorted({k.split(".")[0] for k in TEXT["en"]})) + r")\.[a-z_][a-z0-9_.-]*"
)


def test_every_text_the_pages_name_exists() -> None:
    named = {
        m.group(1)
        for path in UI.rglob("*.py")
        if path.name != "i18n.py"  # its docstring shows t("key", ...)
        for m in re.finditer(r'\bt\(\s*"([a-z0-9_.-]+)"', path.read_text())
    }
    assert named and not named - set(TEXT[DEFAULT_LANGUAGE])


def test_every_code_a_result_can_carry_has_words() -> None:
    refusals = set(
        re.findall(r'AccountRefused\(\s*"([a-z-]+)"', Path(accounts.__file__).read_text())
    )
    keys = (
        [f"decision.{c.value}" for c in DecisionCode]
        + [f"claim.{c.value}" for c in ClaimCode]
        + [f"account.{code}" for code in refusals]
        + [f"sort.{s.value}" for s in SortOrder]
        + [f"dash.age.{name}" for name, _ in metrics.AGE_BUCKETS]
        + [f"case_type.{c.value}" for c in CaseType]
        + [f"state.{s.value}" for s in CaseState]
        + [f"role.{r}" for r in accounts.ROLES]
    )
    assert len(refusals) >= 6
    assert [k for k in keys if k not in TEXT[DEFAULT_LANGUAGE]] == []


def shown(at: AppTest) -> str:
    """Every word a page shows: texts, messages, widget labels and options, table headers."""
    parts = [str(e.value) for e in [*at.markdown, *at.caption, *at.title, *at.subheader]]
    parts += [str(e.value) for e in [*at.info, *at.success, *at.warning, *at.error]]
    parts += [str(e.label) for e in [*at.button, *at.text_input, *at.text_area, *at.checkbox]]
    for widget in [*at.selectbox, *at.multiselect, *at.radio]:
        parts += [str(widget.label), *map(str, widget.options)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [" ".join(map(str, d.value.columns)) for d in at.dataframe]
    return "\n".join(parts)


ENGLISH_ONLY = sorted(
    {v for k, v in TEXT["en"].items() if v != TEXT["ja"][k] and "{" not in v and " " in v.strip()},
    key=len,
    reverse=True,
)


@pytest.fixture
def busy_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """A store with something on every page: waiting and closed cases, money, audit lines."""
    url = fresh_store(tmp_path, monkeypatch)
    set_operator(url, "alice", role="admin")
    waiting_case(url, "111-0000000-0000601", timedelta(minutes=-5))
    case_id = address_error_case(url, "302-0000000-0000602")
    closed = closed_case(url, "302-0000000-0000603", "refunded-partly", type="return-request")
    refund_action(url, closed, "k1", "CustomerReturn", "12.00")
    return url, case_id


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
@pytest.mark.parametrize("page", ["login", *PAGES])
def test_every_page_in_every_language(busy_store: tuple[str, int], page: str, lang: str) -> None:
    url, case_id = busy_store
    set_operator(url, "alice", language=lang)
    if page == "login":
        at = app().run()
        at.session_state["lang"] = lang
        at = at.run()
    else:
        at = on_page(signed_in(), page, case=str(case_id))
    if page == "bulk":  # the preview too
        at.selectbox(key="bulk.type").set_value("address-error").run()
        at.button(key="bulk.select_all").click().run()
        at.radio(key="bulk.choice").set_value("escalate")
        at.button(key="bulk.preview_button").click().run()
        assert at.dataframe
    assert not at.exception
    words = shown(at)
    assert not KEY_LIKE.findall(words), "a text key shows instead of its words"
    if lang != DEFAULT_LANGUAGE:
        leaked = [english for english in ENGLISH_ONLY if english in words]
        assert not leaked, f"English left on the {lang} {page} page"
