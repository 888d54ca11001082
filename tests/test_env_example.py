""".env.example lists every setting Henpin reads, with its default; README explains each."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from henpin.outbox.mail import MailSettings
from henpin.settings import Settings

REPO = Path(__file__).resolve().parents[1]
#: Read with os.environ, outside the settings classes.
OTHERS = {
    "HENPIN_SPAPI_MODELS",
}


def env_names(model: type[BaseSettings]) -> dict[str, object]:
    prefix = str(model.model_config.get("env_prefix", ""))
    names = {}
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        env = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
        names[env] = field.default
    return names


def test_every_setting_is_in_env_example_with_its_default() -> None:
    listed = dict(
        re.findall(r"^# ([A-Z][A-Z0-9_]+)=(.*)$", (REPO / ".env.example").read_text(), re.M)
    )
    settings = {**env_names(Settings), **env_names(MailSettings)}
    assert set(listed) == set(settings) | OTHERS
    for env, default in settings.items():
        shown = listed[env]
        if default is None or env in {"HENPIN_MARKETPLACES", "HENPIN_NOTIFY_URLS"}:
            continue  # no default, or an example value
        if isinstance(default, bool):
            assert shown == str(default).lower(), env
        elif isinstance(default, int | float):
            assert float(shown) == float(default), env
        else:
            assert shown == str(default), env


def test_every_setting_of_env_example_is_explained_in_the_readme() -> None:
    listed = re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M)
    readme = (REPO / "README.md").read_text()
    assert [name for name in listed if f"`{name}`" not in readme] == []
