"""Reports API 2021-06-30: report statuses and report documents (the returns report)."""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sp_api.api.reports.reports import Reports

from henpin.amazon.errors import AmazonPayloadError
from henpin.amazon.orders import _describe
from henpin.amazon.transport import _host_header

RETURNS_REPORT = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
# A returns report Amazon made in the last few minutes is used again instead of asking for a new
# one (createReport allows about one call a minute). Kept shorter than ingestion's overlap
# (tasks/ingest.py OVERLAP, 10 min) so the returns after the report's end are read next time.
REPORT_REUSE = timedelta(minutes=5)
# Amazon's limit for the returns reports' window; older returns are past their 24 h answer anyway.
REPORT_MAX_WINDOW = timedelta(days=60)
# How long one call waits for a report: under the Amazon tasks' 300 s timeout (tasks/kinds.py).
REPORT_WAIT_S = 240.0
REPORT_POLL_S = (5.0, 10.0, 20.0, 30.0)


class ReportProcessingStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    FATAL = "FATAL"
    CANCELLED = "CANCELLED"  # for the returns reports also: "no data in the window"


class ReportStatus(BaseModel):
    """Where a report stands at Amazon (getReport / getReports)."""

    report_id: str
    report_type: str
    marketplace_ids: list[str] = Field(default_factory=list)
    processing_status: ReportProcessingStatus
    created_time: AwareDatetime
    data_start_time: AwareDatetime | None = None
    data_end_time: AwareDatetime | None = None
    report_document_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.processing_status in (
            ReportProcessingStatus.DONE,
            ReportProcessingStatus.FATAL,
            ReportProcessingStatus.CANCELLED,
        )


def report_status_from_amazon(payload: dict[str, Any]) -> ReportStatus:
    """Amazon's Report (Reports API 2021-06-30) as `ReportStatus`."""
    try:
        return ReportStatus(
            report_id=payload["reportId"],
            report_type=payload["reportType"],
            marketplace_ids=payload.get("marketplaceIds") or [],
            processing_status=payload["processingStatus"],
            created_time=payload["createdTime"],
            data_start_time=payload.get("dataStartTime"),
            data_end_time=payload.get("dataEndTime"),
            report_document_id=payload.get("reportDocumentId"),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        detail = _describe(exc) if isinstance(exc, ValidationError) else f"missing {exc}"
        raise AmazonPayloadError(
            f"Amazon's report answer does not have the expected shape: {detail}", payload=payload
        ) from exc


class _Reports(Reports):
    @property
    def headers(self) -> dict[str, str]:
        return _host_header(self)


def _unzipped(content: bytes, info: Mapping[str, Any], what: str, operation: str) -> bytes:
    if (info.get("compressionAlgorithm") or "").upper() != "GZIP":
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError) as exc:
        raise AmazonPayloadError(
            f"{what} is marked GZIP but does not unzip", payload=content[:2000], operation=operation
        ) from exc


def _report_text(content: bytes, content_type: str, marketplace_id: str | None) -> str:
    """A flat-file report's text: its declared charset, else UTF-8, else the marketplace's
    usual legacy encoding (Amazon's older flat files: Shift_JIS in Japan, Windows-1252 else)."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            with contextlib.suppress(LookupError, UnicodeDecodeError):
                return content.decode(value.strip('"'))
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        legacy = "cp932" if marketplace_id == "A1VC38T7YXB528" else "cp1252"
        return content.decode(legacy, errors="replace")


def _decode(content: bytes, content_type: str) -> str:
    """Text of a document: the charset its header names, else its XML declaration's, else UTF-8."""
    charset = None
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    if charset is None and content.startswith(b"<?xml"):
        declaration = content[: content.find(b"?>") + 2].decode("ascii", "replace")
        for quote in ('"', "'"):
            marker = f"encoding={quote}"
            if marker in declaration:
                charset = declaration.split(marker, 1)[1].split(quote, 1)[0]
    try:
        return content.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return content.decode("utf-8", errors="replace")
