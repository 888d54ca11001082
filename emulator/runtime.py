"""The running emulator's parts, and the path every SP-API call takes through them.

An SP-API call is: catch up on simulated time (feeds and reports due to finish are settled
first), check the LWA access token (403), draw a fault (``faults``), spend one request of the
operation's quota (429), run the operation, answer with ``x-amzn-RequestId`` and
``x-amzn-RateLimit-Limit``, log the call, save the state. A refusing fault answers before quota and
operation, so it changes nothing; a delaying fault waits without holding the state's lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from emulator.auth import Credentials, authorize_seller_call
from emulator.clock import SimulatedClock, iso_precise, utc_now
from emulator.errors import ApiError, error_list, quota_exceeded
from emulator.faults import Fault, Faults
from emulator.ratelimit import RateLimiter
from emulator.regions import base_region, call_region, check_region
from emulator.state import EmulatorState

#: Work due at a simulated time (e.g. finishing feeds); returns True if it changed the state.
Settler = Callable[["Emulator", datetime], bool]
#: An operation: given the simulated time, returns (HTTP status, JSON body) or raises ApiError.
Operation = Callable[[datetime], tuple[int, dict[str, Any]]]
#: A dropped connection is answered with status 0 in the call log.
NO_ANSWER = 0


@dataclass
class Emulator:
    """State, clock, credentials, quotas and fault modes of one emulated SP-API."""

    state: EmulatorState
    clock: SimulatedClock
    credentials: Credentials
    limiter: RateLimiter
    settlers: list[Settler] = field(default_factory=list)
    faults: Faults = field(init=False)

    def __post_init__(self) -> None:
        self.faults = Faults(self.state)

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


class DroppedConnection(Response):
    """No answer: the connection closes after the status line, as when a server dies mid-request.

    ASGI has no way to close a connection unanswered; a response that starts and never completes
    makes the server close it, and the client sees a broken connection, not a status.
    """

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )


class _QuietDroppedConnections(logging.Filter):
    # uvicorn logs every unfinished answer as an error; for a DroppedConnection it is the point.
    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDroppedConnections())

_FAULT_BODIES = {
    "429": quota_exceeded().body(),
    "500": error_list("InternalFailure", "We encountered an internal error. Please try again."),
    "503": error_list("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
    # A call the application has no role for (emulator.faults).
    "403": error_list("Unauthorized", "Access to requested resource is denied."),
}


async def _hold(request: Request, seconds: float) -> None:
    """Wait ``seconds`` of wall time, or less if the client gives up first."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, left))


def _truncated(body: dict[str, Any]) -> bytes:
    text = json.dumps(body).encode()
    return text[: max(2, len(text) // 2)] if len(text) > 2 else b'{"payload": {"'


async def _fault_answer(
    request: Request, fault: Fault, body: dict[str, Any] | None, headers: dict[str, str]
) -> Response:
    """The answer a fault gives; ``body`` is the hidden real answer for afterApply faults."""
    if fault.kind == "timeout":
        await _hold(request, fault.delay_seconds)
        return DroppedConnection()
    if fault.kind == "malformed_json":
        content = _truncated(body) if body is not None else b'{"payload": {"'
        return Response(content, 200, headers, media_type="application/json")
    return JSONResponse(_FAULT_BODIES[fault.kind], status_code=int(fault.kind), headers=headers)


def _fault_status(fault: Fault) -> int:
    if fault.kind == "timeout":
        return NO_ANSWER
    return 200 if fault.kind == "malformed_json" else int(fault.kind)


def _record(
    emulator: Emulator,
    request: Request,
    operation_id: str,
    now: datetime,
    status: int,
    fault: Fault | None,
    token_region: str | None = None,
) -> None:
    call: dict[str, Any] = {
        "operation": operation_id,
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "time": iso_precise(now),
        "wallTime": iso_precise(utc_now()),
        "fault": fault.kind if fault else None,
        # The base URL's region (None: the legacy unprefixed one) and the access token's.
        "region": base_region(request),
        "tokenRegion": token_region,
    }
    if fault is not None:
        emulator.faults.count(f"injected:{fault.kind}")
        if fault.after_apply:
            call["afterApply"] = True
    emulator.state.record_call(call)
    emulator.state.save()


async def sp_api_call(request: Request, operation_id: str, operation: Operation) -> Response:
    """Run one SP-API operation with Amazon's authentication, throttling, headers and logging,
    and with the fault modes in force."""
    emulator = emulator_of(request)
    state = emulator.state
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    sent = await request.body()
    with state.lock:
        now = emulator.now()
        emulator.settle(now)
        token_region: str | None = None
        try:
            grant = authorize_seller_call(state, request.headers.get("x-amz-access-token"))
            token_region = grant.region
            check_region(request, grant, query_list(request, "marketplaceIds"), sent)
        except ApiError as refused:
            _record(emulator, request, operation_id, now, refused.status, None, token_region)
            return JSONResponse(refused.body(), status_code=refused.status, headers=headers)
        fault = emulator.faults.pick(operation_id, base_region(request))
        if fault is not None and fault.refuses_first:
            _record(emulator, request, operation_id, now, _fault_status(fault), fault, token_region)
    if fault is not None and fault.refuses_first:
        return await _fault_answer(request, fault, None, headers)
    if fault is not None and fault.delays_answer:
        # A slow server finishes the work even if the client has stopped waiting.
        await asyncio.sleep(fault.delay_seconds)
    plan = emulator.limiter.plan(operation_id)
    if plan is not None:
        headers["x-amzn-RateLimit-Limit"] = plan.header_value
    with state.lock:
        now = emulator.now()
        emulator.settle(now)
        try:
            # Usage plans are per selling partner account and application: per region.
            account = f"{grant.client_id}@{call_region(request) or 'legacy'}"
            if not emulator.limiter.allow(operation_id, account, now):
                raise quota_exceeded()
            status, body = operation(now)
        except ApiError as refused:
            status, body = refused.status, refused.body()
        hidden = fault is not None and fault.after_apply and 200 <= status < 300
        if fault is not None and fault.after_apply and not hidden:
            fault = None  # the operation failed on its own: the real answer goes out
        _record(
            emulator,
            request,
            operation_id,
            now,
            _fault_status(fault) if fault is not None and hidden else status,
            fault,
            token_region,
        )
    if fault is not None and hidden:
        return await _fault_answer(
            request, fault, body, {"x-amzn-RequestId": headers["x-amzn-RequestId"]}
        )
    return JSONResponse(body, status_code=status, headers=headers)


def query_list(request: Request, name: str) -> list[str]:
    """An array query parameter, sent repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values
