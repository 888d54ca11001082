"""The control API's buyer side: return requests buyers file, the reports made from them, and the
messages the seller's software sent buyers.

- ``POST /_emulator/returns`` (a JSON list of return requests, all or nothing) and
  ``GET /_emulator/returns[?orderId=]``: see ``emulator.returns``.
- ``GET /_emulator/reports``: every report with its status and document text.
- ``GET /_emulator/messages[?orderId=]``: what Messaging API calls sent.
- ``PUT``/``DELETE /_emulator/orders/{orderId}/messaging-actions``: force which message actions
  Amazon offers for an order (``{"actions": ["unexpectedProblem"]}``), or go back to the ones its
  state gives.
- return settings and the seller's actions on return requests: ``emulator.control_returns``
  (its routes are included here).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator import control_returns
from emulator.clock import iso_precise
from emulator.control import read_json, refused
from emulator.messaging import ACTIONS, available_actions
from emulator.reports import processing_status
from emulator.returns import parse_returns, upsert_returns
from emulator.runtime import Emulator, emulator_of


def report_view(emulator: Emulator, report_id: str) -> dict[str, Any]:
    """A report as the control API shows it: window, status and the document's text."""
    report = emulator.state.reports[report_id]
    document = emulator.state.documents.get(report.document_id) if report.document_id else None
    return {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids,
        "dataStartTime": iso_precise(report.data_start),
        "dataEndTime": iso_precise(report.data_end),
        "createdTime": iso_precise(report.created),
        "processingStatus": processing_status(report, emulator.now()),
        "reportDocumentId": report.document_id,
        "document": document.content if document else None,
        "fault": "fatal" if report.fatal_by_fault else None,
    }


def router() -> APIRouter:
    """Routes for returns, reports, messages and messaging actions."""
    routes = APIRouter(prefix="/_emulator")
    routes.include_router(control_returns.router())

    @routes.post("/returns")
    async def post_returns(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        with emulator.state.lock:
            now = emulator.now()
            emulator.settle(now)  # reports due before these returns are generated without them
            records, problems = parse_returns(
                body,
                emulator.state.orders,
                emulator.state.returns,
                now,
                emulator.state.return_settings,
            )
            if problems:
                first = problems[0]
                where = f"Return request {first.index}" if first.index is not None else "The body"
                return refused(
                    400, f"{where} is invalid at {first.path}: {first.message}", problems
                )
            answer: dict[str, Any] = upsert_returns(emulator.state.returns, records)
            posted = {(r["amazonRmaId"], r["orderItemId"]) for r in records}
            answer["returns"] = control_returns.return_views(
                emulator,
                [
                    r
                    for r in emulator.state.returns
                    if (r["amazonRmaId"], r["orderItemId"]) in posted
                ],
            )
            emulator.save()
        return JSONResponse(answer)

    @routes.get("/returns")
    async def list_returns(request: Request) -> list[dict[str, Any]]:
        order_id = request.query_params.get("orderId")
        emulator = emulator_of(request)
        returns = emulator.state.returns
        chosen = [r for r in returns if order_id is None or r["orderId"] == order_id]
        return control_returns.return_views(emulator, chosen)  # as Amazon shows them now

    @routes.get("/reports")
    async def list_reports(request: Request) -> list[dict[str, Any]]:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.settle(emulator.now())
            reports = sorted(
                emulator.state.reports.values(), key=lambda r: (r.created, r.report_id)
            )
            return [report_view(emulator, report.report_id) for report in reports]

    @routes.get("/messages")
    async def list_messages(request: Request) -> list[dict[str, Any]]:
        order_id = request.query_params.get("orderId")
        messages = emulator_of(request).state.messages
        return [m for m in messages if order_id is None or m["orderId"] == order_id]

    @routes.get("/orders/{order_id}/messaging-actions")
    async def get_messaging_actions(request: Request, order_id: str) -> JSONResponse:
        emulator = emulator_of(request)
        order = emulator.state.orders.get(order_id)
        if order is None:
            return refused(404, f"No order {order_id} in the emulator.")
        forced = order_id in emulator.state.messaging_overrides
        actions = available_actions(order, emulator.state.messaging_overrides)
        return JSONResponse({"actions": actions, "forced": forced})

    @routes.put("/orders/{order_id}/messaging-actions")
    async def force_messaging_actions(request: Request, order_id: str) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        actions = body.get("actions") if isinstance(body, dict) else None
        if not isinstance(actions, list) or not all(a in ACTIONS for a in actions):
            return refused(
                400,
                f'The body must be {{"actions": [...]}} with actions among {", ".join(ACTIONS)}.',
            )
        with emulator.state.lock:
            if order_id not in emulator.state.orders:
                return refused(404, f"No order {order_id} in the emulator.")
            emulator.state.messaging_overrides[order_id] = list(dict.fromkeys(actions))
            emulator.save()
        return JSONResponse(
            {"actions": emulator.state.messaging_overrides[order_id], "forced": True}
        )

    @routes.delete("/orders/{order_id}/messaging-actions")
    async def unforce_messaging_actions(request: Request, order_id: str) -> JSONResponse:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.state.messaging_overrides.pop(order_id, None)
            emulator.save()
            order = emulator.state.orders.get(order_id)
        if order is None:
            return refused(404, f"No order {order_id} in the emulator.")
        return JSONResponse({"actions": available_actions(order, {}), "forced": False})

    return routes
