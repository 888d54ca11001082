"""The running emulator's parts, and the path every SP-API call takes through them.

An SP-API call is: catch up on simulated time (feeds due to finish are applied first), check the
LWA access token (403), spend one request of the operation's quota (429), run the operation,
answer with ``x-amzn-RequestId`` and ``x-amzn-RateLimit-Limit``, log the call, save the state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from emulator.auth import Credentials, authorize_seller_call
from emulator.clock import SimulatedClock, iso_precise, utc_now
from emulator.errors import ApiError, quota_exceeded
from emulator.ratelimit import RateLimiter
from emulator.state import EmulatorState

#: Work due at a simulated time (e.g. finishing feeds); returns True if it changed the state.
Settler = Callable[["Emulator", datetime], bool]
#: An operation: given the simulated time, returns (HTTP status, JSON body) or raises ApiError.
Operation = Callable[[datetime], tuple[int, dict[str, Any]]]


@dataclass
class Emulator:
    """State, clock, credentials and quotas of one emulated SP-API."""

    state: EmulatorState
    clock: SimulatedClock
    credentials: Credentials
    limiter: RateLimiter
    settlers: list[Settler] = field(default_factory=list)

    def now(self) -> datetime:
        """The simulated time."""
        return self.clock.now()

    def settle(self, now: datetime) -> None:
        """Let simulated time catch up: apply everything due by ``now``."""
        with self.state.lock:
            changed = [settler(self, now) for settler in self.settlers]
            if any(changed):
                self.state.save()

    def save(self) -> None:
        """Persist the state (no-op without a state file)."""
        self.state.save()


def emulator_of(request: Request) -> Emulator:
    """The Emulator serving this request."""
    emulator: Emulator = request.app.state.emulator
    return emulator


def sp_api_call(request: Request, operation_id: str, operation: Operation) -> JSONResponse:
    """Run one SP-API operation with Amazon's authentication, throttling, headers and logging."""
    emulator = emulator_of(request)
    state = emulator.state
    with state.lock:
        now = emulator.now()
        emulator.settle(now)
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        plan = emulator.limiter.plan(operation_id)
        try:
            grant = authorize_seller_call(state, request.headers.get("x-amz-access-token"))
            if plan is not None:
                headers["x-amzn-RateLimit-Limit"] = plan.header_value
            if not emulator.limiter.allow(operation_id, grant.client_id, now):
                raise quota_exceeded()
            status, body = operation(now)
        except ApiError as refused:
            status, body = refused.status, refused.body()
        state.record_call(
            {
                "operation": operation_id,
                "method": request.method,
                "path": request.url.path,
                "status": status,
                "time": iso_precise(now),
                "wallTime": iso_precise(utc_now()),
            }
        )
        state.save()
    return JSONResponse(body, status_code=status, headers=headers)


def query_list(request: Request, name: str) -> list[str]:
    """An array query parameter, sent repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values
