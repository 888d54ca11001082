"""Sync or async flows in prefect 3.9.1: what each costs per run, in-process.

A sync flow's engine joins its heartbeat thread when the run ends; that thread sleeps in 1 s
steps, so a sync run lasts up to a second longer. An async flow's engine does not join it.
Measured on (a) a flow of three trivial tasks and (b) Henpin's case flow on the path that
closes at once (a still-pending order: read the order, recommend, record, close), as
Henpin's `cancel-request` (async since 2026-12-04, chosen on these figures) and as a sync copy
with the same tasks.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import ROOT, US, environment, log
from prefect import flow, task
from single import SingleStack


@task
def step(x: int) -> int:
    return x + 1


@flow(name="bench-three-tasks-sync")
def three_tasks_sync() -> int:
    return step(step(step(0)))


@flow(name="bench-three-tasks-async")
async def three_tasks_async() -> int:
    return step(step(step(0)))


@flow(name="cancel-request-sync", persist_result=True)
def cancel_request_sync(case_id: int, order_id: str, policy: Any, policy_version: str) -> Any:
    """The case flow's opening as a sync flow: the same tasks, in the same order."""
    from flows.cancel_request import nothing_to_do_outcome, recommend
    from tasks.cases import close_case, record_recommendation
    from tasks.orders import read_order

    order = read_order(order_id)
    advice = recommend(order, policy)
    record_recommendation(case_id, order, advice, policy_version)
    if advice["action"] == "nothing_to_do":
        return close_case(case_id, nothing_to_do_outcome(order), advice["reason"])
    raise RuntimeError("the benchmark's orders are pending: nothing to do")


def _median_s(fn: Any, n: int) -> float:
    times = []
    for i in range(n + 1):
        started = time.perf_counter()
        fn(i)
        if i:  # the first run warms caches (imports, flow registration)
            times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def run(stack: SingleStack, n: int) -> dict[str, Any]:
    from common import forget_process_state

    from emulator.demo import order_json
    from flows.cancel_request import cancel_request
    from henpin.context import adapter
    from henpin.domain import CaseType
    from henpin.policy import load_policy
    from henpin.store.db import migrate
    from tasks.cases import open_case

    assert stack.emulator is not None
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="henpin-bench-flows-") as tmp, stack.settings():
        results["three_tasks_sync_s"] = _median_s(lambda i: three_tasks_sync(), n)
        results["three_tasks_async_s"] = _median_s(lambda i: asyncio.run(three_tasks_async()), n)
        recent = datetime.now(UTC) - timedelta(minutes=5)
        orders = [
            order_json(f"950-{4000000 + i:07d}-{i:07d}", status="PENDING", created=recent)
            for i in range(2 * (n + 1))
        ]
        stack.emulator.post_orders(orders)
        with environment(
            HENPIN_HOME=tmp,
            HENPIN_EMULATOR_URL=stack.emulator.url,
            HENPIN_POLICIES=str(ROOT / "policies.yaml"),
            HENPIN_MARKETPLACES=f'["{US}"]',
        ):
            forget_process_state()
            store = f"sqlite:///{Path(tmp) / 'henpin.db'}"
            migrate(store)
            policy = load_policy(ROOT / "policies.yaml")
            from henpin.domain import Order

            ids = []
            for o in orders:
                order = adapter().get_order(o["orderId"])
                assert isinstance(order, Order)
                ids.append((open_case(CaseType.CANCEL_REQUEST, order, url=store)[0], o["orderId"]))
            sync_ids, async_ids = ids[: n + 1], ids[n + 1 :]

            def sync_case(i: int) -> None:
                case_id, order_id = sync_ids[i]
                cancel_request_sync(case_id, order_id, policy.cancel_request, policy.version)

            def async_case(i: int) -> None:
                case_id, order_id = async_ids[i]
                asyncio.run(
                    cancel_request(case_id, order_id, policy.cancel_request, policy.version)
                )

            results["case_flow_sync_s"] = _median_s(sync_case, n)
            results["case_flow_async_s"] = _median_s(async_case, n)
            forget_process_state()
    results["runs_each"] = n
    log(f"sync vs async: {results}")
    return results
