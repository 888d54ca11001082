"""Login with Amazon (LWA): the token endpoint and the access-token check every SP-API call passes.

Sellers' applications trade a refresh token (or, for grantless operations, their client id and
secret with a scope) for an access token valid one hour. The emulator accepts one application and
one seller with an authorization per SP-API region: a seller authorises an application once per
region and each authorization has its own refresh token; an access token minted from it is bound
to that region (Amazon: "Authorize app for each selling partner account ... generates a refresh
token for each authorized account", developer-docs.amazon.com/sp-api/docs/self-authorization;
../shared/notes/amazon-rules.md "Regions and logins"). The token endpoint itself is global, as
Amazon's (api.amazon.com/auth/o2/token). Demo credentials below, each overridable in
``HENPIN_EMULATOR_*``.

Legacy: the un-suffixed refresh token (``HENPIN_EMULATOR_REFRESH_TOKEN``, default
``Atzr|henpin-demo-refresh-token``) is the emulator's pre-region authorization. Its access tokens
belong to no region: they work only at the unprefixed (legacy) base URL, where they see every
region's data as the emulator always did, and are refused at a regional base URL.

Token lifetimes follow the wall clock, not simulated time: python-amazon-sp-api caches a token
for about 53 wall minutes, so expiring it earlier in simulated time would only break clients.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator.clock import utc_now
from emulator.errors import unauthorized
from emulator.state import AccessTokenGrant, EmulatorState

DEFAULT_CLIENT_ID = "henpin-demo-client"
DEFAULT_CLIENT_SECRET = "henpin-demo-secret"  # public demo secret of a local emulator
DEFAULT_REFRESH_TOKEN = "Atzr|henpin-demo-refresh-token"
REGIONS = ("NA", "EU", "FE")
#: The demo seller's refresh token per region (Henpin's demo mode uses the same ones).
DEFAULT_REGION_REFRESH_TOKENS = {r: f"Atzr|henpin-demo-refresh-token-{r.lower()}" for r in REGIONS}
#: The demo seller's merchant token (seller id, a feed header's MerchantIdentifier) per region.
DEFAULT_MERCHANT_TOKENS = {r: f"A1HENPINDEMO{r}" for r in REGIONS}
TOKEN_LIFETIME = timedelta(hours=1)
#: Scopes LWA grants to the client-credentials (grantless) flow for SP-API.
GRANTLESS_SCOPES = frozenset(
    {
        "sellingpartnerapi::notifications",
        "sellingpartnerapi::migration",
        "sellingpartnerapi::client_credential:rotation",
    }
)


@dataclass(frozen=True)
class Credentials:
    """The one LWA application and the seller's authorizations the emulator accepts."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN  # legacy: no region (see the module docstring)
    region_refresh_tokens: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_REGION_REFRESH_TOKENS)
    )
    merchant_tokens: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_MERCHANT_TOKENS)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Demo credentials, each overridable: ``HENPIN_EMULATOR_CLIENT_ID``, ``_CLIENT_SECRET``,
        ``_REFRESH_TOKEN`` (legacy, no region), ``_REFRESH_TOKEN_NA|EU|FE`` and
        ``_SELLER_ID_NA|EU|FE`` (the region's merchant token)."""
        env = os.environ if environ is None else environ
        return cls(
            client_id=env.get("HENPIN_EMULATOR_CLIENT_ID", DEFAULT_CLIENT_ID),
            client_secret=env.get("HENPIN_EMULATOR_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
            refresh_token=env.get("HENPIN_EMULATOR_REFRESH_TOKEN", DEFAULT_REFRESH_TOKEN),
            region_refresh_tokens={
                r: env.get(f"HENPIN_EMULATOR_REFRESH_TOKEN_{r}", t)
                for r, t in DEFAULT_REGION_REFRESH_TOKENS.items()
            },
            merchant_tokens={
                r: env.get(f"HENPIN_EMULATOR_SELLER_ID_{r}", t)
                for r, t in DEFAULT_MERCHANT_TOKENS.items()
            },
        )

    def region_of_refresh_token(self, refresh_token: str) -> tuple[bool, str | None]:
        """(accepted, region): a region's refresh token gives its region; the legacy one None."""
        for region, token in self.region_refresh_tokens.items():
            if secrets.compare_digest(refresh_token, token):
                return True, region
        return secrets.compare_digest(refresh_token, self.refresh_token), None


class LwaError(Exception):
    """LWA refused the token request; LWA's own error body, not SP-API's ErrorList."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> JSONResponse:
        """LWA's error answer."""
        return JSONResponse(
            {"error": self.error, "error_description": self.description}, status_code=self.status
        )


def issue_token(
    state: EmulatorState, credentials: Credentials, form: Mapping[str, str]
) -> dict[str, Any]:
    """Check a token request as LWA does and return the token answer, or raise LwaError."""
    grant_type = form.get("grant_type")
    if not grant_type:
        raise LwaError(
            400, "invalid_request", "The request is missing a required parameter : grant_type"
        )
    if form.get("client_id") != credentials.client_id or not secrets.compare_digest(
        form.get("client_secret", ""), credentials.client_secret
    ):
        raise LwaError(401, "invalid_client", "Client authentication failed")
    if grant_type == "refresh_token":
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise LwaError(
                400,
                "invalid_request",
                "The request is missing a required parameter : refresh_token",
            )
        accepted, region = credentials.region_of_refresh_token(refresh_token)
        if not accepted:
            raise LwaError(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        grant = AccessTokenGrant(credentials.client_id, grant_type, _expiry(), region=region)
        token = _remember(state, grant)
        return {
            "access_token": token,
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        }
    if grant_type == "client_credentials":
        scope = form.get("scope")
        if not scope:
            raise LwaError(
                400, "invalid_request", "The request is missing a required parameter : scope"
            )
        if scope not in GRANTLESS_SCOPES:
            raise LwaError(400, "invalid_scope", "The request has an invalid parameter : scope")
        grant = AccessTokenGrant(credentials.client_id, grant_type, _expiry(), scope)
        return {
            "access_token": _remember(state, grant),
            "scope": scope,
            "token_type": "bearer",
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
        }
    raise LwaError(
        400,
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server",
    )


def _expiry() -> datetime:
    return utc_now() + TOKEN_LIFETIME


def _remember(state: EmulatorState, grant: AccessTokenGrant) -> str:
    token = "Atza|" + secrets.token_urlsafe(48)
    with state.lock:
        now = utc_now()
        for stale in [t for t, g in state.access_tokens.items() if g.expires_at <= now]:
            del state.access_tokens[stale]
        state.access_tokens[token] = grant
    return token


def authorize_seller_call(state: EmulatorState, access_token: str | None) -> AccessTokenGrant:
    """The grant behind an ``x-amz-access-token``; 403 Unauthorized if missing, unknown or expired."""
    if not access_token:
        raise unauthorized("The request has no x-amz-access-token header.")
    grant = state.access_tokens.get(access_token)
    if grant is None:
        raise unauthorized("The access token is not valid.")
    if grant.expires_at <= utc_now():
        raise unauthorized("The access token you provided has expired.")
    if grant.grant != "refresh_token":
        # A grantless token only opens grantless operations; none of the seller's data.
        raise unauthorized("This operation needs a token issued for a selling partner.")
    return grant


def _form(body: bytes, authorization: str | None) -> dict[str, str]:
    parsed = {key: values[0] for key, values in parse_qs(body.decode("utf-8")).items()}
    # LWA also accepts the client's id and secret as HTTP Basic credentials.
    if authorization and authorization.lower().startswith("basic "):
        decoded = base64.b64decode(authorization[6:]).decode("utf-8")
        client_id, _, client_secret = decoded.partition(":")
        parsed.setdefault("client_id", client_id)
        parsed.setdefault("client_secret", client_secret)
    return parsed


def router() -> APIRouter:
    """The LWA token endpoint (not rate limited, not in the SP-API call log)."""
    routes = APIRouter()

    @routes.post("/auth/o2/token")
    async def token(request: Request) -> JSONResponse:
        emulator = request.app.state.emulator
        form = _form(await request.body(), request.headers.get("authorization"))
        try:
            answer = issue_token(emulator.state, emulator.credentials, form)
        except LwaError as refused:
            return refused.response()
        emulator.save()
        return JSONResponse(answer)

    return routes
