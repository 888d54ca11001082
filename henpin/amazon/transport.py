"""HTTP under python-amazon-sp-api: Amazon's endpoints, Login with Amazon tokens (our own
cache), a transport that checks every status code, and the retry policy's numbers."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field
from sp_api.auth import AccessTokenClient, AccessTokenResponse
from sp_api.base import Client
from sp_api.base._transport_httpx import HttpxTransport

REGION_ENDPOINTS = {
    "NA": "https://sellingpartnerapi-na.amazon.com",
    "EU": "https://sellingpartnerapi-eu.amazon.com",
    "FE": "https://sellingpartnerapi-fe.amazon.com",
}
LWA_TOKEN_URL = "https://api.amazon.com"


class RetryPolicy(BaseModel):
    """How hard the adapter tries before handing a transient problem back to its caller."""

    max_attempts: int = Field(default=4, ge=1, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0, le=60)
    backoff_cap_s: float = Field(default=30.0, gt=0, le=600)
    max_wait_s: float = Field(default=60.0, ge=0, le=3600, description="longest quota wait")


DEFAULT_TIMEOUT_S = 30.0  # each HTTP call, Login with Amazon's included


def worst_case_call_s(retry: RetryPolicy, timeout_s: float = DEFAULT_TIMEOUT_S) -> float:
    """The longest one adapter call (createFeed's, say) can last: every try waits its longest
    for quota, then logs in and calls, each to the timeout; the longest backoff between tries.
    `HENPIN_OUTBOX_SETTLE_S` must be longer (henpin.settings.CREATE_FEED_WORST_CASE_S)."""
    backoff = sum(
        min(retry.backoff_cap_s, retry.backoff_base_s * 2 ** (n - 1))
        for n in range(1, retry.max_attempts)
    )
    return float(retry.max_attempts * (retry.max_wait_s + 2 * timeout_s) + backoff)


class _HttpFailure(Exception):
    """An HTTP answer with status >= 400, as our transport saw it (with or without a body)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.text = response.text[:2000]
        body: Any = None
        with contextlib.suppress(ValueError):
            body = response.json()
        body = body if isinstance(body, dict) else {}
        errors = body.get("errors")
        self.errors: list[dict[str, Any]] = [e for e in errors or [] if isinstance(e, dict)]
        first = self.errors[0] if self.errors else {}
        # SP-API: {"errors": [{"code", "message"}]}; LWA: {"error", "error_description"}
        self.code: str | None = first.get("code") or body.get("error")
        self.message: str | None = first.get("message") or body.get("error_description")
        super().__init__(f"HTTP {self.status} {self.code or ''} {self.message or ''}".strip())


class _MalformedResponse(Exception):
    """A success status whose body is not the JSON it should be."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code} with a body that is not JSON")
        self.text = response.text[:2000]


class _LoginFailed(Exception):
    """Getting the access token from Login with Amazon failed (wraps the cause)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _CheckedTransport(HttpxTransport):
    """The library's transport on our shared httpx client, failing loudly on any error status."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__(client=client)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        data: Any = None,
        content: Any = None,
        headers: Any = None,
    ) -> httpx.Response:
        response: httpx.Response = self._client.request(
            method, url, params=params, data=data, content=content, headers=headers
        )
        if response.status_code >= 400:
            raise _HttpFailure(response)
        if response.content:
            try:
                response.json()
            except ValueError:
                raise _MalformedResponse(response) from None
        return response

    def close(self) -> None:
        """The shared client belongs to the adapter."""


class _TokenCache:
    """Access tokens per (token URL, client id, secret, refresh token), until shortly before expiry."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(url: str, client_id: str, secret: str, refresh_token: str) -> str:
        material = "\0".join((url, client_id or "", secret or "", refresh_token or ""))
        return hashlib.sha256(material.encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None or entry[0] <= self._clock():
                return None
            return entry[1]

    def put(self, key: str, token: dict[str, Any]) -> None:
        lifetime = float(token.get("expires_in") or 3600)
        with self._lock:
            self._tokens[key] = (self._clock() + max(30.0, lifetime - 300.0), token)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


class _TokenClient(AccessTokenClient):
    """LWA client on our transport and our cache; `scheme`/`host` set per adapter."""

    http: httpx.Client
    cache: _TokenCache

    def __init__(
        self,
        refresh_token: Any = None,
        credentials: Any = None,
        proxies: Any = None,
        verify: Any = True,
    ) -> None:
        super().__init__(
            refresh_token=refresh_token, credentials=credentials, proxies=proxies, verify=verify
        )
        library_client: Any = self
        library_client._transport.close()
        library_client._transport = _CheckedTransport(self.http)

    def get_auth(self) -> AccessTokenResponse:
        url = self.scheme + self.host + self.path
        key = self.cache.key(
            url, self.cred.client_id, self.cred.client_secret, self.cred.refresh_token
        )
        token = self.cache.get(key)
        if token is None:
            token = self._request(url, self.data, self.headers)
            self.cache.put(key, token)
        return AccessTokenResponse(**token)


def _host_header(client: Client) -> dict[str, str]:
    headers = dict(Client.headers.fget(client))
    headers["host"] = urlsplit(client.endpoint).netloc
    return headers


@dataclass(frozen=True)
class _Endpoint:
    """What python-amazon-sp-api reads from its `marketplace` argument."""

    endpoint: str
    marketplace_id: str
    region: str


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("use timezone-aware datetimes with Amazon (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_loopback(url: str) -> bool:
    """Whether the URL's host is this machine (the emulator with real-looking credentials)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")
