"""The Amazon adapter: the only module in Henpin that talks to python-amazon-sp-api.

It builds the library's clients (Amazon's regional endpoints and Login with Amazon, or the local
SP-API emulator in demo mode), keeps each operation inside its usage plan, retries only what is
safe to retry, and hands back Henpin's own types (`henpin.domain.Order`, `ReturnRequest`,
`FeedStatus`, ...). APIs: Orders 2026-01-01 (orders with cancel requests, buyer, packages),
Feeds 2021-06-30 (cancellations, refunds), Reports 2021-06-30 (the returns report),
Messaging v1 (template messages to buyers) and Finances v0 (what has been refunded already).

Retries, and why:
- 429 (Amazon throttled us: the request was refused, not processed) is retried after the
  operation's bucket refills, as long as that wait is short (`RetryPolicy.max_wait_s`); else
  `AmazonThrottled` says when to come back.
- 5xx, timeouts and connection errors are retried with exponential backoff and jitter, a bounded
  number of times, for requests that are safe to repeat. `createFeed` and the Messaging sends
  are not: a timed-out one may have gone through, so it raises
  `AmazonUnavailable(may_have_applied=True)` and the outbox looks at Amazon's side (feeds) or
  asks a person (messages) instead of sending twice. `createReport` is retried: a report asked
  for twice costs quota, nothing else.
- Any other 4xx is an answer, not a glitch: `AmazonRequestRejected` (or `AmazonAuthError`; a
  403 "Invalid amazonOrderId and template combination" is an answer about the message, not
  about Henpin's access).

Library quirks handled here: the `SP_API_DEFAULT_MARKETPLACE` environment variable silently
replaces the endpoint (we set it back); the library's module-level token cache is keyed by
refresh token only (we keep our own, keyed by token URL and all credentials); errors without an
`errors` body pass as empty successes (our transport checks every status code); the Host header
is computed as if every endpoint were https (we compute it from the URL).
"""

from __future__ import annotations

from henpin.amazon.client import ROLE_GATED_OPERATIONS, AmazonAdapter
from henpin.amazon.errors import (
    AmazonAuthError,
    AmazonError,
    AmazonPayloadError,
    AmazonRequestRejected,
    AmazonThrottled,
    AmazonUnavailable,
)
from henpin.amazon.feeds import (
    FEED_CONTENT_TYPE,
    FeedProcessingStatus,
    FeedStatus,
    feed_status_from_amazon,
)
from henpin.amazon.finances import CHARGE_COMPONENTS, REFUND_EVENT_LISTS, refunded_lines
from henpin.amazon.messaging import (
    MESSAGE_OPERATIONS,
    MESSAGE_TEXT_LIMITS,
    MessageAction,
    check_message_text,
)
from henpin.amazon.orders import DEFAULT_INCLUDED_DATA, SEARCH_SETTLE, order_from_amazon
from henpin.amazon.reports import (
    REPORT_MAX_WINDOW,
    REPORT_POLL_S,
    REPORT_REUSE,
    REPORT_WAIT_S,
    RETURNS_REPORT,
    ReportProcessingStatus,
    ReportStatus,
    report_status_from_amazon,
)
from henpin.amazon.transport import (
    DEFAULT_TIMEOUT_S,
    LWA_TOKEN_URL,
    REGION_ENDPOINTS,
    RetryPolicy,
    worst_case_call_s,
)

__all__ = [
    "CHARGE_COMPONENTS",
    "DEFAULT_INCLUDED_DATA",
    "DEFAULT_TIMEOUT_S",
    "FEED_CONTENT_TYPE",
    "LWA_TOKEN_URL",
    "MESSAGE_OPERATIONS",
    "MESSAGE_TEXT_LIMITS",
    "REFUND_EVENT_LISTS",
    "REGION_ENDPOINTS",
    "REPORT_MAX_WINDOW",
    "REPORT_POLL_S",
    "REPORT_REUSE",
    "REPORT_WAIT_S",
    "RETURNS_REPORT",
    "ROLE_GATED_OPERATIONS",
    "SEARCH_SETTLE",
    "AmazonAdapter",
    "AmazonAuthError",
    "AmazonError",
    "AmazonPayloadError",
    "AmazonRequestRejected",
    "AmazonThrottled",
    "AmazonUnavailable",
    "FeedProcessingStatus",
    "FeedStatus",
    "MessageAction",
    "ReportProcessingStatus",
    "ReportStatus",
    "RetryPolicy",
    "check_message_text",
    "feed_status_from_amazon",
    "order_from_amazon",
    "refunded_lines",
    "report_status_from_amazon",
    "worst_case_call_s",
]
