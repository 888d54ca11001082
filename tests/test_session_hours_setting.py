"""The inbox's settings are read by Settings like every other setting. HENPIN_SESSION_HOURS: a
value that is not a number between 0.05 and 720 hours falls back to 8 (a typo must not keep
sessions open forever, nor stop the inbox); HENPIN_INBOX_REFRESH_SECONDS likewise falls back to
30, and is at least 2; HENPIN_PREFECT_UI_URL loses a trailing slash."""

from __future__ import annotations

import pytest

from henpin.settings import Settings


@pytest.mark.parametrize(
    ("given", "hours"),
    [
        ("1", 1.0),
        (" 0.5 ", 0.5),
        ("", 8.0),
        ("eight", 8.0),
        ("0", 8.0),
        ("1000", 8.0),
        ("nan", 8.0),
    ],
)
def test_session_hours(given: str, hours: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HENPIN_SESSION_HOURS", given)
    assert Settings().session_hours == hours


@pytest.mark.parametrize(
    ("given", "seconds"), [("10", 10), (" 5 ", 5), ("1", 2), ("-3", 2), ("", 30), ("soon", 30)]
)
def test_inbox_refresh_seconds(given: str, seconds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HENPIN_INBOX_REFRESH_SECONDS", given)
    assert Settings().inbox_refresh_seconds == seconds


@pytest.mark.parametrize(
    ("given", "url"),
    [("http://127.0.0.1:4200/", "http://127.0.0.1:4200"), (" ", None), ("", None)],
)
def test_prefect_ui_url(given: str, url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HENPIN_PREFECT_UI_URL", given)
    assert Settings().prefect_ui_url == url
