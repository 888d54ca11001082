"""`AmazonAdapter`: one client per region, each call inside its usage plan, retried only
when that is safe, answered in Henpin's own types."""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx

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
    _Feeds,
    feed_status_from_amazon,
)
from henpin.amazon.finances import _Finances, refunded_lines
from henpin.amazon.messaging import (
    MESSAGE_OPERATIONS,
    MessageAction,
    _Messaging,
    check_message_text,
)
from henpin.amazon.orders import DEFAULT_INCLUDED_DATA, SEARCH_SETTLE, _Orders, order_from_amazon
from henpin.amazon.ratelimit import QuotaExhausted, RateLimiter
from henpin.amazon.reports import (
    REPORT_MAX_WINDOW,
    REPORT_POLL_S,
    REPORT_REUSE,
    REPORT_WAIT_S,
    RETURNS_REPORT,
    ReportProcessingStatus,
    ReportStatus,
    _decode,
    _report_text,
    _Reports,
    _unzipped,
    report_status_from_amazon,
)
from henpin.amazon.returns_report import ReturnsReportError, parse_returns_report
from henpin.amazon.transport import (
    DEFAULT_TIMEOUT_S,
    LWA_TOKEN_URL,
    REGION_ENDPOINTS,
    RetryPolicy,
    _CheckedTransport,
    _Endpoint,
    _HttpFailure,
    _is_loopback,
    _iso,
    _LoginFailed,
    _MalformedResponse,
    _TokenCache,
    _TokenClient,
    _utcnow,
)
from henpin.domain import (
    AlreadyRefunded,
    FeedType,
    FulfillmentStatus,
    Order,
    RefundedLine,
    ReturnRequest,
)
from henpin.logs import keep_secrets_out_of_logs
from henpin.marketplaces import marketplace
from henpin.regions import RegionAuthLog
from henpin.settings import RegionLogin, Settings

log = logging.getLogger(__name__)

# 403s that are answers about the request, not about Henpin's access (no new login over them).
_FORBIDDEN_BUT_NOT_ACCESS = ("template combination",)
# Operations that need an SP-API role beyond the ones every other call of Henpin uses (README,
# "Amazon roles"). Amazon answers a call the application has no role for with 403 (Selling
# Partner API Roles, developer-docs.amazon.com/sp-api/docs/tax-invoicing-restricted-role: "If you
# call an operation for which you don't have the required roles, you get a 403 error"). A 403 on
# one of them says the role is missing, not that the region's login is refused: the region is
# not marked refused for it (the other calls of the region say whether the login works).
ROLE_GATED_OPERATIONS: dict[str, str] = {
    # developer-docs.amazon.com/sp-api/docs/finances-api-v2024-06-19-use-case-guide, "Roles"
    "listFinancialEventsByOrderId": "Finance and Accounting",
    "listTransactions": "Finance and Accounting",
}


#: Orders whose marketplace the adapter remembers (`get_order` without one asks that region
#: first): weeks of a seller with hundreds of orders a day, under 4 MB.
ORDERS_REMEMBERED = 20_000

_C = TypeVar("_C")


class AmazonAdapter:
    """Henpin's way to Amazon's Orders, Feeds, Reports and Messaging APIs: one per process,
    shared by its threads.

    Built from `Settings`: demo mode → the emulator at `settings.emulator_url` with its demo
    credentials; real mode → Amazon's regional endpoint of each marketplace and real LWA. Each
    call goes to its marketplace's region (NA, EU, FE: `{emulator_url}/na` etc. with the
    emulator) with that region's login (`Settings.region_login`); `credentials`, when given, is
    used in every region. The outcome of each region's latest call ("ok", or "refused" when
    Amazon refuses the login) is kept in `region_auth` and, with `auth_log`, written for
    `henpin status`.
    `clock`/`sleep` (monotonic seconds) and `now` (wall clock) are injectable so tests need not
    wait; `rate_scale` speeds the client-side quotas (and the pauses between looks at a report)
    up for an emulator running faster than real time: by default the emulator's own
    `HENPIN_EMULATOR_TIME_SCALE` when talking to the emulator, 1 when talking to Amazon.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        credentials: Mapping[str, str] | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
        rate_scale: float | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http_transport: httpx.BaseTransport | None = None,
        auth_log: RegionAuthLog | None = None,
    ) -> None:
        # Every process that talks to Amazon builds an adapter first: from here on, no log
        # record of the process holds a presigned URL or a token (httpx, sp_api, Prefect's).
        keep_secrets_out_of_logs()
        self.demo_mode = settings.demo_mode
        self._settings = settings
        if credentials is None and (missing := settings.missing_credentials_message()):
            raise ValueError(missing)
        self._override = dict(credentials) if credentials is not None else None
        self._logins: dict[str, RegionLogin | None] = {}
        self.region_auth: dict[str, str] = {}
        # Finances reads per (marketplace, order): (clock, what Amazon showed), for `max_age_s`.
        self._refund_reads: dict[tuple[str, str], tuple[float, AlreadyRefunded]] = {}
        self._auth_log = auth_log
        # Where each order was last seen (an order id does not say its region): the latest
        # `ORDERS_REMEMBERED` only, as this process lives for months (a hint: an order it has
        # forgotten is looked up in each watched region in turn).
        self._order_marketplaces: OrderedDict[str, str] = OrderedDict()
        self.marketplaces = list(settings.marketplaces)
        self.clock = clock
        self.sleep = sleep
        self.now = now
        self.retry = retry or RetryPolicy()
        if rate_scale is None:
            to_emulator = self.demo_mode or bool(settings.emulator_url)
            rate_scale = settings.emulator_time_scale if to_emulator else 1.0
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep, scale=rate_scale)
        self.rate_scale = rate_scale
        self._rng = rng or random.Random()
        # An explicit emulator URL wins, even with credentials set (tests with fake secrets,
        # rehearsals); without credentials the emulator is the only possible peer.
        if settings.emulator_url and not self.demo_mode and not _is_loopback(settings.emulator_url):
            raise ValueError(
                "HENPIN_EMULATOR_URL is set together with real Amazon credentials and does not "
                "point to this machine: refusing to send the credentials there. Unset it to "
                "talk to Amazon."
            )
        if self.demo_mode or settings.emulator_url:
            if not settings.emulator_url:
                raise ValueError(
                    "Henpin has no Amazon credentials (LWA_APP_ID, LWA_CLIENT_SECRET, "
                    "SP_API_REFRESH_TOKEN) and no emulator URL (HENPIN_EMULATOR_URL): set one."
                )
            self._emulator: str | None = settings.emulator_url.rstrip("/")
            token_url = self._emulator
        else:
            self._emulator = None
            token_url = LWA_TOKEN_URL
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            transport=http_transport,
            follow_redirects=False,
        )
        self._tokens = _TokenCache(clock)
        parts = urlsplit(token_url)
        self._token_class = cast(
            type[_TokenClient],
            type(
                "HenpinTokenClient",
                (_TokenClient,),
                {
                    "scheme": f"{parts.scheme}://",
                    "host": parts.netloc,
                    "http": self._http,
                    "cache": self._tokens,
                },
            ),
        )
        self._timeout_s = timeout_s
        # Returns reports asked for per marketplace (to use again), and their documents' text.
        self._reports: dict[str, ReportStatus] = {}
        self._report_texts: dict[str, tuple[str, str]] = {}
        self._reports_lock = threading.Lock()
        # The library's clients (one per thread: `_client`) live and die with their thread.
        self._local = threading.local()
        # Each library client, and its token client, builds an httpx client that `_client`
        # replaces at once by the adapter's own (`_CheckedTransport`). Given this context, they
        # build none of their own: an SSL context from certifi's bundle costs 30-70 ms of CPU,
        # and the resident executor runs flow runs on many threads. Never used to
        # send: every request goes through `self._http`.
        self._replaced_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    # -- lifecycle

    def close(self) -> None:
        """Close the adapter's HTTP client: every library client sends through it."""
        self._http.close()

    def __enter__(self) -> AmazonAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- where to send a request

    def _endpoint(self, marketplace_id: str | None) -> _Endpoint:
        marketplace_id = marketplace_id or self.marketplaces[0]
        region = marketplace(marketplace_id).region
        if self._emulator is not None:
            # The emulator serves each region under its own path (docs/emulator.md, "Regions").
            return _Endpoint(f"{self._emulator}/{region.lower()}", marketplace_id, region)
        return _Endpoint(REGION_ENDPOINTS[region], marketplace_id, region)

    def _login(self, region: str) -> RegionLogin | None:
        if region not in self._logins:
            self._logins[region] = self._settings.region_login(region)
        return self._logins[region]

    def _credentials(self, region: str) -> dict[str, str]:
        """python-amazon-sp-api's credentials for one region."""
        if self._override is not None:
            return self._override
        login = self._login(region)
        if login is None:
            raise AmazonAuthError(
                f"Henpin has no Amazon login for the {region} region: set "
                f"SP_API_REFRESH_TOKEN_{region} and HENPIN_SELLER_ID_{region}.",
                operation="login",
                code="MissingCredentials",
            )
        return login.library_credentials()

    def merchant_token(self, marketplace_id: str) -> str:
        """The seller's merchant token in this marketplace's region (a feed's MerchantIdentifier)."""
        region = marketplace(marketplace_id).region
        login = self._login(region)
        if login is None or not login.seller_id:
            raise ValueError(
                f"Henpin has no merchant token for the {region} region: set HENPIN_SELLER_ID_{region}."
            )
        return login.seller_id

    def _note_auth(self, region: str, state: Literal["ok", "refused"], detail: str = "") -> None:
        """Remember whether Amazon accepted the region's login (for `henpin status`)."""
        if state == "refused" and self.region_auth.get(region) != state:
            log.error("Amazon refused Henpin's login in the %s region: %s", region, detail)
        self.region_auth[region] = state
        if self._auth_log is not None:
            self._auth_log.record(region, state, detail)

    def _by_endpoint(self, marketplace_ids: Iterable[str]) -> list[tuple[_Endpoint, list[str]]]:
        groups: dict[str, tuple[_Endpoint, list[str]]] = {}
        for marketplace_id in marketplace_ids:
            endpoint = self._endpoint(marketplace_id)
            groups.setdefault(endpoint.endpoint, (endpoint, []))[1].append(marketplace_id)
        return list(groups.values())

    def _client(self, api: type[_C], endpoint: _Endpoint) -> _C:
        """The library client for this API and endpoint, one per thread (they are not shared)."""
        clients: dict[tuple[type[Any], str], Any] = self._local.__dict__.setdefault("clients", {})
        key = (api, endpoint.endpoint)
        client = clients.get(key)
        if client is None:
            factory: Any = api
            client = factory(
                marketplace=endpoint,
                credentials=self._credentials(endpoint.region),
                auth_token_client_class=self._token_class,
                timeout=self._timeout_s,
                verify=self._replaced_tls,
            )
            if client.endpoint != endpoint.endpoint:
                log.warning(
                    "SP_API_DEFAULT_MARKETPLACE is set and would send requests to %s; "
                    "Henpin uses %s",
                    client.endpoint,
                    endpoint.endpoint,
                )
            client.endpoint = endpoint.endpoint
            client.marketplace_id = endpoint.marketplace_id
            client.region = endpoint.region
            client._transport.close()
            client._transport = _CheckedTransport(self._http)
            clients[key] = client
        return cast(_C, client)

    # -- one call, with quotas and retries

    def _backoff(self, retry_number: int) -> float:
        delay = min(self.retry.backoff_cap_s, self.retry.backoff_base_s * 2 ** (retry_number - 1))
        return float(delay / 2 + self._rng.uniform(0, delay / 2))

    def _observe_rate(self, operation: str, endpoint: str, headers: Mapping[str, str]) -> None:
        value = headers.get("x-amzn-RateLimit-Limit")
        if value:
            with contextlib.suppress(ValueError):
                self.limiter.observe_rate(operation, endpoint, float(value))

    def _authenticate(self, client: Any) -> None:
        try:
            client.auth  # noqa: B018 - fetches (or reuses) the LWA access token
        except (_HttpFailure, _MalformedResponse, httpx.TransportError) as exc:
            raise _LoginFailed(exc) from exc

    def _call(
        self, operation: str, client: Any, send: Callable[[], Any], *, idempotent: bool = True
    ) -> Any:
        """Run one SP-API request: wait for quota, log in, send, classify the outcome; note
        whether Amazon accepted the region's login."""
        try:
            response = self._attempts(operation, client, send, idempotent=idempotent)
        except AmazonAuthError as refused:
            role_missing = refused.status == 403 and operation in ROLE_GATED_OPERATIONS
            if refused.code != "MissingCredentials" and not role_missing:
                self._note_auth(client.region, "refused", str(refused))
            raise
        self._note_auth(client.region, "ok")
        return response

    def _attempts(
        self, operation: str, client: Any, send: Callable[[], Any], *, idempotent: bool
    ) -> Any:
        endpoint = client.endpoint
        reauthorized = False
        last: AmazonError | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            if last is not None:
                self.sleep(self._backoff(attempt - 1))
            try:
                self.limiter.acquire(operation, endpoint, max_wait_s=self.retry.max_wait_s)
            except QuotaExhausted as exc:
                raise AmazonThrottled(operation, exc.wait_s) from None
            try:
                self._authenticate(client)
                response = send()
            except _LoginFailed as failed:
                last = self._login_error(operation, failed.cause, client.region)
            except _HttpFailure as failure:
                self._observe_rate(operation, endpoint, failure.headers)
                last = self._status_error(operation, failure, idempotent)
                if failure.status == 429:
                    last = AmazonThrottled(
                        operation, self.limiter.throttled(operation, endpoint), status=429
                    )
                elif isinstance(last, AmazonAuthError) and not reauthorized:
                    # The cached access token may have expired at Amazon's end: log in again once.
                    reauthorized = True
                    self._tokens.clear()
                    continue
            except _MalformedResponse as bad:
                if not idempotent:
                    raise AmazonUnavailable(
                        f"Amazon answered {operation} with a body Henpin cannot read; it may "
                        "have been applied. Henpin will check Amazon's side before resending.",
                        operation=operation,
                        may_have_applied=True,
                    ) from bad
                last = AmazonPayloadError(
                    f"Amazon answered {operation} with a body that is not JSON",
                    payload=bad.text,
                    operation=operation,
                )
            except httpx.TransportError as exc:
                never_sent = isinstance(
                    exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
                )
                if not idempotent and not never_sent:
                    raise AmazonUnavailable(
                        f"Amazon did not answer {operation} ({type(exc).__name__}); it may have "
                        "been applied. Henpin will check Amazon's side before resending.",
                        operation=operation,
                        may_have_applied=True,
                    ) from exc
                last = AmazonUnavailable(
                    f"Amazon could not be reached for {operation} ({type(exc).__name__}: {exc}). "
                    "Henpin will try again later.",
                    operation=operation,
                )
            else:
                self._observe_rate(operation, endpoint, response.headers or {})
                return response
            if not self._worth_retrying(last):
                raise last
            log.info("%s: attempt %d failed (%s); retrying", operation, attempt, last)
        assert last is not None
        raise last

    @staticmethod
    def _worth_retrying(error: AmazonError) -> bool:
        if isinstance(error, AmazonUnavailable):
            return not error.may_have_applied
        return isinstance(error, (AmazonThrottled, AmazonPayloadError))

    def _status_error(self, operation: str, failure: _HttpFailure, idempotent: bool) -> AmazonError:
        said = f"{failure.code or 'HTTP ' + str(failure.status)}: {failure.message or failure.text}"
        if failure.status == 429:
            return AmazonThrottled(operation, 0.0, status=429)
        if failure.status >= 500:
            return AmazonUnavailable(
                f"Amazon failed to handle {operation} ({said})"
                + ("" if idempotent else "; it may have been applied, Henpin will check first"),
                operation=operation,
                status=failure.status,
                may_have_applied=not idempotent,
            )
        if failure.status == 403 and any(
            phrase in (failure.message or "") for phrase in _FORBIDDEN_BUT_NOT_ACCESS
        ):
            return AmazonRequestRejected(
                f"Amazon refused {operation} for this order ({said}).",
                operation=operation,
                status=failure.status,
                code=failure.code,
                errors=failure.errors,
            )
        if failure.status in (401, 403):
            role = ROLE_GATED_OPERATIONS.get(operation) if failure.status == 403 else None
            return AmazonAuthError(
                f"Amazon denied access to {operation} ({said}). "
                + (
                    f"It needs the {role!r} role: add it to Henpin's application in the "
                    "developer profile, then have the seller authorise the application again."
                    if role
                    else "Check that the seller has authorised Henpin's application and that "
                    "its credentials are current."
                ),
                operation=operation,
                status=failure.status,
                code=failure.code,
                errors=failure.errors,
            )
        return AmazonRequestRejected(
            f"Amazon rejected {operation} ({said})",
            operation=operation,
            status=failure.status,
            code=failure.code,
            errors=failure.errors,
        )

    @staticmethod
    def _login_error(operation: str, cause: Exception, region: str = "") -> AmazonError:
        if isinstance(cause, _HttpFailure) and cause.status < 500 and cause.status != 429:
            return AmazonAuthError(
                f"Login with Amazon refused Henpin's credentials for the {region} region "
                f"({cause.code}: {cause.message}). Check LWA_APP_ID, LWA_CLIENT_SECRET and "
                f"SP_API_REFRESH_TOKEN_{region} (or SP_API_REFRESH_TOKEN for a single-region "
                "seller) in the environment or .env (in demo mode: the emulator's demo "
                "credentials).",
                operation="login",
                status=cause.status,
                code=cause.code,
            )
        return AmazonUnavailable(
            f"Login with Amazon could not be reached before {operation} ({cause}). "
            "Henpin will try again later.",
            operation="login",
            status=cause.status if isinstance(cause, _HttpFailure) else None,
        )

    def _transfer(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Upload or download a feed document at its presigned URL (no quota; safe to repeat)."""
        last: AmazonError | None = None
        for attempt in range(1, self.retry.max_attempts + 1):
            if last is not None:
                self.sleep(self._backoff(attempt - 1))
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = AmazonUnavailable(
                    f"{what} failed ({type(exc).__name__}); Henpin will try again later.",
                    operation=what,
                )
                continue
            if response.status_code < 300:
                return response
            if response.status_code < 500 and response.status_code != 429:
                raise AmazonRequestRejected(
                    f"{what} refused: HTTP {response.status_code} {response.text[:300]}",
                    operation=what,
                    status=response.status_code,
                )
            last = AmazonUnavailable(
                f"{what} failed: HTTP {response.status_code}",
                operation=what,
                status=response.status_code,
            )
        assert last is not None
        raise last

    def quota_wait(self, operation: str, marketplace_id: str | None = None) -> float:
        """Seconds until `operation` could be called for this marketplace's endpoint; lets a
        sender keep batching while the quota refills instead of freezing a small batch."""
        return self.limiter.time_until_available(operation, self._endpoint(marketplace_id).endpoint)

    # -- Orders API 2026-01-01

    def search_orders(
        self,
        marketplace_ids: Sequence[str],
        *,
        last_updated_after: datetime,
        last_updated_before: datetime | None = None,
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA,
        fulfillment_statuses: Sequence[FulfillmentStatus] | None = None,
        page_size: int = 100,
        on_bad_order: Callable[[AmazonPayloadError], None] | None = None,
    ) -> Iterator[Order]:
        """Orders updated in the window, page after page (searchOrders, `paginationToken`).

        `last_updated_before`, when given, must be at least two minutes in the past (Amazon's
        rule). An order whose payload does not fit goes to `on_bad_order` and the search goes
        on; without `on_bad_order` it raises `AmazonPayloadError`.
        """
        if not 1 <= page_size <= 100:
            raise ValueError("page_size must be between 1 and 100")
        params: dict[str, Any] = {
            "lastUpdatedAfter": _iso(last_updated_after),
            "includedData": list(included_data),
            "maxResultsPerPage": page_size,
        }
        if last_updated_before is not None:
            latest = self.now() - SEARCH_SETTLE
            if last_updated_before > latest:
                raise ValueError(
                    "searchOrders: lastUpdatedBefore must be at least two minutes before now "
                    f"({_iso(latest)} or earlier), got {_iso(last_updated_before)}"
                )
            params["lastUpdatedBefore"] = _iso(last_updated_before)
        if fulfillment_statuses:
            params["fulfillmentStatuses"] = [
                FulfillmentStatus(s).value for s in fulfillment_statuses
            ]
        for endpoint, ids in self._by_endpoint(marketplace_ids):
            client = self._client(_Orders, endpoint)
            token: str | None = None
            while True:
                query = {**params, "marketplaceIds": list(ids)}
                if token:
                    query["paginationToken"] = token
                response = self._call(
                    "searchOrders", client, partial(client.search_orders, **query)
                )
                page = response.payload
                orders = page.get("orders") if isinstance(page, dict) else None
                if not isinstance(orders, list):
                    raise AmazonPayloadError(
                        "Amazon's searchOrders answer has no list of orders",
                        payload=page,
                        operation="searchOrders",
                    )
                for raw in orders:
                    try:
                        order = order_from_amazon(raw)
                    except AmazonPayloadError as bad:
                        if on_bad_order is None:
                            raise
                        on_bad_order(bad)
                        continue
                    self._seen_in(order)
                    yield order
                # The library lifts `pagination` out of the body into the response object.
                token = response.next_token
                if not token:
                    break

    def get_order(
        self,
        order_id: str,
        included_data: Sequence[str] = DEFAULT_INCLUDED_DATA,
        *,
        marketplace_id: str | None = None,
    ) -> Order:
        """One order as Amazon has it now (getOrder 2026-01-01).

        `marketplace_id` picks the regional endpoint. Without it (an order id does not say its
        region) the order is looked up in each watched region in turn: the region it was last
        seen in first, then the others, moving on when a region does not have it (404) or
        refuses the login there.
        """
        if marketplace_id is not None:
            return self._get_order(order_id, included_data, marketplace_id)
        regions = self._settings.watched_regions
        known = self._order_marketplaces.get(order_id)
        candidates = ([known] if known else []) + [ids[0] for ids in regions.values()]
        problem: AmazonRequestRejected | None = None
        for candidate in dict.fromkeys(candidates):
            try:
                return self._get_order(order_id, included_data, candidate)
            except AmazonRequestRejected as exc:
                if exc.status != 404 and not isinstance(exc, AmazonAuthError):
                    raise
                if problem is None or problem.status == 404:
                    problem = exc  # a refused login says more than "not found" elsewhere
        assert problem is not None
        raise problem

    def _get_order(self, order_id: str, included_data: Sequence[str], marketplace_id: str) -> Order:
        client = self._client(_Orders, self._endpoint(marketplace_id))
        response = self._call(
            "getOrder",
            client,
            partial(client.get_order, order_id, includedData=list(included_data)),
        )
        page = response.payload
        if not isinstance(page, dict) or not isinstance(page.get("order"), dict):
            raise AmazonPayloadError(
                f"Amazon's getOrder answer for {order_id} has no order",
                payload=page,
                operation="getOrder",
            )
        order = order_from_amazon(page["order"])
        self._seen_in(order)
        return order

    def _seen_in(self, order: Order) -> None:
        """Remember the order's marketplace (the newest `ORDERS_REMEMBERED` orders; threads
        share it: each OrderedDict call below is one step under the GIL)."""
        seen = self._order_marketplaces
        with contextlib.suppress(KeyError):  # another thread dropped it as the oldest: forgotten
            seen[order.order_id] = order.marketplace_id
            seen.move_to_end(order.order_id)
        while len(seen) > ORDERS_REMEMBERED:
            with contextlib.suppress(KeyError):  # another thread took the oldest first
                seen.popitem(last=False)

    # -- Feeds API 2021-06-30

    def submit_feed(self, feed_type: FeedType, marketplace_id: str, document: str) -> str:
        """Upload a feed document and create the feed; return Amazon's feedId.

        Only createFeed changes anything at Amazon. If it may have happened but its answer was
        lost, this raises `AmazonUnavailable(may_have_applied=True)`: never simply resend then.
        """
        document_id = self.upload_feed_document(marketplace_id, document)
        return self.create_feed(feed_type, marketplace_id, document_id)

    def upload_feed_document(self, marketplace_id: str, document: str) -> str:
        """createFeedDocument, then upload the XML to its URL; return the feedDocumentId.

        Changes nothing at Amazon by itself (an unused document expires): safe to repeat.
        """
        client = self._client(_Feeds, self._endpoint(marketplace_id))
        created = self._call(
            "createFeedDocument",
            client,
            partial(client.create_feed_document, None, FEED_CONTENT_TYPE),
        ).payload
        document_id = created.get("feedDocumentId") if isinstance(created, dict) else None
        url = created.get("url") if isinstance(created, dict) else None
        if not document_id or not url:
            raise AmazonPayloadError(
                "Amazon's createFeedDocument answer has no feedDocumentId and url",
                payload=created,
                operation="createFeedDocument",
            )
        self._transfer(
            "feed document upload",
            "PUT",
            url,
            content=document.encode("utf-8"),
            headers={"Content-Type": FEED_CONTENT_TYPE},
        )
        return str(document_id)

    def create_feed(self, feed_type: FeedType, marketplace_id: str, document_id: str) -> str:
        """createFeed for an uploaded document; return Amazon's feedId.

        Not retried on timeouts or 5xx: it raises `AmazonUnavailable(may_have_applied=True)`.
        A 429 is retried (Amazon refused it, so nothing was created).
        """
        client = self._client(_Feeds, self._endpoint(marketplace_id))
        response = self._call(
            "createFeed",
            client,
            partial(
                client.create_feed,
                FeedType(feed_type).value,
                document_id,
                marketplaceIds=[marketplace_id],
            ),
            idempotent=False,
        )
        feed_id = response.payload.get("feedId") if isinstance(response.payload, dict) else None
        if not feed_id:
            raise AmazonUnavailable(
                "Amazon accepted createFeed but its answer has no feedId; Henpin will look the "
                "feed up on Amazon's side.",
                operation="createFeed",
                may_have_applied=True,
            )
        return str(feed_id)

    def get_feed(self, feed_id: str, *, marketplace_id: str | None = None) -> FeedStatus:
        """Where one feed stands (getFeed)."""
        client = self._client(_Feeds, self._endpoint(marketplace_id))
        response = self._call("getFeed", client, partial(client.get_feed, feed_id))
        return feed_status_from_amazon(response.payload)

    def list_feeds(
        self,
        feed_types: Sequence[FeedType | str],
        created_since: datetime,
        marketplace_ids: Sequence[str],
        *,
        processing_statuses: Sequence[FeedProcessingStatus] | None = None,
    ) -> list[FeedStatus]:
        """Feeds of these types and marketplaces created since a time (getFeeds, all pages)."""
        params: dict[str, Any] = {
            "feedTypes": ",".join(t.value if isinstance(t, FeedType) else t for t in feed_types),
            "createdSince": _iso(created_since),
            "pageSize": 100,
        }
        if processing_statuses:
            params["processingStatuses"] = ",".join(s.value for s in processing_statuses)
        pages = self._listed_pages(
            "getFeeds", _Feeds, "get_feeds", "feeds", params, marketplace_ids
        )
        return [feed_status_from_amazon(f) for f in pages]

    def _listed_pages(
        self,
        operation: str,
        api: type[Any],
        method: str,
        key: str,
        params: dict[str, Any],
        marketplace_ids: Sequence[str],
    ) -> list[dict[str, Any]]:
        """Every item of a paged list operation (getFeeds, getReports) across the marketplaces'
        endpoints: each page's `key` list, following `nextToken` until there is none."""
        items: list[dict[str, Any]] = []
        for endpoint, ids in self._by_endpoint(marketplace_ids):
            client = self._client(api, endpoint)
            query: dict[str, Any] = {**params, "marketplaceIds": ",".join(ids)}
            while True:
                response = self._call(operation, client, partial(getattr(client, method), **query))
                page = response.payload
                if not isinstance(page, dict) or not isinstance(page.get(key), list):
                    raise AmazonPayloadError(
                        f"Amazon's {operation} answer has no list of {key}",
                        payload=page,
                        operation=operation,
                    )
                items.extend(page[key])
                token = response.next_token  # lifted out of the body by the library
                if not token:
                    break
                query = {"nextToken": token}  # Amazon: the token must be the only parameter
        return items

    def get_feed_report(self, result_document_id: str, *, marketplace_id: str | None = None) -> str:
        """The text of a feed's result document (its processing report), unzipped if GZIP."""
        client = self._client(_Feeds, self._endpoint(marketplace_id))
        info = self._call(
            "getFeedDocument",
            client,
            partial(client.get_feed_document_info, result_document_id),
        ).payload
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise AmazonPayloadError(
                "Amazon's getFeedDocument answer has no url",
                payload=info,
                operation="getFeedDocument",
            )
        response = self._transfer("feed report download", "GET", url)
        content = _unzipped(response.content, info, "the feed report", "getFeedDocument")
        return _decode(content, response.headers.get("content-type", ""))

    # -- Reports API 2021-06-30

    def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        *,
        data_start_time: datetime,
        data_end_time: datetime | None = None,
    ) -> str:
        """createReport; return Amazon's reportId.

        Retried like a read: a report asked for twice costs quota, nothing else.
        """
        body: dict[str, Any] = {
            "reportType": report_type,
            "marketplaceIds": list(marketplace_ids),
            "dataStartTime": _iso(data_start_time),
        }
        if data_end_time is not None:
            body["dataEndTime"] = _iso(data_end_time)
        client = self._client(_Reports, self._endpoint(marketplace_ids[0]))
        payload = self._call("createReport", client, partial(client.create_report, **body)).payload
        report_id = payload.get("reportId") if isinstance(payload, dict) else None
        if not report_id:
            raise AmazonPayloadError(
                "Amazon's createReport answer has no reportId",
                payload=payload,
                operation="createReport",
            )
        return str(report_id)

    def get_report(self, report_id: str, *, marketplace_id: str | None = None) -> ReportStatus:
        """Where one report stands (getReport)."""
        client = self._client(_Reports, self._endpoint(marketplace_id))
        response = self._call("getReport", client, partial(client.get_report, report_id))
        return report_status_from_amazon(response.payload)

    def list_reports(
        self,
        report_types: Sequence[str],
        marketplace_ids: Sequence[str],
        *,
        created_since: datetime,
        processing_statuses: Sequence[ReportProcessingStatus] | None = None,
    ) -> list[ReportStatus]:
        """Reports of these types and marketplaces created since a time (getReports, all pages)."""
        params: dict[str, Any] = {
            "reportTypes": ",".join(report_types),
            "createdSince": _iso(created_since),
            "pageSize": 100,
        }
        if processing_statuses:
            params["processingStatuses"] = ",".join(s.value for s in processing_statuses)
        pages = self._listed_pages(
            "getReports", _Reports, "get_reports", "reports", params, marketplace_ids
        )
        return [report_status_from_amazon(r) for r in pages]

    def get_report_document(self, document_id: str, *, marketplace_id: str | None = None) -> str:
        """The text of a report document, unzipped if GZIP (getReportDocument, then download)."""
        client = self._client(_Reports, self._endpoint(marketplace_id))
        info = self._call(
            "getReportDocument", client, partial(client.get_report_document, document_id)
        ).payload
        url = info.get("url") if isinstance(info, dict) else None
        if not url:
            raise AmazonPayloadError(
                "Amazon's getReportDocument answer has no url",
                payload=info,
                operation="getReportDocument",
            )
        response = self._transfer("report download", "GET", url)
        content = _unzipped(response.content, info, "the report", "getReportDocument")
        return _report_text(content, response.headers.get("content-type", ""), marketplace_id)

    def returns_since(
        self,
        marketplace_ids: Sequence[str],
        since: datetime,
        *,
        max_wait_s: float = REPORT_WAIT_S,
        on_bad_line: Callable[[AmazonPayloadError], None] | None = None,
        asked: Mapping[str, str] | None = None,
    ) -> list[ReturnRequest]:
        """Buyers' return requests made since `since`, from Amazon's flat-file returns report.

        One report per marketplace (the report has no marketplace column). A report Amazon made
        for this window in the last `REPORT_REUSE` is used again (this process's, or one found
        with getReports), else createReport; then getReport every few seconds (the injected
        sleep) until it is DONE (download, unzip, read), CANCELLED (Amazon's way of saying the
        window holds no return: nothing) or FATAL (`AmazonUnavailable`). A report not finished
        within `max_wait_s` raises `AmazonUnavailable`; the next call waits for that same report
        instead of asking for another. A line that cannot be read goes to `on_bad_line` (the
        others are read); without it, it raises `AmazonPayloadError`. `asked`: the reports
        `ask_for_returns_reports` asked for this window (marketplace → report id), read whatever
        their age.
        """
        since = self._returns_window_start(since, warn=True)
        deadline = self.clock() + max_wait_s
        reports = self._finished_returns_reports(
            list(dict.fromkeys(marketplace_ids)), since, deadline, asked or {}
        )
        found: list[ReturnRequest] = []
        for marketplace_id, report in reports.items():
            if report.processing_status is ReportProcessingStatus.CANCELLED:
                continue  # no return in the window
            if (
                report.processing_status is ReportProcessingStatus.FATAL
                or not report.report_document_id
            ):
                self._forget_report(marketplace_id)
                raise AmazonUnavailable(
                    f"Amazon could not make the returns report for {marketplace_id} (report "
                    f"{report.report_id}, {report.processing_status.value}); Henpin will ask "
                    "for a new one on its next try.",
                    operation="getReport",
                )
            found.extend(
                r
                for r in self._read_returns(report, marketplace_id, on_bad_line)
                if r.requested_at is None or r.requested_at.date() >= since.date()
            )
        return found

    def ask_for_returns_reports(
        self, marketplace_ids: Sequence[str], since: datetime
    ) -> dict[str, str]:
        """Ask Amazon to start making the returns reports `returns_since` will read for the same
        marketplaces and `since`, without waiting for them: Amazon makes a report
        asynchronously (developer-docs "Verify that report processing is complete"), so a
        caller that has other work first (ingestion reading a region's orders, or the other
        regions') asks early and finds them made. One already fit to reuse is not asked for
        again. Returns marketplace → report id, for `returns_since(..., asked=...)`."""
        since = self._returns_window_start(since, warn=False)
        reports, _ = self._asked_returns_reports(list(dict.fromkeys(marketplace_ids)), since, {})
        return {m: r.report_id for m, r in reports.items()}

    def _returns_window_start(self, since: datetime, *, warn: bool) -> datetime:
        """`since`, or the oldest moment Amazon's returns report covers if it is older."""
        now = self.now()
        if since > now:
            raise ValueError(f"returns_since: {_iso(since)} is in the future")
        if now - since > REPORT_MAX_WINDOW:
            if warn:
                log.warning(
                    "returns report: Amazon covers at most %s; returns before %s are not read",
                    REPORT_MAX_WINDOW,
                    _iso(now - REPORT_MAX_WINDOW),
                )
            since = now - REPORT_MAX_WINDOW
        return since

    def _finished_returns_reports(
        self,
        marketplace_ids: Sequence[str],
        since: datetime,
        deadline: float,
        asked: Mapping[str, str],
    ) -> dict[str, ReportStatus]:
        """Each marketplace's returns report, finished: asked for (or reused) all at once, then
        polled together, so Amazon prepares them side by side."""
        reports, fresh = self._asked_returns_reports(marketplace_ids, since, asked)
        for marketplace_id, report in list(reports.items()):
            if not report.finished and marketplace_id not in fresh:
                # Asked for earlier (ingestion asks at the start of its pass): it may be made
                # by now, so look before the first pause.
                reports[marketplace_id] = self.get_report(
                    report.report_id, marketplace_id=marketplace_id
                )
        polls = 0
        while True:
            with self._reports_lock:
                self._reports.update(reports)
            waiting = {m: r for m, r in reports.items() if not r.finished}
            if not waiting:
                return reports
            wait = REPORT_POLL_S[min(polls, len(REPORT_POLL_S) - 1)] / self.rate_scale
            if self.clock() + wait > deadline:
                raise AmazonUnavailable(
                    "Amazon has not finished the returns report yet ("
                    + ", ".join(
                        f"{m}: report {r.report_id} {r.processing_status.value}"
                        for m, r in waiting.items()
                    )
                    + "); Henpin will look at the same report again on its next try.",
                    operation="getReport",
                )
            self.sleep(wait)
            polls += 1
            for marketplace_id, report in waiting.items():
                reports[marketplace_id] = self.get_report(
                    report.report_id, marketplace_id=marketplace_id
                )

    def _asked_returns_reports(
        self, marketplace_ids: Sequence[str], since: datetime, asked: Mapping[str, str]
    ) -> tuple[dict[str, ReportStatus], set[str]]:
        """Each marketplace's returns report for `since`: the one `asked` names (asked for
        earlier in the caller's pass), else one fit to reuse, else a new one asked for
        (createReport); remembered in this process either way. With the marketplaces whose
        report's status is fresh: asked for or read from Amazon just now."""
        reports: dict[str, ReportStatus] = {}
        fresh: set[str] = set()
        with self._reports_lock:
            known = {m: self._reports.get(m) for m in asked}
        reusable = self._reusable_reports([m for m in marketplace_ids if m not in asked], since)
        for marketplace_id, report_id in asked.items():
            if marketplace_id not in marketplace_ids:
                continue
            found = known[marketplace_id]
            if found is None or found.report_id != report_id:  # not remembered here: read it
                found = self.get_report(report_id, marketplace_id=marketplace_id)
                fresh.add(marketplace_id)
            reusable[marketplace_id] = found
        for marketplace_id in marketplace_ids:
            report = reusable.get(marketplace_id)
            if report is None:
                report_id = self.create_report(
                    RETURNS_REPORT, [marketplace_id], data_start_time=since
                )
                now = self.now()
                report = ReportStatus(
                    report_id=report_id,
                    report_type=RETURNS_REPORT,
                    marketplace_ids=[marketplace_id],
                    processing_status=ReportProcessingStatus.IN_QUEUE,
                    created_time=now,
                    data_start_time=since,
                    data_end_time=now,
                )
                fresh.add(marketplace_id)
            reports[marketplace_id] = report
        with self._reports_lock:
            self._reports.update(reports)
        return reports, fresh

    def _reusable_reports(
        self, marketplace_ids: Sequence[str], since: datetime
    ) -> dict[str, ReportStatus]:
        """Returns reports that cover `since` and end at most `REPORT_REUSE` ago, per
        marketplace: this process's last one, or (after a restart) one found at Amazon."""
        fresh_after = self.now() - REPORT_REUSE
        with self._reports_lock:
            candidates = {m: [self._reports[m]] for m in marketplace_ids if m in self._reports}
        unknown = [m for m in marketplace_ids if m not in candidates]
        if unknown:
            at_amazon = self.list_reports(
                [RETURNS_REPORT], unknown, created_since=fresh_after - timedelta(minutes=1)
            )
            for report in sorted(at_amazon, key=lambda r: r.created_time, reverse=True):
                if len(report.marketplace_ids) == 1 and report.marketplace_ids[0] in unknown:
                    candidates.setdefault(report.marketplace_ids[0], []).append(report)
        reusable: dict[str, ReportStatus] = {}
        for marketplace_id, reports in candidates.items():
            for report in reports:
                start, end = report.data_start_time, report.data_end_time or report.created_time
                if (
                    report.processing_status is not ReportProcessingStatus.FATAL
                    and start is not None
                    and start <= since
                    and end >= fresh_after
                ):
                    reusable[marketplace_id] = report
                    break
        return reusable

    def _forget_report(self, marketplace_id: str) -> None:
        with self._reports_lock:
            self._reports.pop(marketplace_id, None)

    def _read_returns(
        self,
        report: ReportStatus,
        marketplace_id: str,
        on_bad_line: Callable[[AmazonPayloadError], None] | None,
    ) -> list[ReturnRequest]:
        assert report.report_document_id is not None
        with self._reports_lock:
            report_id, text = self._report_texts.get(marketplace_id, ("", ""))
        if report_id != report.report_id:
            text = self.get_report_document(
                report.report_document_id, marketplace_id=marketplace_id
            )
            with self._reports_lock:
                self._report_texts[marketplace_id] = (report.report_id, text)

        def bad_line(problem: ReturnsReportError) -> None:
            assert on_bad_line is not None
            on_bad_line(AmazonPayloadError(str(problem), payload=problem.raw, operation="report"))

        try:
            return parse_returns_report(
                text, marketplace_id, on_bad_line=bad_line if on_bad_line else None
            )
        except ReturnsReportError as exc:
            raise AmazonPayloadError(
                f"Amazon's returns report {report.report_id} for {marketplace_id} cannot be "
                f"read: {exc}",
                payload=exc.raw,
                operation="getReportDocument",
            ) from exc

    # -- Messaging API v1

    def messaging_actions(self, order_id: str, marketplace_id: str) -> list[str]:
        """The messages Amazon lets the seller send about this order now
        (getMessagingActionsForOrder), e.g. ["confirmOrderDetails", "unexpectedProblem"]."""
        client = self._client(_Messaging, self._endpoint(marketplace_id))
        payload = self._call(
            "getMessagingActionsForOrder",
            client,
            partial(client.actions_for_order, order_id, marketplace_id),
        ).payload
        links = payload.get("_links") if isinstance(payload, dict) else None
        actions = links.get("actions") if isinstance(links, dict) else None
        if not isinstance(actions, list):
            raise AmazonPayloadError(
                f"Amazon's getMessagingActionsForOrder answer for {order_id} has no actions",
                payload=payload,
                operation="getMessagingActionsForOrder",
            )
        names = [a.get("name") for a in actions if isinstance(a, dict)]
        # GetAttributes (the buyer's language) is listed among the links but is no message.
        return [n for n in names if isinstance(n, str) and n and n != "attributes"]

    def send_message(
        self, order_id: str, marketplace_id: str, action: MessageAction, text: str
    ) -> None:
        """Send the buyer one of Amazon's template messages about an order.

        Checks first that Amazon offers `action` for the order now; if not, raises
        `AmazonRequestRejected` (nothing sent). The send itself is not repeated after a timeout
        or a 5xx: `AmazonUnavailable(may_have_applied=True)`, for the outbox to settle.
        """
        operation = MESSAGE_OPERATIONS.get(action)
        if operation is None:
            raise ValueError(f"Henpin does not send the message {action!r}")
        check_message_text(text)
        offered = self.messaging_actions(order_id, marketplace_id)
        if action not in offered:
            raise AmazonRequestRejected(
                f"Amazon does not let the seller send '{action}' for order {order_id} now "
                f"(it offers: {', '.join(offered) or 'no message'}). Nothing was sent; reach "
                "the buyer another way, for example by e-mail.",
                operation=operation,
                code="MessageNotOffered",
            )
        client = self._client(_Messaging, self._endpoint(marketplace_id))
        self._call(
            operation,
            client,
            partial(client.send, order_id, action, marketplace_id, text),
            idempotent=False,
        )

    # -- Messaging API v1: the buyer's attributes

    def buyer_locale(self, order_id: str, marketplace_id: str) -> str | None:
        """The buyer's language of preference for this order (GetAttributes `buyer.locale`,
        a tag such as "de-DE" or "ja-JP"); None when Amazon gives none. Amazon asks that
        messages to buyers be written in it."""
        client = self._client(_Messaging, self._endpoint(marketplace_id))
        send = partial(
            client._request,
            f"/messaging/v1/orders/{quote(order_id, safe='')}/attributes",
            params={"marketplaceIds": marketplace_id},
            add_marketplace=False,
        )
        payload = self._call("GetAttributes", client, send).payload
        buyer = payload.get("buyer", {}) if isinstance(payload, dict) else None
        locale = buyer.get("locale") if isinstance(buyer, dict) else None
        if not isinstance(buyer, dict) or not isinstance(locale, str | None):
            raise AmazonPayloadError(
                f"Amazon's GetAttributes answer for {order_id} is not a buyer's locale",
                payload=payload,
                operation="GetAttributes",
            )
        return locale or None

    # -- Finances API v0: what has been refunded already

    def refunds_for_order(
        self, order_id: str, *, marketplace_id: str, max_age_s: float = 0.0
    ) -> AlreadyRefunded:
        """Every refund Amazon shows for the order, per order item and component
        (listFinancialEventsByOrderId: RefundEventList, GuaranteeClaimEventList for A-to-z
        claims, ChargebackEventList), the seller's and Amazon's own alike. Amazon may take up to
        48 hours to post an event, so a refund made just now can be missing. `max_age_s` > 0
        takes this adapter's last such read of the order if it is at most that old (no call),
        and keeps the read for the next; a read with `max_age_s` 0 is neither taken nor kept."""
        key = (marketplace_id, order_id)
        cached = self._refund_reads.get(key)
        if cached is not None and max_age_s > 0 and self.clock() - cached[0] <= max_age_s:
            return cached[1]
        read_at = self.clock()
        shown = self._read_refunds(order_id, marketplace_id)
        if max_age_s <= 0:
            return shown
        if len(self._refund_reads) > 1000:  # keep the last hour's reads only
            self._refund_reads = {
                k: v for k, v in self._refund_reads.items() if read_at - v[0] < 3600
            }
        self._refund_reads[key] = (read_at, shown)
        return shown

    def refund_read_age(self, order_id: str, marketplace_id: str) -> float | None:
        """Seconds since this adapter last read the order's refunds; None if it never did."""
        cached = self._refund_reads.get((marketplace_id, order_id))
        return None if cached is None else self.clock() - cached[0]

    def _read_refunds(self, order_id: str, marketplace_id: str) -> AlreadyRefunded:
        client = self._client(_Finances, self._endpoint(marketplace_id))
        lines: list[RefundedLine] = []
        token: str | None = None
        while True:
            query: dict[str, Any] = {"MaxResultsPerPage": 100}
            if token:
                query["NextToken"] = token
            page = self._call(
                "listFinancialEventsByOrderId",
                client,
                partial(client.get_financial_events_for_order, order_id, **query),
            ).payload
            events = page.get("FinancialEvents") if isinstance(page, dict) else None
            if not isinstance(events, dict):
                raise AmazonPayloadError(
                    f"Amazon's listFinancialEventsByOrderId answer for {order_id} has no "
                    "FinancialEvents",
                    payload=page,
                    operation="listFinancialEventsByOrderId",
                )
            lines.extend(refunded_lines(events, order_id))
            token = page.get("NextToken") or None
            if not token:
                break
        return AlreadyRefunded(order_id=order_id, lines=lines)
