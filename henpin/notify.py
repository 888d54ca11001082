"""The two ways Henpin tells people something: an Apprise message to named targets, and a
Prefect event that automations can act on.

Targets come from the setting `HENPIN_NOTIFY_URLS`: Apprise URLs (e-mail, Slack, Teams,
Discord, ... see https://github.com/caronc/apprise/wiki), each with its target names before
'=' (`operators,owner=slack://...`), the tag syntax of Apprise's own text configuration. The
URLs hold passwords and tokens: they are `SecretStr` in the settings and never logged here
(Apprise masks them in its own log lines).

In demo mode with no URL set, when `henpin up` started the demo's mail catcher (it sets
`HENPIN_NOTIFY_DEMO_CATCHER`), one target stands for every name the policy uses: that catcher (the same SMTP settings Henpin's e-mails to buyers use), as an
Apprise `mailto://` URL. Its messages land as `.eml` files in `.henpin/mail/`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import apprise
from pydantic import SecretStr

from henpin.outbox.mail import MailSettings
from henpin.settings import Settings

log = logging.getLogger(__name__)

#: `names=url`: names as in policies.yaml; the URL part may itself contain '='.
_NAMED = re.compile(r"^\s*(?P<names>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)\s*=\s*(?P<url>.+)$")
DEMO_RECIPIENT = "operators@henpin.localhost"


@dataclass(frozen=True)
class Target:
    """One Apprise URL and the names policies.yaml calls it by."""

    names: frozenset[str]
    url: SecretStr
    position: int  # its place in HENPIN_NOTIFY_URLS, 1-based: how logs name it


class NotifyConfigError(ValueError):
    """A HENPIN_NOTIFY_URLS entry that cannot be used, named by its position, never its text."""


def configured_targets(
    settings: Settings, mail: MailSettings, demo_names: Collection[str]
) -> list[Target]:
    """The targets of the settings; in demo mode with none set and the demo's catcher switched
    on (`notify_demo_catcher`), the local mail catcher under every name in `demo_names`."""
    targets = []
    for position, entry in enumerate(settings.notify_urls, start=1):
        match = _NAMED.match(entry.get_secret_value())
        if match is None or "://" in match["names"]:
            raise NotifyConfigError(
                f"HENPIN_NOTIFY_URLS entry {position} has no target names: write it as "
                "NAME=URL or NAME1,NAME2=URL (names as in policies.yaml `notifications:`)"
            )
        names = frozenset(n.strip() for n in match["names"].split(","))
        targets.append(Target(names, SecretStr(match["url"].strip()), position))
    demo = settings.demo_mode and settings.notify_demo_catcher
    if not targets and demo and mail.host and demo_names:
        targets.append(Target(frozenset(demo_names), SecretStr(demo_catcher_url(mail)), 1))
    return targets


def demo_catcher_url(mail: MailSettings) -> str:
    """The demo's mail catcher as an Apprise URL (plain SMTP on this machine, text body)."""
    sender = quote(mail.sender, safe="@")
    return (
        f"mailto://{mail.host}:{mail.port}?from={sender}&to={DEMO_RECIPIENT}"
        "&format=text&name=Henpin"
    )


def deliver(targets: list[Target], names: Collection[str], title: str, body: str) -> list[str]:
    """Send one message to every target carrying one of `names`. Returns what happened to each,
    as `#position sent` / `#position failed`, for the notification's record (no URL)."""
    results = []
    for target in targets:
        if not target.names & set(names):
            continue
        service = apprise.Apprise()
        if not service.add(target.url.get_secret_value()):
            log.error("HENPIN_NOTIFY_URLS entry %s is not a URL Apprise can use", target.position)
            results.append(f"#{target.position} unusable")
            continue
        ok = service.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            log.warning("notification %r not delivered to target #%s", title, target.position)
        results.append(f"#{target.position} {'sent' if ok else 'failed'}")
    return results


def emit_henpin_event(
    name: str,
    resource: dict[str, str],
    payload: dict[str, Any],
    *,
    event_id: uuid.UUID,
    related: list[dict[str, str]] | None = None,
) -> str | None:
    """Emit a Prefect event (`henpin.case.overdue`, ...) with the id kept on its notification
    record: Prefect's server stores an event id once, however often it arrives. Best effort:
    Prefect's events worker sends it in the background; None when this process emits none."""
    from prefect.events import emit_event

    emitted = emit_event(
        event=name, resource=resource, related=related, payload=payload, id=event_id
    )
    return None if emitted is None else str(emitted.id)
