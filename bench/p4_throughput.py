"""P4: cases per hour from ingestion to decision-ready (waiting for an operator) or closed; and
the ingestion cost in SP-API calls per 1,000 orders scanned.

One ingestion run over `total` orders of which `requests` carry a buyer's cancel request (3 in 4
above the high-value line, so they end waiting for an operator; 1 in 4 cheap, so policy cancels
them through the outbox and they close once Amazon's feed result is in). The clock runs from
starting the ingestion run until the last case is waiting or closed (`cases_per_hour`); the
pace between 10 % and 90 % of the cases ready is reported too (`cases_per_hour_10_90`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from common import Emulator, cpu_s, log, scan_orders


def states(store: str, order_prefix: str = "") -> Counter[str]:
    """Cases by state (of orders whose id starts with `order_prefix`)."""
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(store) as s:
        rows = s.execute(
            select(Case.state, func.count())
            .where(Case.order_id.startswith(order_prefix))
            .group_by(Case.state)
        ).all()
    return Counter({state: int(n) for state, n in rows})


def run(
    label: str,
    *,
    emulator: Emulator,
    store: str,
    prefect: Callable[[], AbstractContextManager[None]],
    total: int,
    requests: int,
    prefix: int,
    timeout: float,
    cheap_every: int = 4,
) -> dict[str, Any]:
    """Ingest `total` orders (ids starting `prefix`), `requests` of them with a cancel request
    (every `cheap_every`-th cheap), and time them until each case is waiting or closed."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    emulator.post_orders(scan_orders(total, requests, prefix=prefix, cheap_every=cheap_every))
    mine = f"{prefix:03d}-"
    before = len(emulator.calls())
    log(f"P4 {label}: ingesting {total} orders, {requests} with a buyer's cancel request")
    with prefect():
        started = time.time()
        ingest = run_deployment("ingest/henpin", timeout=0, as_subflow=False)
        ready_at = None
        ingest_done_at = None
        deadline = time.monotonic() + timeout
        progress = Counter[str]()
        readiness: list[tuple[float, int]] = []
        while time.monotonic() < deadline:
            if ingest_done_at is None:
                with get_client(sync_client=True) as client:
                    state = client.read_flow_run(ingest.id).state
                if state is not None and state.is_final():
                    ingest_done_at = time.time()
            progress = states(store, mine)
            readiness.append((time.time(), progress["waiting"] + progress["closed"]))
            if sum(progress[s] for s in ("waiting", "closed")) >= requests:
                ready_at = time.time()
                break
            time.sleep(0.5)
    if ready_at is None:
        raise TimeoutError(f"P4 {label}: not all cases ready after {timeout:.0f} s: {progress}")
    calls = emulator.calls()[before:]
    ops = Counter(c["operation"] for c in calls)
    elapsed = ready_at - started
    t10 = next(t for t, n in readiness if n >= 0.1 * requests)
    t50 = next(t for t, n in readiness if n >= 0.5 * requests)
    t90 = next(t for t, n in readiness if n >= 0.9 * requests)
    result = {
        "cases": requests,
        "orders_scanned": total,
        "elapsed_s": round(elapsed, 1),
        "cases_per_hour": round(requests / elapsed * 3600),
        # The pace between 10 % and 90 % of cases ready, without the start and the tail (the
        # last cheap cases wait for a createFeed token: 120 s each once the burst is spent).
        "cases_per_hour_10_90": round(0.8 * requests / max(t90 - t10, 1e-9) * 3600),
        "ingest_run_s": round((ingest_done_at or ready_at) - started, 1),
        "started_at_epoch": started,
        "half_ready_at_epoch": t50,
        "ready_at_epoch": ready_at,
        "waiting": progress["waiting"],
        "closed": progress["closed"],
        "search_orders_calls": ops["searchOrders"],
        "get_order_calls": ops["getOrder"],
        "get_order_per_case": round(ops["getOrder"] / requests, 2),
        "create_feed_calls": ops["createFeed"],
        "throttled_429": sum(1 for c in calls if c["status"] == 429),
    }
    log(f"P4 {label}: {result}")
    return result


#: What prefect 3.9.1's in-memory messaging logs for each event it drops for a consumer whose
#: queue (10,000) is full (prefect/server/utilities/messaging/memory.py).
DROPPED = "Subscription queue is full, dropping message"


def server_catch_up(
    prefect: Callable[[], AbstractContextManager[None]],
    *,
    server_pid: int,
    server_log: Path | None = None,
    quiet_s: float = 6.0,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """How far Prefect's server trails its own API once every case is ready.

    The API records flow-run states as they are proposed; task runs and events are written
    afterwards by the server's background services (task-run recorder, event persister) from
    an in-memory queue. Polls the numbers of task runs and events every 2 s until they have not
    changed for `quiet_s`: `caught_up_s` is when they last changed (None: still growing after
    `timeout`); `server_cpu_s`, the CPU the server (`server_pid`) used meanwhile. Run right
    after a P4 part, before anything else starts runs.

    With `server_log` (the server's log; its rotated files too), `event_deliveries_dropped`
    counts the events the server's in-memory messaging dropped for a consumer that was too far
    behind (the task-run recorder, the event persister, ...): at least that many, as rotation
    may have removed older lines."""
    from prefect.client.orchestration import get_client

    with prefect(), get_client(sync_client=True) as client:

        def counts() -> tuple[int, int]:
            task_runs = client.request("POST", "/task_runs/count", json={}).json()
            events = client.request("POST", "/events/filter", json={"limit": 1}).json()
            return int(task_runs), int(events["total"])

        start, cpu_at_start = time.monotonic(), cpu_s(server_pid)
        first = last = counts()
        changed = start
        caught_up = False
        while time.monotonic() - start < timeout:
            time.sleep(2.0)
            now = counts()
            if now != last:
                last, changed = now, time.monotonic()
            elif time.monotonic() - changed >= quiet_s:
                caught_up = True
                break
    result = {
        "task_runs_at_ready": first[0],
        "task_runs_at_end": last[0],
        "events_at_ready": first[1],
        "events_at_end": last[1],
        "caught_up_s": round(changed - start, 1) if caught_up else None,
        "server_cpu_s": round(cpu_s(server_pid) - cpu_at_start, 1),
    }
    if server_log is not None:
        result["event_deliveries_dropped"] = sum(
            sum(1 for line in f.open(errors="replace") if DROPPED in line)
            for f in server_log.parent.glob(f"{server_log.name}*")
        )
    log(f"Prefect server after the cases were ready: {result}")
    return result
