"""Where the tasks find the case store: the settings of the process they run in."""

from __future__ import annotations

from functools import cache

from henpin.settings import Settings, load_settings


@cache
def settings() -> Settings:
    return load_settings()


def store_url() -> str:
    return settings().store_url
