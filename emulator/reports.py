"""Reports API 2021-06-30: how a seller asks Amazon for a report (here: the returns reports).

The seller creates a report for a type, marketplaces and a time window, polls it, then downloads
its document. In simulated time a report waits ``QUEUE_TIME`` IN_QUEUE and ``PROCESSING_TIME``
IN_PROGRESS, then is generated from the return requests recorded at that moment: DONE with a
``reportDocumentId``, or CANCELLED without one when the window holds no return (Amazon cancels
empty returns reports instead of sending an empty file: clients must read CANCELLED as "no data").

Supported types: ``GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE`` and
``GET_XML_RETURNS_DATA_BY_RETURN_DATE`` (see ``returns_report``); any other type is refused with
400 rather than answered with an invented document. A window may span at most 60 days, as Amazon
documents for these types. Times are printed as Amazon's Reports API prints them
(``2026-11-27T18:31:00+00:00``).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from emulator.clock import iso_precise, parse_time
from emulator.errors import invalid_input, not_found
from emulator.feeds import (
    PROCESSING_TIME,
    QUEUE_TIME,
    RETENTION,
    new_document_id,
    own_url,
    presigned,
)
from emulator.regions import visible
from emulator.returns_report import CONTENT_TYPES, REPORT_TYPES, render, returns_in_window
from emulator.runtime import Emulator, emulator_of, query_list, sp_api_call
from emulator.state import FeedDocument, Report

PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
MAX_WINDOW = timedelta(days=60)
#: dataEndTime may not be in the future; this much clock skew between client and Amazon is let go.
CLOCK_SKEW = timedelta(minutes=1)


def amazon_time(moment: datetime) -> str:
    """A time as the Reports API prints it: UTC, whole seconds, ``+00:00``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def processing_status(report: Report, now: datetime) -> str:
    """Where the report is at simulated time ``now``."""
    if report.outcome is not None:
        return report.outcome
    return "IN_QUEUE" if now < report.created + QUEUE_TIME else "IN_PROGRESS"


def report_answer(report: Report, now: datetime) -> dict[str, Any]:
    """The Report object of getReport/getReports."""
    answer: dict[str, Any] = {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids,
        "dataStartTime": amazon_time(report.data_start),
        "dataEndTime": amazon_time(report.data_end),
        "createdTime": amazon_time(report.created),
        "processingStatus": processing_status(report, now),
    }
    if report.processing_start is not None:
        answer["processingStartTime"] = amazon_time(report.processing_start)
    elif now >= report.created + QUEUE_TIME:
        answer["processingStartTime"] = amazon_time(report.created + QUEUE_TIME)
    if report.processing_end is not None:
        answer["processingEndTime"] = amazon_time(report.processing_end)
    if report.document_id is not None:
        answer["reportDocumentId"] = report.document_id
    return answer


def _finish_time(report: Report) -> datetime:
    return report.created + QUEUE_TIME + PROCESSING_TIME


def settle_reports(emulator: Emulator, now: datetime) -> bool:
    """Generate every report due by ``now``, oldest first; True if any finished."""
    due = sorted(
        (
            r
            for r in emulator.state.reports.values()
            if r.outcome is None and now >= _finish_time(r)
        ),
        key=lambda r: (_finish_time(r), r.report_id),
    )
    for report in due:
        generate_report(emulator, report)
    return bool(due)


def generate_report(emulator: Emulator, report: Report) -> None:
    """Write the report's document from the return requests in its window (or cancel it)."""
    state = emulator.state
    report.processing_start = report.created + QUEUE_TIME
    report.processing_end = _finish_time(report)
    if report.fatal_by_fault:
        report.outcome = "FATAL"
        return
    found = returns_in_window(
        state.returns, report.data_start, report.data_end, report.marketplace_ids
    )
    if not found:
        report.outcome = "CANCELLED"
        return
    document_id = new_report_document_id()
    content = render(
        report.report_type, found, state.orders, state.refunds, at=report.processing_end
    )
    state.documents[document_id] = FeedDocument(
        document_id, CONTENT_TYPES[report.report_type], "report", content
    )
    report.document_id = document_id
    report.outcome = "DONE"


def new_report_document_id() -> str:
    """A report document id in Amazon's style."""
    return new_document_id().replace("amzn1.tortuga.4", "amzn1.spdoc.1.4", 1)


# -- operations ---------------------------------------------------------------------------------


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise invalid_input("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_input("The request body must be a JSON object.")
    return body


def _window_time(body: dict[str, Any], name: str, now: datetime) -> datetime:
    raw = body.get(name)
    if raw is None:
        return now  # the model: "The default is now."
    try:
        if not isinstance(raw, str):
            raise ValueError
        moment = parse_time(raw)
    except ValueError:
        raise invalid_input(f"{name} must be an ISO 8601 date-time, got {raw!r}.") from None
    if moment > now + CLOCK_SKEW:
        raise invalid_input(f"{name} must be prior to or equal to the current date and time.")
    return min(moment, now)


def create_report(emulator: Emulator, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """createReport: queue a returns report (unknown body keys are ignored)."""
    report_type = body.get("reportType")
    if not isinstance(report_type, str) or not report_type:
        raise invalid_input("reportType is required.")
    if report_type not in REPORT_TYPES:
        raise invalid_input(
            f"Report type {report_type} is not supported here.",
            f"The emulator generates {', '.join(REPORT_TYPES)}.",
        )
    marketplace_ids = body.get("marketplaceIds")
    if (
        not isinstance(marketplace_ids, list)
        or not 1 <= len(marketplace_ids) <= 25
        or not all(isinstance(m, str) and m for m in marketplace_ids)
    ):
        raise invalid_input("marketplaceIds must be a list of 1 to 25 marketplace ids.")
    options = body.get("reportOptions")
    if options is not None and not (
        isinstance(options, dict) and all(isinstance(v, str) for v in options.values())
    ):
        raise invalid_input("reportOptions must be an object of strings.")
    start = _window_time(body, "dataStartTime", now)
    end = _window_time(body, "dataEndTime", now)
    if start > end:
        raise invalid_input("dataStartTime must be before dataEndTime.")
    if end - start > MAX_WINDOW:
        raise invalid_input(
            "A returns report can cover at most 60 days.",
            "Request several reports for a longer period.",
        )
    state = emulator.state
    report_id = str(state.next_report_number)
    state.next_report_number += 1
    report = Report(report_id, report_type, list(marketplace_ids), now, start, end)
    report.fatal_by_fault = emulator.faults.report_fatal(report_id)
    state.reports[report_id] = report
    return {"reportId": report_id}


def get_report(emulator: Emulator, report_id: str, now: datetime) -> dict[str, Any]:
    """getReport: the report's status and, once DONE, its document id."""
    report = emulator.state.reports.get(report_id)
    if report is None:
        raise not_found(f"Report {report_id} was not found.")
    return report_answer(report, now)


def cancel_report(emulator: Emulator, report_id: str, now: datetime) -> dict[str, Any]:
    """cancelReport: only a report still IN_QUEUE can be cancelled."""
    report = emulator.state.reports.get(report_id)
    if report is None:
        raise not_found(f"Report {report_id} was not found.")
    if processing_status(report, now) != "IN_QUEUE":
        raise invalid_input(f"Report {report_id} is no longer IN_QUEUE and cannot be cancelled.")
    report.outcome = "CANCELLED"
    report.processing_end = now
    return {}


def get_report_document(emulator: Emulator, document_id: str, base_url: str) -> dict[str, Any]:
    """getReportDocument: where to download a report (never compressed here)."""
    document = emulator.state.documents.get(document_id)
    if document is None or document.kind != "report":
        raise not_found(f"Report document {document_id} was not found.")
    return {
        "reportDocumentId": document_id,
        "url": presigned(f"{base_url}/_documents/{document_id}"),
    }


def get_reports(emulator: Emulator, request: Request, now: datetime) -> dict[str, Any]:
    """getReports: reports matching the filters, newest first, ``pageSize`` at a time."""
    token = request.query_params.get("nextToken")
    filters = _decode_token(token, request) if token else _filters(request, now)
    reports = sorted(
        (
            r
            for r in emulator.state.reports.values()
            if _matches(r, filters, now) and visible(request, r.marketplace_ids)
        ),
        key=lambda r: (r.created, r.report_id),
        reverse=True,
    )
    offset, size = int(filters["offset"]), int(filters["pageSize"])
    answer: dict[str, Any] = {
        "reports": [report_answer(r, now) for r in reports[offset : offset + size]]
    }
    if offset + size < len(reports):
        following = dict(filters, offset=offset + size)
        answer["nextToken"] = base64.urlsafe_b64encode(json.dumps(following).encode()).decode()
    return answer


def _filters(request: Request, now: datetime) -> dict[str, Any]:
    report_types = query_list(request, "reportTypes")
    if not report_types:
        raise invalid_input("Either reportTypes or nextToken is required.")
    if len(report_types) > 10:
        raise invalid_input("reportTypes accepts at most 10 values.")
    statuses = query_list(request, "processingStatuses")
    bad = [s for s in statuses if s not in PROCESSING_STATUSES]
    if bad:
        raise invalid_input(f"Invalid processingStatuses value {bad[0]!r}.")
    marketplace_ids = query_list(request, "marketplaceIds")
    if len(marketplace_ids) > 10:
        raise invalid_input("marketplaceIds accepts at most 10 values.")
    try:
        page_size = int(request.query_params.get("pageSize", "10"))
    except ValueError:
        raise invalid_input("pageSize must be an integer between 1 and 100.") from None
    if not 1 <= page_size <= 100:
        raise invalid_input("pageSize must be between 1 and 100.")
    try:
        since = parse_time(request.query_params.get("createdSince") or iso_precise(now - RETENTION))
        until = parse_time(request.query_params.get("createdUntil") or iso_precise(now))
    except ValueError:
        raise invalid_input("createdSince and createdUntil must be ISO 8601 date-times.") from None
    return {
        "reportTypes": report_types,
        "processingStatuses": statuses,
        "marketplaceIds": marketplace_ids,
        "createdSince": iso_precise(since),
        "createdUntil": iso_precise(until),
        "pageSize": page_size,
        "offset": 0,
    }


def _decode_token(token: str, request: Request) -> dict[str, Any]:
    # python-amazon-sp-api sends nextToken alone, as the model demands.
    others = [key for key in request.query_params if key != "nextToken"]
    if others:
        raise invalid_input(
            "nextToken must be the only parameter.", f"Also sent: {', '.join(sorted(others))}."
        )
    try:
        filters: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.encode()))
        int(filters["offset"])
    except (ValueError, KeyError, TypeError):
        raise invalid_input("Invalid nextToken.") from None
    return filters


def _matches(report: Report, filters: dict[str, Any], now: datetime) -> bool:
    if report.report_type not in filters["reportTypes"]:
        return False
    statuses = filters["processingStatuses"]
    if statuses and processing_status(report, now) not in statuses:
        return False
    marketplaces = filters["marketplaceIds"]
    if marketplaces and not set(marketplaces) & set(report.marketplace_ids):
        return False
    since, until = parse_time(filters["createdSince"]), parse_time(filters["createdUntil"])
    return since <= report.created <= until


# -- routes -------------------------------------------------------------------------------------


def router() -> APIRouter:
    """Reports operations (report documents download from the feeds' ``/_documents/`` URL)."""
    routes = APIRouter()
    base = "/reports/2021-06-30"

    @routes.post(f"{base}/reports")
    async def create_report_route(request: Request) -> Response:
        emulator, raw = emulator_of(request), await request.body()
        return await sp_api_call(
            request, "createReport", lambda now: (202, create_report(emulator, _body(raw), now))
        )

    @routes.get(f"{base}/reports")
    async def get_reports_route(request: Request) -> Response:
        emulator = emulator_of(request)
        return await sp_api_call(
            request, "getReports", lambda now: (200, get_reports(emulator, request, now))
        )

    def in_region(request: Request, report_id: str) -> None:
        # Each region has its own reports.
        report = emulator_of(request).state.reports.get(report_id)
        if report is not None and not visible(request, report.marketplace_ids):
            raise not_found(f"Report {report_id} was not found.")

    @routes.get(f"{base}/reports/{{report_id}}")
    async def get_report_route(request: Request, report_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            in_region(request, report_id)
            return 200, get_report(emulator, report_id, now)

        return await sp_api_call(request, "getReport", operation)

    @routes.delete(f"{base}/reports/{{report_id}}")
    async def cancel_report_route(request: Request, report_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            in_region(request, report_id)
            return 200, cancel_report(emulator, report_id, now)

        return await sp_api_call(request, "cancelReport", operation)

    @routes.get(f"{base}/documents/{{document_id}}")
    async def get_report_document_route(request: Request, document_id: str) -> Response:
        emulator = emulator_of(request)
        return await sp_api_call(
            request,
            "getReportDocument",
            lambda now: (200, get_report_document(emulator, document_id, own_url(request))),
        )

    return routes
