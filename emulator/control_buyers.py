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
- ``GET``/``PUT /_emulator/application/roles``: the application's restricted roles
  (``{"roles": ["DIRECT_TO_CONSUMER_DELIVERY"]}`` shows buyers' e-mails), see
  ``emulator.buyer_contact``.
- ``GET``/``PUT``/``DELETE /_emulator/orders/{orderId}/buyer-locale``: the buyer's language that
  GetAttributes gives (``{"locale": "en-US"}``), or back to the marketplace's.
- ``POST``/``GET /_emulator/buyer-messages[?orderId=]``: e-mails buyers sent the seller.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator import control_returns
from emulator.buyer_contact import (
    KNOWN_ROLES,
    keep_buyer_messages,
    parse_buyer_messages,
    parse_locale,
    parse_roles,
)
from emulator.clock import iso_precise
from emulator.control import read_json, refused
from emulator.messaging import ACTIONS, available_actions, buyer_locale
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

    buyer_contact_routes(routes)
    return routes


def buyer_contact_routes(routes: APIRouter) -> None:
    """The application's roles, buyers' locales and buyers' e-mails to the seller."""

    def roles_answer(emulator: Emulator) -> JSONResponse:
        roles = emulator.state.application_roles
        return JSONResponse({"roles": list(roles), "known": list(KNOWN_ROLES)})

    @routes.get("/application/roles")
    async def get_roles(request: Request) -> JSONResponse:
        return roles_answer(emulator_of(request))

    @routes.put("/application/roles")
    async def put_roles(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        roles = parse_roles(body)
        if isinstance(roles, str):
            return refused(400, roles)
        with emulator.state.lock:
            emulator.state.application_roles[:] = roles
            emulator.save()
        return roles_answer(emulator)

    def locale_answer(emulator: Emulator, order_id: str) -> JSONResponse:
        order = emulator.state.orders.get(order_id)
        if order is None:
            return refused(404, f"No order {order_id} in the emulator.")
        forced = order_id in emulator.state.buyer_locales
        return JSONResponse({"locale": buyer_locale(emulator, order), "forced": forced})

    @routes.get("/orders/{order_id}/buyer-locale")
    async def get_buyer_locale(request: Request, order_id: str) -> JSONResponse:
        return locale_answer(emulator_of(request), order_id)

    @routes.put("/orders/{order_id}/buyer-locale")
    async def put_buyer_locale(request: Request, order_id: str) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        locale = parse_locale(body)
        if locale is None:
            return refused(400, 'The body must be {"locale": "xx-YY"}, a language tag.')
        with emulator.state.lock:
            if order_id not in emulator.state.orders:
                return refused(404, f"No order {order_id} in the emulator.")
            emulator.state.buyer_locales[order_id] = locale
            emulator.save()
        return locale_answer(emulator, order_id)

    @routes.delete("/orders/{order_id}/buyer-locale")
    async def delete_buyer_locale(request: Request, order_id: str) -> JSONResponse:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.state.buyer_locales.pop(order_id, None)
            emulator.save()
        return locale_answer(emulator, order_id)

    @routes.post("/buyer-messages")
    async def post_buyer_messages(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        with emulator.state.lock:
            messages, problem = parse_buyer_messages(body, emulator.state.orders, emulator.now())
            if problem is not None:
                return refused(400, problem)
            created = keep_buyer_messages(emulator.state.buyer_messages, messages)
            emulator.save()
        return JSONResponse({"created": created, "messages": messages})

    @routes.get("/buyer-messages")
    async def list_buyer_messages(request: Request) -> list[dict[str, Any]]:
        order_id = request.query_params.get("orderId")
        kept = emulator_of(request).state.buyer_messages
        return [m for m in kept if order_id is None or m["orderId"] == order_id]
