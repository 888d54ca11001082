"""Nothing secret in any log, at any level.

Amazon hands out presigned URLs (feed uploads, report and feed-document downloads) whose query
string is the credential itself (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`:
docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html); httpx logs each
request's URL at INFO, python-amazon-sp-api logs request headers (the access token) at DEBUG.
Every log record of the process is rewritten when it is made, before any handler, Prefect's
included, sees it: signed query strings and Login with Amazon tokens and secrets are replaced.
"""

from __future__ import annotations

import logging
import re
from typing import Any

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
