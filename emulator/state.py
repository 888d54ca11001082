"""What the emulated Amazon account holds: orders, feeds, reports, documents, refunds, return
requests, messages to buyers, tokens, fault settings and a call log.

All of it lives in memory behind one lock (request handlers run on worker threads). With a state
file the whole state is written after every change and read back at start, so a restart of
``henpin up`` finds the demo where it left it.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator.clock import SimulatedClock, iso_precise, parse_time

STATE_VERSION = 1
#: The call log keeps the most recent calls only, so a long demo does not grow the file forever.
MAX_CALLS = 5000


@dataclass
class FeedDocument:
    """A feed's input file (uploaded by the seller), its processing report or a report document."""

    document_id: str
    content_type: str
    kind: str  # "input" or "result" (Feeds API), "report" (Reports API)
    content: str | None = None  # None until the seller has uploaded it


@dataclass
class FeedResult:
    """The outcome of one message of a feed, as the control API lists it."""

    message_id: int
    order_id: str | None
    result_code: str  # Success, Error or Warning
    code: str | None  # Amazon's ResultMessageCode; None for a success
    description: str

    def to_json(self) -> dict[str, Any]:
        """Control-API spelling."""
        return {
            "messageId": self.message_id,
            "orderId": self.order_id,
            "resultCode": self.result_code,
            "code": self.code,
            "description": self.description,
        }


@dataclass
class Feed:
    """A submitted feed and, once processed, its outcome."""

    feed_id: str
    feed_type: str
    marketplace_ids: list[str]
    created: datetime
    input_document_id: str
    outcome: str | None = None  # DONE or FATAL once processed; None while queued or in progress
    processing_start: datetime | None = None
    processing_end: datetime | None = None
    result_document_id: str | None = None
    results: list[FeedResult] = field(default_factory=list)
    #: Set by fault modes when the feed is created: {"seed", "fatal", "messageErrorRate"}.
    fault_plan: dict[str, Any] | None = None
    #: The SP-API region the feed was created in (its MerchantIdentifier must be that region's
    #: merchant token); None for a feed created with the legacy region-less token.
    region: str | None = None


@dataclass
class Report:
    """A requested report (Reports API) and, once processed, its outcome and document."""

    report_id: str
    report_type: str
    marketplace_ids: list[str]
    created: datetime
    data_start: datetime
    data_end: datetime
    outcome: str | None = None  # DONE, CANCELLED or FATAL; None while queued or in progress
    processing_start: datetime | None = None
    processing_end: datetime | None = None
    document_id: str | None = None
    fatal_by_fault: bool = False  # decided by fault modes when the report is created


@dataclass
class AccessTokenGrant:
    """An LWA access token the emulator issued, and for whom."""

    client_id: str
    grant: str  # "refresh_token" or "client_credentials"
    expires_at: datetime  # wall-clock: clients cache tokens by wall time
    scope: str | None = None
    region: str | None = None  # the SP-API region the seller authorised; None: legacy token


class EmulatorState:
    """The emulated account's data, thread-safe, optionally persisted to a JSON file."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.state_file = state_file
        self.clock: SimulatedClock | None = (
            None  # set by create_app; saved so time survives restarts
        )
        self.orders: dict[str, dict[str, Any]] = {}
        self.feeds: dict[str, Feed] = {}
        self.documents: dict[str, FeedDocument] = {}
        self.refunds: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.access_tokens: dict[str, AccessTokenGrant] = {}
        self.saved_simulated_now: datetime | None = None
        self.next_feed_number = 50_000_000_001
        self.reports: dict[str, Report] = {}
        self.next_report_number = 70_000_000_001
        self.returns: list[dict[str, Any]] = []  # control-API shape, see emulator.returns
        self.messages: list[dict[str, Any]] = []  # what Messaging API calls sent to buyers
        #: Messaging actions forced per order by the control API (instead of by order state).
        self.messaging_overrides: dict[str, list[str]] = {}
        #: Buyer contact (emulator.buyer_contact): the application's restricted roles, buyers'
        #: locales set per order, and the e-mails buyers sent the seller.
        self.application_roles: list[str] = []
        self.buyer_locales: dict[str, str] = {}
        self.buyer_messages: list[dict[str, Any]] = []
        #: Fault modes as set by PUT /_emulator/faults (None: no faults) and their counters.
        self.faults: dict[str, Any] | None = None
        self.fault_counters: dict[str, int] = {}
        #: The seller's return-authorization setting per marketplace (emulator.return_lifecycle);
        #: marketplaces not listed keep Amazon's default.
        self.return_settings: dict[str, str] = {}
        #: Per marketplace, whether Amazon refunds returns on its own (emulator.amazon_refunds).
        self.amazon_refund_settings: dict[str, dict[str, bool]] = {}
        if state_file is not None and state_file.exists():
            self.load()

    def reset(self) -> None:
        """Forget orders, feeds, reports, documents, refunds, returns, messages, calls, fault
        modes and return settings (issued access tokens stay valid)."""
        with self.lock:
            self.orders.clear()
            self.feeds.clear()
            self.documents.clear()
            self.refunds.clear()
            self.calls.clear()
            self.reports.clear()
            self.returns.clear()
            self.messages.clear()
            self.messaging_overrides.clear()
            self.application_roles.clear()
            self.buyer_locales.clear()
            self.buyer_messages.clear()
            self.faults = None
            self.fault_counters.clear()
            self.return_settings.clear()
            self.amazon_refund_settings.clear()

    def record_call(self, call: dict[str, Any]) -> None:
        """Append one SP-API call to the log, dropping the oldest beyond MAX_CALLS."""
        with self.lock:
            self.calls.append(call)
            del self.calls[:-MAX_CALLS]

    # -- persistence -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The whole state as JSON-ready data."""
        with self.lock:
            now = self.clock.now() if self.clock else self.saved_simulated_now
            return {
                "version": STATE_VERSION,
                "simulatedNow": iso_precise(now) if now else None,
                "nextFeedNumber": self.next_feed_number,
                "orders": list(self.orders.values()),
                "feeds": [_feed_to_json(feed) for feed in self.feeds.values()],
                "documents": [asdict(document) for document in self.documents.values()],
                "refunds": self.refunds,
                "calls": self.calls,
                "nextReportNumber": self.next_report_number,
                "reports": [_report_to_json(report) for report in self.reports.values()],
                "returns": self.returns,
                "messages": self.messages,
                "messagingOverrides": self.messaging_overrides,
                "applicationRoles": self.application_roles,
                "buyerLocales": self.buyer_locales,
                "buyerMessages": self.buyer_messages,
                "faults": self.faults,
                "faultCounters": self.fault_counters,
                "returnSettings": self.return_settings,
                "amazonRefundSettings": self.amazon_refund_settings,
                "accessTokens": {
                    token: {
                        "clientId": grant.client_id,
                        "grant": grant.grant,
                        "expiresAt": iso_precise(grant.expires_at),
                        "scope": grant.scope,
                        "region": grant.region,
                    }
                    for token, grant in self.access_tokens.items()
                },
            }

    def save(self) -> None:
        """Write the state file (atomically: a crash mid-write leaves the previous file)."""
        if self.state_file is None:
            return
        with self.lock:
            data = json.dumps(self.to_json(), separators=(",", ":"))
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
            temporary.write_text(data, encoding="utf-8")
            os.replace(temporary, self.state_file)

    def load(self) -> None:
        """Read the state file written by a previous run."""
        assert self.state_file is not None
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            with self.lock:
                self._restore(data)
        except (ValueError, KeyError, TypeError) as problem:
            raise ValueError(
                f"The emulator state file {self.state_file} cannot be read ({problem}). "
                "Move it away to start with an empty account."
            ) from None

    def _restore(self, data: dict[str, Any]) -> None:
        """Replace the in-memory state by what a state file holds."""
        simulated = data.get("simulatedNow")
        self.saved_simulated_now = parse_time(simulated) if simulated else None
        self.next_feed_number = int(data.get("nextFeedNumber", self.next_feed_number))
        self.orders = {order["orderId"]: order for order in data.get("orders", [])}
        self.feeds = {f["feedId"]: _feed_from_json(f) for f in data.get("feeds", [])}
        self.documents = {d["document_id"]: FeedDocument(**d) for d in data.get("documents", [])}
        self.refunds = list(data.get("refunds", []))
        self.calls = list(data.get("calls", []))
        # Keys below came with reports, returns, messaging and faults; older files lack them.
        self.next_report_number = int(data.get("nextReportNumber", self.next_report_number))
        self.reports = {r["reportId"]: _report_from_json(r) for r in data.get("reports", [])}
        self.returns = list(data.get("returns", []))
        self.messages = list(data.get("messages", []))
        self.messaging_overrides = dict(data.get("messagingOverrides", {}))
        self.application_roles = list(data.get("applicationRoles", []))
        self.buyer_locales = dict(data.get("buyerLocales", {}))
        self.buyer_messages = list(data.get("buyerMessages", []))
        self.faults = data.get("faults")
        self.fault_counters = dict(data.get("faultCounters", {}))
        self.return_settings = dict(data.get("returnSettings", {}))
        self.amazon_refund_settings = dict(data.get("amazonRefundSettings", {}))
        self.access_tokens = {
            token: AccessTokenGrant(
                client_id=grant["clientId"],
                grant=grant["grant"],
                expires_at=parse_time(grant["expiresAt"]),
                scope=grant.get("scope"),
                region=grant.get("region"),
            )
            for token, grant in data.get("accessTokens", {}).items()
        }


def _optional_time(moment: datetime | None) -> str | None:
    return iso_precise(moment) if moment else None


def _feed_to_json(feed: Feed) -> dict[str, Any]:
    return {
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "marketplaceIds": feed.marketplace_ids,
        "created": iso_precise(feed.created),
        "inputDocumentId": feed.input_document_id,
        "outcome": feed.outcome,
        "processingStart": _optional_time(feed.processing_start),
        "processingEnd": _optional_time(feed.processing_end),
        "resultDocumentId": feed.result_document_id,
        "results": [result.to_json() for result in feed.results],
        "faultPlan": feed.fault_plan,
        "region": feed.region,
    }


def _optional_parse(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


def _report_to_json(report: Report) -> dict[str, Any]:
    return {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids,
        "created": iso_precise(report.created),
        "dataStart": iso_precise(report.data_start),
        "dataEnd": iso_precise(report.data_end),
        "outcome": report.outcome,
        "processingStart": _optional_time(report.processing_start),
        "processingEnd": _optional_time(report.processing_end),
        "documentId": report.document_id,
        "fatalByFault": report.fatal_by_fault,
    }


def _report_from_json(data: dict[str, Any]) -> Report:
    return Report(
        report_id=data["reportId"],
        report_type=data["reportType"],
        marketplace_ids=list(data["marketplaceIds"]),
        created=parse_time(data["created"]),
        data_start=parse_time(data["dataStart"]),
        data_end=parse_time(data["dataEnd"]),
        outcome=data.get("outcome"),
        processing_start=_optional_parse(data.get("processingStart")),
        processing_end=_optional_parse(data.get("processingEnd")),
        document_id=data.get("documentId"),
        fatal_by_fault=bool(data.get("fatalByFault", False)),
    )


def _feed_from_json(data: dict[str, Any]) -> Feed:
    return Feed(
        feed_id=data["feedId"],
        feed_type=data["feedType"],
        marketplace_ids=list(data["marketplaceIds"]),
        created=parse_time(data["created"]),
        input_document_id=data["inputDocumentId"],
        outcome=data.get("outcome"),
        processing_start=parse_time(data["processingStart"])
        if data.get("processingStart")
        else None,
        processing_end=parse_time(data["processingEnd"]) if data.get("processingEnd") else None,
        result_document_id=data.get("resultDocumentId"),
        results=[
            FeedResult(
                message_id=r["messageId"],
                order_id=r.get("orderId"),
                result_code=r["resultCode"],
                code=r.get("code"),
                description=r["description"],
            )
            for r in data.get("results", [])
        ],
        fault_plan=data.get("faultPlan"),
        region=data.get("region"),
    )
