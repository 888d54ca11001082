"""Control API for return requests on Amazon's side (see ``emulator.return_lifecycle``):

- ``GET|PUT|DELETE /_emulator/return-settings``: each marketplace's return-authorization setting
  (Seller Central's Return settings: manual, authorize all, authorize in-policy);
- ``POST /_emulator/returns/{amazonRmaId}/authorize`` and ``/close`` (``{"reason": "..."}``):
  what the seller does in Manage Returns, which SP-API cannot do;
- ``POST /_emulator/returns/{amazonRmaId}/advance`` (``{"to": "inTransit"|"delivered",
  "at": ISO time, optional}``): move an authorized return on without waiting.

An action applies to every item of the RMA (one request), as Manage Returns does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator.clock import parse_time
from emulator.control import read_json, refused
from emulator.return_lifecycle import (
    ADVANCE_TO,
    ReturnActionRefused,
    advance,
    parse_settings,
    seller_authorizes,
    seller_closes,
    settings_view,
    view,
)
from emulator.runtime import Emulator, emulator_of

#: A seller action on one return record at the simulated now (raises ReturnActionRefused).
Action = Callable[[dict[str, Any], datetime], None]


def return_views(emulator: Emulator, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return records as Amazon shows them now."""
    now = emulator.now()
    return [view(record, now) for record in records]


def _act(emulator: Emulator, rma_id: str, action: Action) -> JSONResponse:
    with emulator.state.lock:
        now = emulator.now()
        emulator.settle(now)
        records = [r for r in emulator.state.returns if r["amazonRmaId"] == rma_id]
        if not records:
            return refused(404, f"No return request {rma_id} in the emulator.")
        changed = [dict(r) for r in records]
        try:
            for record in changed:
                action(record, now)
        except ReturnActionRefused as problem:
            return refused(409, str(problem))
        for old, new in zip(records, changed, strict=True):
            old.update(new)
        emulator.save()
        return JSONResponse({"returns": return_views(emulator, records)})


def router() -> APIRouter:
    """Routes for return settings and the seller's actions (no prefix: included by
    ``control_buyers``' router, which has it)."""
    routes = APIRouter()

    @routes.get("/return-settings")
    async def get_settings(request: Request) -> dict[str, Any]:
        return settings_view(emulator_of(request).state.return_settings)

    @routes.put("/return-settings")
    async def put_settings(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        chosen, problems = parse_settings(body)
        if problems:
            return JSONResponse(
                {"error": f"Return settings refused: {problems[0]}", "problems": problems},
                status_code=400,
            )
        with emulator.state.lock:
            emulator.state.return_settings.update(chosen)
            emulator.save()
        return JSONResponse(settings_view(emulator.state.return_settings))

    @routes.delete("/return-settings")
    async def delete_settings(request: Request) -> JSONResponse:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.state.return_settings.clear()
            emulator.save()
        return JSONResponse(settings_view(emulator.state.return_settings))

    @routes.post("/returns/{rma_id}/authorize")
    async def authorize_return(request: Request, rma_id: str) -> JSONResponse:
        return _act(emulator_of(request), rma_id, seller_authorizes)

    @routes.post("/returns/{rma_id}/close")
    async def close_return(request: Request, rma_id: str) -> JSONResponse:
        body = await read_json(request)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip():
            return refused(400, 'The body must be {"reason": "..."}: Seller Central asks why.')
        return _act(
            emulator_of(request),
            rma_id,
            lambda record, now: seller_closes(record, now, reason.strip()),
        )

    @routes.post("/returns/{rma_id}/advance")
    async def advance_return(request: Request, rma_id: str) -> JSONResponse:
        body = await read_json(request)
        to = body.get("to") if isinstance(body, dict) else None
        raw_at = body.get("at") if isinstance(body, dict) else None
        if to not in ADVANCE_TO:
            return refused(400, f'The body must be {{"to": one of {", ".join(ADVANCE_TO)}}}.')
        try:
            at = parse_time(raw_at) if isinstance(raw_at, str) else None
        except ValueError:
            return refused(400, "'at' must be an ISO 8601 date-time.")
        if raw_at is not None and at is None:
            return refused(400, "'at' must be an ISO 8601 date-time.")
        return _act(emulator_of(request), rma_id, lambda record, now: advance(record, now, to, at))

    return routes
