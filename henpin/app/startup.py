"""What each door does once, at its edge, before it reads or writes a case: the case store's
schema brought up to date. The door builds its `Settings` once and passes them in; what comes
back (the case store's URL) is what it hands every application function."""

from __future__ import annotations

from henpin.settings import Settings
from henpin.store.db import migrate


def open_case_store(settings: Settings) -> str:
    """The case store's URL, its schema at the newest migration (a no-op when it already is)."""
    migrate(settings.store_url)
    return settings.store_url
