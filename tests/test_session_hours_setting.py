"""HENPIN_SESSION_HOURS is read by Settings like every other setting; a value that is not a
number between 0.05 and 720 hours falls back to 8 (a typo must not keep sessions open forever,
nor stop the inbox)."""

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
