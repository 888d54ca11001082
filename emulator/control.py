"""The control API under ``/_emulator/``: how tests, demos and scripts set up and inspect Amazon.

Not part of SP-API: no token, no throttling, not in the call log, never faulted. Documented with
curl examples in ``docs/emulator.md``. Orders, feeds, calls, clock, reset, demo data and fault
modes are here; return requests, reports and messages to buyers in ``control_buyers``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from emulator.buyer_contact import seed_buyer_contact
from emulator.clock import iso, iso_precise
from emulator.demo import DEMO_ROLES, demo_buyer_messages, demo_orders, demo_returns
from emulator.faults import FaultSettingsInvalid, parse_settings
from emulator.feeds import processing_status
from emulator.merge import PatchInvalid, merge_order
from emulator.order_validation import OrderValidator, Problem
from emulator.returns import parse_returns, upsert_returns
from emulator.runtime import Emulator, emulator_of


def refused(status: int, message: str, problems: list[Problem] | None = None) -> JSONResponse:
    """A control-API refusal: ``{"error": message, "problems": [...]}``."""
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = [problem.to_json() for problem in problems]
    return JSONResponse(body, status_code=status)


async def read_json(request: Request) -> Any:
    """The request's JSON body; a marker object (never a list or dict) when it is not JSON."""
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def upsert_orders(emulator: Emulator, orders: list[dict[str, Any]]) -> dict[str, int]:
    """Store valid orders, replacing those with the same orderId."""
    created = updated = 0
    with emulator.state.lock:
        for order in orders:
            if order["orderId"] in emulator.state.orders:
                updated += 1
            else:
                created += 1
            emulator.state.orders[order["orderId"]] = order
        emulator.save()
    return {"created": created, "updated": updated}


def seed_demo_data(emulator: Emulator) -> dict[str, Any]:
    """Upsert the demo orders and their return requests (times relative to the simulated now)."""
    with emulator.state.lock:
        now = emulator.now()
        emulator.settle(now)
        answer: dict[str, Any] = upsert_orders(emulator, demo_orders(now))
        records, problems = parse_returns(
            demo_returns(now),
            emulator.state.orders,
            emulator.state.returns,
            now,
            emulator.state.return_settings,
        )
        if problems:  # e.g. returns added by hand on the demo items leave no quantity to return
            answer["returns"] = {
                "created": 0,
                "updated": 0,
                "problems": [problem.to_json() for problem in problems],
            }
        else:
            answer["returns"] = upsert_returns(emulator.state.returns, records)
        answer["buyerMessages"] = seed_buyer_contact(
            emulator.state, DEMO_ROLES, demo_buyer_messages(now), now
        )
        emulator.save()
    return answer


def clock_answer(emulator: Emulator) -> dict[str, Any]:
    """The simulated time, how fast it runs, and whose usage plans throttle (`amazon`, or
    `lifted` for a benchmark)."""
    return {
        "now": iso_precise(emulator.now()),
        "timeScale": emulator.clock.time_scale,
        "usagePlans": "lifted" if emulator.limiter.lifted else "amazon",
    }


def feed_view(emulator: Emulator, feed_id: str) -> dict[str, Any]:
    """A feed as the control API shows it: status, raw document, report and parsed results."""
    state = emulator.state
    feed = state.feeds[feed_id]
    document = state.documents.get(feed.input_document_id)
    result = state.documents.get(feed.result_document_id) if feed.result_document_id else None
    return {
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "marketplaceIds": feed.marketplace_ids,
        "processingStatus": processing_status(feed, emulator.now()),
        "createdTime": iso_precise(feed.created),
        "document": document.content if document else None,
        "result": result.content if result else None,
        "results": [r.to_json() for r in feed.results] if feed.outcome else [],
        "fault": _feed_fault(feed.fault_plan),
    }


def _feed_fault(plan: dict[str, Any] | None) -> str | None:
    """What fault modes decided for a feed: "fatal", "messageErrors" (a share may fail) or None."""
    if not plan:
        return None
    if plan.get("fatal"):
        return "fatal"
    if plan.get("reportFault"):  # underCount, noSummary or omitResult (emulator/faults.py)
        return str(plan["reportFault"])
    return "messageErrors" if plan.get("messageErrorRate") else None


def faults_answer(emulator: Emulator) -> dict[str, Any]:
    """The fault settings in force (null when none) and how many faults were injected."""
    settings = emulator.faults.settings
    return {
        "faults": settings.to_json() if settings else None,
        "injected": emulator.faults.injected(),
    }


def router(validator: OrderValidator) -> APIRouter:
    """Routes of the control API."""
    routes = APIRouter(prefix="/_emulator")

    @routes.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Liveness for launchers: answers as soon as the server accepts requests."""
        return {"ok": True, **clock_answer(emulator_of(request))}

    @routes.post("/orders")
    async def post_orders(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        if not isinstance(body, list):
            return refused(400, "The body must be a JSON list of Order objects.")
        problems = [p for index, order in enumerate(body) for p in validator.problems(order, index)]
        if problems:
            first = problems[0]
            return refused(
                400, f"Order {first.index} is invalid at {first.path}: {first.message}", problems
            )
        emulator.settle(emulator.now())
        return JSONResponse(upsert_orders(emulator, body))

    @routes.get("/orders")
    async def list_orders(request: Request) -> list[dict[str, Any]]:
        emulator = emulator_of(request)
        emulator.settle(emulator.now())
        return list(emulator.state.orders.values())

    @routes.get("/orders/{order_id}")
    async def get_order(request: Request, order_id: str) -> JSONResponse:
        emulator = emulator_of(request)
        emulator.settle(emulator.now())
        order = emulator.state.orders.get(order_id)
        if order is None:
            return refused(404, f"No order {order_id} in the emulator.")
        return JSONResponse(order)

    @routes.patch("/orders/{order_id}")
    async def patch_order(request: Request, order_id: str) -> JSONResponse:
        emulator, patch = emulator_of(request), await read_json(request)
        if not isinstance(patch, dict):
            return refused(400, "The body must be a JSON object (a partial Order).")
        if patch.get("orderId", order_id) != order_id:
            return refused(400, "orderId cannot be changed.")
        with emulator.state.lock:
            now = emulator.now()
            emulator.settle(now)
            order = emulator.state.orders.get(order_id)
            if order is None:
                return refused(404, f"No order {order_id} in the emulator.")
            try:
                merged = merge_order(order, patch)
            except PatchInvalid as problem:
                return refused(400, str(problem))
            if "lastUpdatedTime" not in patch:
                merged["lastUpdatedTime"] = iso(now)
            problems = validator.problems(merged)
            if problems:
                first = problems[0]
                return refused(
                    400, f"The merged order is invalid at {first.path}: {first.message}", problems
                )
            emulator.state.orders[order_id] = merged
            emulator.save()
        return JSONResponse(merged)

    @routes.get("/orders/{order_id}/refunds")
    async def order_refunds(request: Request, order_id: str) -> JSONResponse:
        emulator = emulator_of(request)
        emulator.settle(emulator.now())
        if order_id not in emulator.state.orders:
            return refused(404, f"No order {order_id} in the emulator.")
        return JSONResponse([r for r in emulator.state.refunds if r["orderId"] == order_id])

    @routes.get("/feeds")
    async def list_feeds(request: Request) -> list[dict[str, Any]]:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.settle(emulator.now())
            feeds = sorted(emulator.state.feeds.values(), key=lambda f: (f.created, f.feed_id))
            return [feed_view(emulator, feed.feed_id) for feed in feeds]

    @routes.get("/calls")
    async def list_calls(request: Request) -> list[dict[str, Any]]:
        return list(emulator_of(request).state.calls)

    @routes.post("/reset")
    async def reset(request: Request) -> dict[str, Any]:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.state.reset()
            emulator.limiter.reset()
            emulator.save()
        return {"reset": True, **clock_answer(emulator)}

    @routes.get("/clock")
    async def clock(request: Request) -> dict[str, Any]:
        return clock_answer(emulator_of(request))

    @routes.post("/clock/advance")
    async def advance(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return refused(400, 'The body must be {"seconds": N} with N >= 0.')
        with emulator.state.lock:
            emulator.clock.advance(float(seconds))
            emulator.settle(emulator.now())
            emulator.save()
        return JSONResponse(clock_answer(emulator))

    @routes.post("/seed-demo")
    async def seed_demo(request: Request) -> JSONResponse:
        return JSONResponse(seed_demo_data(emulator_of(request)))

    @routes.put("/faults")
    async def put_faults(request: Request) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        try:
            settings = parse_settings(body)
        except FaultSettingsInvalid as invalid:
            answer = {"error": f"Fault settings refused: {invalid}", "problems": invalid.problems}
            return JSONResponse(answer, status_code=400)
        with emulator.state.lock:
            emulator.faults.set(settings)
            emulator.save()
        return JSONResponse(faults_answer(emulator))

    @routes.get("/faults")
    async def get_faults(request: Request) -> JSONResponse:
        return JSONResponse(faults_answer(emulator_of(request)))

    @routes.delete("/faults")
    async def delete_faults(request: Request) -> JSONResponse:
        emulator = emulator_of(request)
        with emulator.state.lock:
            emulator.faults.clear()
            emulator.save()
        return JSONResponse(faults_answer(emulator))

    return routes
