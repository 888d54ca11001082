"""Nothing secret in any log, at any level.

Amazon hands out presigned URLs (feed uploads, report and feed-document downloads) whose query
string is the credential itself (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`:
docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html); httpx logs each
request's URL at INFO, python-amazon-sp-api logs request headers (the access token) at DEBUG.
Every log record of the process is rewritten when it is made, before any handler, Prefect's
included, sees it: signed query strings and Login with Amazon tokens and secrets are replaced.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

import yaml

REDACTED = "(redacted)"
_RULES = (
    # A query string carrying a signature or token: the whole query goes.
    (
        re.compile(
            r"\?[^\s\"'<>]*?(?:X-Amz-(?:Signature|Credential|Security-Token)|Signature=|"
            r"[Tt]oken=)[^\s\"'<>]*"
        ),
        "?" + REDACTED,
    ),
    # Login with Amazon tokens: Atza|... (access), Atzr|... (refresh).
    (re.compile(r"Atz[ar]\|[^\s\"',}]+"), "Atz?|" + REDACTED),
    # Secrets as a form field, JSON member or header.
    (
        re.compile(
            r"(?i)((?:client_secret|refresh_token|access_token|x-amz-access-token|password)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)(Bearer\s+)[^\s\"']+"), r"\1" + REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def keep_secrets_out_of_logs() -> None:
    """Rewrite every log record of this process as it is made (idempotent)."""
    make = logging.getLogRecordFactory()
    if getattr(make, "henpin_redacts", False):
        return

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    redacted_record.henpin_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)


_SUSPENDED = re.compile(r"^Finished in state (?:Suspended|Paused)\(")


class PauseIsNotAnError(logging.Filter):
    """A case flow that waits for an operator is suspended: Prefect's async engine logs its end
    ("Finished in state Suspended(type=PAUSED)") at ERROR, its sync engine at INFO
    (prefect/flow_engine.py). A waiting case is the normal course, not an error: the record is
    logged at INFO, so the runner's log and the Prefect UI show errors only for real ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and _SUSPENDED.match(str(record.msg)):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


_THREAD_TIMEOUT = "Timeout of %s seconds configured for this task, but the task is running in a"


class ThreadTimeoutIsKnown(logging.Filter):
    """In the resident executor (henpin/resident.py) every task runs in its flow run's thread,
    and Prefect warns at each task run that a task's timeout cannot interrupt a blocking call
    there (prefect/task_engine.py). Henpin knows: Amazon calls and database sessions carry their
    own timeouts, and a run that still hangs makes the executor recycle itself. The warning,
    one per task run in the log and the Prefect UI, is left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_THREAD_TIMEOUT)


def prefect_logging_settings(prefect_home: Path) -> Path:
    """Prefect's own logging configuration of the installed version, with `PauseIsNotAnError` on
    its console and API handlers, written into the stack's Prefect home (for
    PREFECT_LOGGING_SETTINGS_PATH). Derived from Prefect's file at each start, so an upgrade of
    Prefect keeps its handlers. Prefect is not imported: it reads its settings once, at import,
    and this runs before the caller has set them."""
    prefect = importlib.util.find_spec("prefect")
    if prefect is None or prefect.origin is None:
        raise RuntimeError("Prefect is not installed")
    defaults = (
        Path(prefect.origin).parent / "logging" / "logging.yml"
    )  # DEFAULT_LOGGING_SETTINGS_PATH
    config = yaml.safe_load(defaults.read_text())
    filters = config.setdefault("filters", {})
    filters["henpin_pause_is_not_an_error"] = {"()": f"{__name__}.PauseIsNotAnError"}
    filters["henpin_thread_timeout_is_known"] = {"()": f"{__name__}.ThreadTimeoutIsKnown"}
    for name in ("console", "api"):
        handler = config["handlers"][name]
        handler["filters"] = [
            *handler.get("filters", []),
            "henpin_pause_is_not_an_error",
            "henpin_thread_timeout_is_known",
        ]
    path = prefect_home / "logging.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
