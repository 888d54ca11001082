"""The lock on the Prefect server of the production layout (`henpin up --scale`).

A self-hosted Prefect server asks for Basic authentication when it is started with
`PREFECT_SERVER_API_AUTH_STRING` ("user:password"); every process that talks to its API (workers,
the flow runs they start, the housekeeper, the inbox, `henpin decide`) sends the same string as
`PREFECT_API_AUTH_STRING`, and the Prefect UI asks for it on first load
(docs.prefect.io/v3/advanced/security-settings). Only `/api/health` and `/api/ready` answer
without it.

The string is the one set in the environment (`PREFECT_SERVER_API_AUTH_STRING`), or one Henpin
makes once and keeps in `HENPIN_HOME/prefect-auth` (readable by its owner only), so the
command line finds it next to the stack's status file. It is never written to the status file,
the case store or a log.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

AUTH_FILE = "prefect-auth"
USER = "henpin"
SERVER_SETTING = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_SETTING = "PREFECT_API_AUTH_STRING"


def auth_string_for(home: Path) -> str:
    """The layout's auth string: the environment's, else the home's file (made on first use)."""
    given = os.environ.get(SERVER_SETTING, "").strip()
    if given:
        if ":" not in given:
            raise ValueError(
                f"{SERVER_SETTING} must be 'user:password' (Prefect's Basic authentication)"
            )
        return given
    known = stored_auth_string(home)
    if known:
        return known
    path = home / AUTH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    made = f"{USER}:{secrets.token_urlsafe(24)}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(made + "\n")
    return made


def stored_auth_string(home: Path) -> str | None:
    """The auth string kept in the home, if the layout made one there."""
    path = home / AUTH_FILE
    if not path.exists():
        return None
    return path.read_text().strip() or None


def client_auth_env(home: Path) -> dict[str, str]:
    """What a process of this home sends to the locked Prefect API ({} when it is not locked)."""
    given = os.environ.get(CLIENT_SETTING) or os.environ.get(SERVER_SETTING)
    known = given or stored_auth_string(home)
    return {CLIENT_SETTING: known} if known else {}
