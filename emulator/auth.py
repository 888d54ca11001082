"""Login with Amazon (LWA): the token endpoint and the access-token check every SP-API call passes.

Sellers' applications trade a refresh token (or, for grantless operations, their client id and
secret with a scope) for an access token valid one hour. The emulator accepts one application and
one seller authorization: the demo credentials below, or those set in ``HENPIN_EMULATOR_*``.

Token lifetimes follow the wall clock, not simulated time: python-amazon-sp-api caches a token
for about 53 wall minutes, so expiring it earlier in simulated time would only break clients.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
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
    """The one LWA application and seller authorization the emulator accepts."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    refresh_token: str = DEFAULT_REFRESH_TOKEN

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        """Demo credentials, each overridable by ``HENPIN_EMULATOR_CLIENT_ID/_SECRET/_REFRESH_TOKEN``."""
        env = os.environ if environ is None else environ
        return cls(
            client_id=env.get("HENPIN_EMULATOR_CLIENT_ID", DEFAULT_CLIENT_ID),
            client_secret=env.get("HENPIN_EMULATOR_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
            refresh_token=env.get("HENPIN_EMULATOR_REFRESH_TOKEN", DEFAULT_REFRESH_TOKEN),
        )


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
        if not secrets.compare_digest(refresh_token, credentials.refresh_token):
            raise LwaError(
                400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
            )
        token = _remember(state, AccessTokenGrant(credentials.client_id, grant_type, _expiry()))
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
