"""Feeds API 2021-06-30: how a seller sends Amazon batches of changes (cancellations, refunds).

The seller creates a feed document (an upload URL on the emulator itself), uploads the XML,
creates the feed, then polls it. In simulated time a feed waits ``QUEUE_TIME`` IN_QUEUE, spends
``PROCESSING_TIME`` IN_PROGRESS, then ends DONE (each message applied) or FATAL (document
unreadable, nothing applied), with a processing report as its result document. The changes take
effect at the simulated moment the feed finishes, whether or not anyone is polling. Fault modes
(``faults``) can make a feed FATAL or fail some of its messages; a failed message is not applied.

Like Amazon's presigned S3 URLs, the upload URL only takes the Content-Type given to
createFeedDocument: any other (or none) is refused with S3's 403 ``SignatureDoesNotMatch``, and
nothing is stored (the Content-Type is part of the URL's signature; AWS re:Post,
https://repost.aws/knowledge-center/s3-presigned-url-signature-mismatch, "Verify the headers that
are used in HTTP request"). Result documents are served GZIP-compressed, with
``compressionAlgorithm: GZIP`` in getFeedDocument (Amazon's FeedDocument model: "If the feed
document contents have been compressed, the compression algorithm used is returned in this
property and you must decompress the feed when you download"), when larger than
``GZIP_ABOVE_BYTES`` or as the fault settings' ``feeds.gzipRate`` says. Amazon does not document
when it compresses; the size rule is the emulator's.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from emulator.clock import iso_precise, parse_time
from emulator.errors import invalid_input, not_found
from emulator.faults import message_fails, report_fault
from emulator.feed_xml import FeedRejected
from emulator.order_feeds import MESSAGE_TYPES, FeedContext, apply_feed
from emulator.processing_report import (
    INTERNAL_ERROR,
    INTERNAL_ERROR_DESCRIPTION,
    fatal_report,
    processing_report,
)
from emulator.regions import call_region, check_merchant, visible
from emulator.runtime import Emulator, emulator_of, query_list, sp_api_call
from emulator.state import Feed, FeedDocument, FeedResult

QUEUE_TIME = timedelta(seconds=30)
PROCESSING_TIME = timedelta(seconds=30)
RETENTION = timedelta(days=90)
#: Result documents larger than this are served GZIP-compressed (the emulator's rule).
GZIP_ABOVE_BYTES = 4096
SUPPORTED_FEED_TYPES = tuple(MESSAGE_TYPES)
PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")


def processing_status(feed: Feed, now: datetime) -> str:
    """Where the feed is at simulated time ``now``."""
    if feed.outcome is not None:
        return feed.outcome
    if now < feed.created + QUEUE_TIME:
        return "IN_QUEUE"
    return "IN_PROGRESS"


def feed_answer(feed: Feed, now: datetime) -> dict[str, Any]:
    """The Feed object of getFeed/getFeeds."""
    answer: dict[str, Any] = {
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "marketplaceIds": feed.marketplace_ids,
        "createdTime": iso_precise(feed.created),
        "processingStatus": processing_status(feed, now),
    }
    if feed.processing_start is not None:
        answer["processingStartTime"] = iso_precise(feed.processing_start)
    elif now >= feed.created + QUEUE_TIME:
        answer["processingStartTime"] = iso_precise(feed.created + QUEUE_TIME)
    if feed.processing_end is not None:
        answer["processingEndTime"] = iso_precise(feed.processing_end)
    if feed.result_document_id is not None:
        answer["resultFeedDocumentId"] = feed.result_document_id
    return answer


def settle_feeds(emulator: Emulator, now: datetime) -> bool:
    """Finish every feed due by ``now``, oldest first; True if any finished."""
    state = emulator.state
    due = sorted(
        (f for f in state.feeds.values() if f.outcome is None and now >= _finish_time(f)),
        key=lambda f: (_finish_time(f), f.feed_id),
    )
    for feed in due:
        finish_feed(emulator, feed)
    return bool(due)


def _finish_time(feed: Feed) -> datetime:
    return feed.created + QUEUE_TIME + PROCESSING_TIME


def finish_feed(emulator: Emulator, feed: Feed) -> None:
    """Process a feed's document and write its processing report (DONE or FATAL)."""
    state = emulator.state
    finished = _finish_time(feed)
    document = state.documents[feed.input_document_id].content or ""
    context = FeedContext(feed.feed_id, feed.marketplace_ids, state.orders, state.refunds, finished)
    plan = feed.fault_plan
    bad_report = report_fault(plan)
    # underCount and omitResult: message 1 is not applied, and the report hides it.
    hidden = frozenset({1}) if bad_report in ("underCount", "omitResult") else frozenset()
    try:
        if plan and plan.get("fatal"):
            raise FeedRejected(INTERNAL_ERROR, INTERNAL_ERROR_DESCRIPTION)
        if feed.region is not None:
            check_merchant(document, emulator.credentials.merchant_tokens.get(feed.region))
        feed.results = apply_feed(
            feed.feed_type,
            document,
            context,
            fails=lambda message_id: (
                message_id in hidden or message_fails(plan, feed.feed_id, message_id)
            ),
        )
        feed.outcome = "DONE"
        report = processing_report(
            feed.feed_id,
            feed.results,
            summary=bad_report != "noSummary",
            unlisted=hidden if bad_report == "omitResult" else frozenset(),
            uncounted=hidden if bad_report == "underCount" else frozenset(),
        )
        for result in feed.results:
            if result.code == INTERNAL_ERROR and result.message_id not in hidden:
                emulator.faults.count("injected:feedMessageError")
    except FeedRejected as rejected:
        # Nothing was applied: apply_feed only mutates after the envelope parsed.
        feed.outcome = "FATAL"
        report = fatal_report(feed.feed_id, rejected.code, rejected.description)
        feed.results = [FeedResult(0, None, "Error", rejected.code, rejected.description)]
    result_id = new_document_id()
    state.documents[result_id] = FeedDocument(
        result_id, "text/xml; charset=UTF-8", "result", report
    )
    feed.processing_start = feed.created + QUEUE_TIME
    feed.processing_end = finished
    feed.result_document_id = result_id


def new_document_id() -> str:
    """A feed document id in Amazon's style."""
    return f"amzn1.tortuga.4.na.{uuid.uuid4()}.T{uuid.uuid4().hex[:12].upper()}"


def own_url(request: Request) -> str:
    """The emulator's own base URL (from the listening socket: clients' Host headers are wrong)."""
    configured: str | None = getattr(request.app.state, "public_url", None)
    if configured:
        return configured.rstrip("/")
    server = request.scope.get("server")
    if not server:
        return str(request.base_url).rstrip("/")
    host, port = server[0], server[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise invalid_input("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise invalid_input("The request body must be a JSON object.")
    return body


# -- operations ---------------------------------------------------------------------------------


def presigned(url: str) -> str:
    """The URL with a query like an S3 presigned URL's (SigV4 query authentication, which is
    what Amazon hands out for feed and report documents): the query is the credential, so it
    must never be logged. docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
    """
    signature = hashlib.sha256(url.encode()).hexdigest()
    return (
        f"{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEMULATOR%2F20261205"
        f"%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Expires=300&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={signature}"
    )


def create_feed_document(emulator: Emulator, body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """createFeedDocument: reserve a document and hand out its upload URL."""
    content_type = body.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        raise invalid_input("contentType is required.")
    document_id = new_document_id()
    emulator.state.documents[document_id] = FeedDocument(document_id, content_type, "input")
    return {"feedDocumentId": document_id, "url": presigned(f"{base_url}/_uploads/{document_id}")}


def create_feed(emulator: Emulator, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """createFeed: queue an uploaded document for processing (unknown body keys are ignored)."""
    feed_type = body.get("feedType")
    marketplace_ids = body.get("marketplaceIds")
    document_id = body.get("inputFeedDocumentId")
    if not isinstance(feed_type, str) or not feed_type:
        raise invalid_input("feedType is required.")
    if feed_type not in SUPPORTED_FEED_TYPES:
        raise invalid_input(
            f"Feed type {feed_type} is not supported here.",
            f"The emulator processes {', '.join(SUPPORTED_FEED_TYPES)}.",
        )
    if (
        not isinstance(marketplace_ids, list)
        or not 1 <= len(marketplace_ids) <= 25
        or not all(isinstance(m, str) for m in marketplace_ids)
    ):
        raise invalid_input("marketplaceIds must be a list of 1 to 25 marketplace ids.")
    document = emulator.state.documents.get(str(document_id))
    if document is None or document.kind != "input":
        raise invalid_input(f"inputFeedDocumentId {document_id!r} is not a feed document.")
    if document.content is None:
        raise invalid_input(
            f"Feed document {document_id} has no content.",
            "Upload the document to its URL before calling createFeed.",
        )
    state = emulator.state
    feed_id = str(state.next_feed_number)
    state.next_feed_number += 1
    feed = Feed(feed_id, feed_type, list(marketplace_ids), now, str(document_id))
    feed.fault_plan = emulator.faults.feed_plan(feed_id)
    state.feeds[feed_id] = feed
    return {"feedId": feed_id}


def get_feed(emulator: Emulator, feed_id: str, now: datetime) -> dict[str, Any]:
    """getFeed: the feed's status and, once finished, its result document."""
    feed = emulator.state.feeds.get(feed_id)
    if feed is None:
        raise not_found(f"Feed {feed_id} was not found.")
    return feed_answer(feed, now)


def cancel_feed(emulator: Emulator, feed_id: str, now: datetime) -> dict[str, Any]:
    """cancelFeed: only a feed still IN_QUEUE can be cancelled."""
    feed = emulator.state.feeds.get(feed_id)
    if feed is None:
        raise not_found(f"Feed {feed_id} was not found.")
    if processing_status(feed, now) != "IN_QUEUE":
        raise invalid_input(f"Feed {feed_id} is no longer IN_QUEUE and cannot be cancelled.")
    feed.outcome = "CANCELLED"
    feed.processing_end = now
    return {}


def get_feed_document(emulator: Emulator, document_id: str, base_url: str) -> dict[str, Any]:
    """getFeedDocument: where to download a document, and whether it is GZIP-compressed."""
    document = emulator.state.documents.get(document_id)
    if document is None or document.kind == "report":
        raise not_found(f"Feed document {document_id} was not found.")
    answer = {
        "feedDocumentId": document_id,
        "url": presigned(f"{base_url}/_documents/{document_id}"),
    }
    if gzipped(emulator, document):
        answer["compressionAlgorithm"] = "GZIP"
    return answer


def gzipped(emulator: Emulator, document: FeedDocument) -> bool:
    """Is this document served GZIP-compressed (a result document, large or picked by faults)?"""
    if document.kind != "result" or document.content is None:
        return False
    size = len(document.content.encode("utf-8"))
    return size > GZIP_ABOVE_BYTES or emulator.faults.gzip_result(document.document_id)


def signature_does_not_match(sent: str | None, signed: str) -> Response:
    """S3's answer to an upload whose Content-Type is not the one the URL was signed with."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>'
        "<Message>The request signature we calculated does not match the signature you "
        "provided. Check your key and signing method.</Message>"
        f"<HenpinEmulatorHint>Content-Type {sent!r} is not the {signed!r} given to "
        "createFeedDocument.</HenpinEmulatorHint></Error>"
    )
    return Response(body, status_code=403, media_type="application/xml")


def get_feeds(emulator: Emulator, request: Request, now: datetime) -> dict[str, Any]:
    """getFeeds: feeds matching the filters, newest first, ``pageSize`` at a time."""
    token = request.query_params.get("nextToken")
    filters = _decode_feeds_token(token, request) if token else _feeds_filters(request, now)
    feeds = sorted(
        (
            f
            for f in emulator.state.feeds.values()
            if _feed_matches(f, filters, now) and visible(request, f.marketplace_ids)
        ),
        key=lambda f: (f.created, f.feed_id),
        reverse=True,
    )
    offset, size = int(filters["offset"]), int(filters["pageSize"])
    answer: dict[str, Any] = {"feeds": [feed_answer(f, now) for f in feeds[offset : offset + size]]}
    if offset + size < len(feeds):
        following = dict(filters, offset=offset + size)
        answer["nextToken"] = base64.urlsafe_b64encode(json.dumps(following).encode()).decode()
    return answer


def _feeds_filters(request: Request, now: datetime) -> dict[str, Any]:
    feed_types = query_list(request, "feedTypes")
    if not feed_types:
        raise invalid_input("Either feedTypes or nextToken is required.")
    if len(feed_types) > 10:
        raise invalid_input("feedTypes accepts at most 10 values.")
    statuses = query_list(request, "processingStatuses")
    bad = [s for s in statuses if s not in PROCESSING_STATUSES]
    if bad:
        raise invalid_input(f"Invalid processingStatuses value {bad[0]!r}.")
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
        "feedTypes": feed_types,
        "processingStatuses": statuses,
        "marketplaceIds": query_list(request, "marketplaceIds"),
        "createdSince": iso_precise(since),
        "createdUntil": iso_precise(until),
        "pageSize": page_size,
        "offset": 0,
    }


def _decode_feeds_token(token: str, request: Request) -> dict[str, Any]:
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


def _feed_matches(feed: Feed, filters: dict[str, Any], now: datetime) -> bool:
    if feed.feed_type not in filters["feedTypes"]:
        return False
    statuses = filters["processingStatuses"]
    if statuses and processing_status(feed, now) not in statuses:
        return False
    marketplaces = filters["marketplaceIds"]
    if marketplaces and not set(marketplaces) & set(feed.marketplace_ids):
        return False
    return (
        parse_time(filters["createdSince"]) <= feed.created <= parse_time(filters["createdUntil"])
    )


# -- routes -------------------------------------------------------------------------------------


def _decode_upload(content: bytes, content_type: str) -> str:
    charset = "utf-8"
    for part in content_type.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return content.decode(charset)
    except (LookupError, UnicodeDecodeError):
        # python-amazon-sp-api encodes str feeds as ISO-8859-1 whatever the declared charset.
        return content.decode("iso-8859-1")


def router() -> APIRouter:
    """Feeds operations plus the document upload and download URLs they hand out."""
    routes = APIRouter()

    @routes.post("/feeds/2021-06-30/documents")
    async def create_feed_document_route(request: Request) -> Response:
        emulator, raw = emulator_of(request), await request.body()
        return await sp_api_call(
            request,
            "createFeedDocument",
            lambda now: (201, create_feed_document(emulator, _json_body(raw), own_url(request))),
        )

    @routes.post("/feeds/2021-06-30/feeds")
    async def create_feed_route(request: Request) -> Response:
        emulator, raw = emulator_of(request), await request.body()

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            answer = create_feed(emulator, _json_body(raw), now)
            emulator.state.feeds[answer["feedId"]].region = call_region(request)
            return 202, answer

        return await sp_api_call(request, "createFeed", operation)

    @routes.get("/feeds/2021-06-30/feeds")
    async def get_feeds_route(request: Request) -> Response:
        emulator = emulator_of(request)
        return await sp_api_call(
            request, "getFeeds", lambda now: (200, get_feeds(emulator, request, now))
        )

    def _in_region(request: Request, feed_id: str) -> None:
        feed = emulator_of(request).state.feeds.get(feed_id)
        if feed is not None and not visible(request, feed.marketplace_ids):
            raise not_found(f"Feed {feed_id} was not found.")

    @routes.get("/feeds/2021-06-30/feeds/{feed_id}")
    async def get_feed_route(request: Request, feed_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            _in_region(request, feed_id)
            return 200, get_feed(emulator, feed_id, now)

        return await sp_api_call(request, "getFeed", operation)

    @routes.delete("/feeds/2021-06-30/feeds/{feed_id}")
    async def cancel_feed_route(request: Request, feed_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            _in_region(request, feed_id)
            return 200, cancel_feed(emulator, feed_id, now)

        return await sp_api_call(request, "cancelFeed", operation)

    @routes.get("/feeds/2021-06-30/documents/{document_id}")
    async def get_feed_document_route(request: Request, document_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            # A feed's documents are per region, as the feed is.
            for feed in emulator.state.feeds.values():
                mine = document_id in (feed.input_document_id, feed.result_document_id)
                if mine and not visible(request, feed.marketplace_ids):
                    raise not_found(f"Feed document {document_id} was not found.")
            return 200, get_feed_document(emulator, document_id, own_url(request))

        return await sp_api_call(request, "getFeedDocument", operation)

    @routes.put("/_uploads/{document_id}")
    async def upload_document(request: Request, document_id: str) -> Response:
        """The presigned upload URL (S3 on Amazon): stores the seller's feed file."""
        emulator, content = emulator_of(request), await request.body()
        with emulator.state.lock:
            document = emulator.state.documents.get(document_id)
            if document is None or document.kind != "input":
                return Response("NoSuchUpload", status_code=404, media_type="text/plain")
            type_header = request.headers.get("content-type")
            if (type_header or "").strip() != document.content_type.strip():
                return signature_does_not_match(type_header, document.content_type)
            document.content = _decode_upload(content, type_header or "")
            emulator.save()
        return Response(status_code=200)

    @routes.get("/_documents/{document_id}")
    async def download_document(request: Request, document_id: str) -> Response:
        """The presigned download URL of a feed document (a processing report, usually)."""
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.settle(emulator.now())
            document = emulator.state.documents.get(document_id)
            if document is None or document.content is None:
                return Response("NoSuchKey", status_code=404, media_type="text/plain")
            body = document.content.encode("utf-8")
            if gzipped(emulator, document):  # no Content-Encoding: the client unzips, as on S3
                body = gzip.compress(body, mtime=0)
            return Response(body, media_type=_with_utf8(document))

    return routes


def _with_utf8(document: FeedDocument) -> str:
    # Stored as text, served as UTF-8, so the declared charset must say so.
    base = document.content_type.split(";")[0].strip() or "text/plain"
    return f"{base}; charset=UTF-8"
