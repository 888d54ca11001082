"""The emulator as an ASGI app: Amazon's LWA and SP-API (Orders, Feeds, Reports, Messaging) plus
the control API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from emulator import auth, control, control_buyers, feeds, finances, messaging, orders, reports
from emulator.amazon_refunds import router as amazon_refunds_router
from emulator.amazon_refunds import settle_amazon_refunds
from emulator.auth import Credentials
from emulator.clock import SimulatedClock
from emulator.errors import error_list
from emulator.order_validation import OrderValidator
from emulator.ratelimit import RateLimiter
from emulator.regions import RegionBaseUrls
from emulator.runtime import Emulator
from emulator.spec import usage_plans
from emulator.state import EmulatorState


def create_app(
    state: EmulatorState | None = None,
    *,
    time_scale: float = 1.0,
    credentials: Credentials | None = None,
    usage_plans_lifted: bool = False,
) -> FastAPI:
    """An emulated Amazon for one seller: state (fresh if None), simulated time, accepted credentials.

    ``credentials`` defaults to the demo credentials or ``HENPIN_EMULATOR_*`` overrides.
    ``usage_plans_lifted`` (benchmarks only): no request is throttled (emulator.ratelimit).
    """
    state = state or EmulatorState()
    clock = SimulatedClock(time_scale)
    if state.saved_simulated_now is not None:
        clock.resume_from(state.saved_simulated_now)
    state.clock = clock
    emulator = Emulator(
        state=state,
        clock=clock,
        credentials=credentials or Credentials.from_env(),
        limiter=RateLimiter(usage_plans(), lifted=usage_plans_lifted),
        settlers=[feeds.settle_feeds, settle_amazon_refunds, reports.settle_reports],
    )
    app = FastAPI(
        title="Henpin SP-API emulator",
        description=(
            "Amazon SP-API (LWA, Orders 2026-01-01, Feeds 2021-06-30, Reports 2021-06-30, "
            "Messaging v1) for demos and tests."
        ),
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.state.emulator = emulator
    # SP-API at /na, /eu and /fe as well (emulator.regions; the unprefixed paths are legacy).
    app.add_middleware(RegionBaseUrls)
    app.include_router(auth.router())
    app.include_router(orders.router())
    app.include_router(feeds.router())
    app.include_router(reports.router())
    app.include_router(messaging.router())
    app.include_router(control.router(OrderValidator()))
    app.include_router(control_buyers.router())
    app.include_router(finances.router())
    app.include_router(amazon_refunds_router())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        # Unknown paths and methods answer in SP-API's ErrorList shape, not FastAPI's.
        code = "NotFound" if error.status_code == 404 else "InvalidInput"
        return JSONResponse(
            error_list(code, f"{request.method} {request.url.path}: {error.detail}"),
            status_code=error.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_list("InvalidInput", str(error)), status_code=400)

    return app
