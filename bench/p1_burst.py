"""P1 burst: a finished feed wakes many cases at once.

`cases` cheap cancel requests (policy cancels each at once) are ingested together; each case
queues its cancellation in the outbox and suspends until Amazon's result. So that they go in one
feed (cases open a few seconds apart on this box, and the outbox sends every few seconds), the
resident runner runs with a 10-minute outbox interval until every case has queued its action,
then is started again at the benchmark's interval: its housekeeping sends them all in one feed,
records the feed's result once Amazon has processed it, and in that round resumes every case of
the feed. One finished feed wakes them all, and the resident executor runs them together.

Latency of one case = its `closed_at` minus its feed's `updated_at` at the moment housekeeping
recorded Amazon's result (`henpin.outbox.feeds._record_outcome`; both on this machine's clock).
Since 2026-12-06 the outbox closes the case in that same transaction (the flow declared how it
ends once Amazon confirms: `henpin.domain.ClosesCase`), so this is the time the inbox shows the
case closed. Before, it was the resumed run's next stored step. The resumed runs still finish
the cases' records in Prefect after: `run_p50_s` / `run_p95_s` are their flow runs' end time
(Prefect's) minus the same moment. What both leave out: the time between Amazon finishing the
feed and housekeeping's next round asking (HENPIN_OUTBOX_INTERVAL_S), which is the outbox's
poll, not the wake-up.

CPU per woken case (`cpu_s_per_case`): what the runner and Prefect's server used from the first
feed result recorded to the last run finished, divided by the cases (sampled every 0.1 s).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from common import CpuTrace, Emulator, log, percentile, scan_orders, wait_until
from single import SingleStack


def closed_after_feed(store: str, order_prefix: str) -> list[tuple[str, float, float, int]]:
    """(case's flow run, closed_at, its feed's result recorded at, feed id) of closed cases
    whose action went in a finished feed."""
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Action, Case, Feed

    with session_scope(store) as s:
        rows = s.execute(
            select(Case.flow_run_id, Case.closed_at, Feed.updated_at, Feed.id)
            .join(Action, Action.case_id == Case.id)
            .join(Feed, Feed.id == Action.feed_id)
            .where(
                Case.order_id.startswith(order_prefix),
                Case.state == "closed",
                Feed.status == "done",
            )
        ).all()
    return [
        (str(run), closed.timestamp(), recorded.timestamp(), int(f))
        for run, closed, recorded, f in rows
        if closed is not None
    ]


def runs_to_finish(store: str, order_prefix: str) -> int:
    """Cases the outbox closed whose flow run has not ended their record yet."""
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(store) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.order_id.startswith(order_prefix), Case.run_to_finish.is_(True))
            )
            or 0
        )


def run_end_times(run_ids: list[str]) -> dict[str, float]:
    """Prefect's end time of each of these flow runs (finished ones only)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    ends: dict[str, float] = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(run_ids), 200):
            these = [UUID(r) for r in run_ids[start : start + 200]]
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=these)), limit=200
            )
            ends.update({str(r.id): r.end_time.timestamp() for r in runs if r.end_time})
    return ends


def run(
    stack: SingleStack, emulator: Emulator, *, cases: int, prefix: int, timeout: float = 600
) -> dict[str, Any]:
    from p4_throughput import states
    from prefect.deployments import run_deployment

    mine = f"{prefix:03d}-"
    emulator.post_orders(scan_orders(cases, cases, prefix=prefix, cheap_every=1))
    log(f"P1 burst: {cases} cheap cancel requests, policy cancels each through one outbox")
    with stack.settings():
        stack.start_runner(HENPIN_OUTBOX_INTERVAL_S="600")  # holds their cancellations back
        started = time.time()
        run_deployment("ingest/henpin", timeout=0, as_subflow=False)
        wait_until(
            f"the {cases} burst cases to queue their cancellation",
            lambda: states(stack.store, mine)["acting"] >= cases,
            timeout=timeout,
        )
    procs = stack.children.procs

    def pid_of(name: str) -> Any:
        return lambda: procs[name].pid if name in procs else None

    with CpuTrace({"runner": pid_of("runner"), "prefect": pid_of("prefect")}) as cpu:
        stack.start_runner()  # its housekeeping sends them in one feed; its result wakes all
        with stack.settings():
            wait_until(
                f"the {cases} burst cases to close",
                lambda: states(stack.store, mine)["closed"] >= cases,
                timeout=timeout,
            )
            all_closed = time.time()
            wait_until(
                f"the {cases} burst cases' runs to finish",
                lambda: runs_to_finish(stack.store, mine) == 0,
                timeout=timeout,
            )
            rows = closed_after_feed(stack.store, mine)
            ended = run_end_times([run for run, *_ in rows])
    latencies = [closed - recorded for _, closed, recorded, _ in rows]
    run_latencies = [ended[run] - recorded for run, _, recorded, _ in rows if run in ended]
    # CPU per case of each process from Amazon's result recorded (the first feed's) to the last
    # run finished: what the wake costs (sampled every 0.1 s).
    if rows:
        woken = min(r[2] for r in rows)
        last = max([r[1] for r in rows] + list(ended.values()))
        used = {n: cpu.used(n, woken, last) for n in ("runner", "prefect")}
        cpu_per_case = {
            n: round(u / len(rows), 3) if u is not None else None for n, u in used.items()
        }
    else:
        cpu_per_case = {}
    feeds = Counter(feed for *_, feed in rows)
    result = {
        "cases": cases,
        "measured": len(rows),
        "feeds": len(feeds),
        "cases_per_feed": sorted(feeds.values(), reverse=True),
        "p50_s": round(percentile(latencies, 50), 2),
        "p95_s": round(percentile(latencies, 95), 2),
        "max_s": round(max(latencies), 2) if latencies else None,
        "run_p50_s": round(percentile(run_latencies, 50), 2) if run_latencies else None,
        "run_p95_s": round(percentile(run_latencies, 95), 2) if run_latencies else None,
        "ingest_to_all_closed_s": round(all_closed - started, 1),
        "cases_woken_together": max(feeds.values(), default=0),
        "cpu_s_per_case": cpu_per_case,
    }
    log(f"P1 burst: {result}")
    return result
