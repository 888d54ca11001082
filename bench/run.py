"""`make bench`: how close Henpin gets to Amazon's limits, and whether the engine around them is
ever the bottleneck. Prints one table and writes bench/results.json.

    .venv/bin/python bench/run.py            # full (about 40 min on 2 cores)
    BENCH_QUICK=1 .venv/bin/python bench/run.py   # smaller N, under 5 min
    BENCH_ONLY=p2,default,scaled                  # run only these parts
    BENCH_ONLY=memory [BENCH_MEMORY_CASES=10000]  # the resident runner's memory (about an hour)
    BENCH_ONLY=engine                             # P4 engine capacity alone (default layout)

Everything runs on 127.0.0.1 against the SP-API emulator with Amazon's usage plans, except P4
engine capacity (and what follows it on the same emulator) where they are lifted:
- P2 (outbox vs one feed per action) in the emulator's simulated time, without Prefect;
- on the default layout (Prefect server on SQLite, one `henpin runner`, the resident executor):
  P4 throughput at Amazon's quotas, sync vs async flow cost, P4 engine capacity (quotas lifted)
  with the runner's memory sampled, P1 burst (a finished feed waking many cases), P1 decision
  latency (the resident executor, and the former process-per-run runner at two polls), P3 with
  10,000 waiting cases;
- on the scaled layout (henpin.scale: Prefect on PostgreSQL + Redis, two workers): P4.
See bench/README.md for what each figure means and docs/scaling.md for the conclusions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

WORK = Path(tempfile.mkdtemp(prefix="henpin-bench-"))
# Before Prefect is imported (it reads its settings once): no server of the developer's, quiet.
for name in list(os.environ):
    if name.startswith(("PREFECT_", "HENPIN_")):
        del os.environ[name]
os.environ.update(
    {
        "PREFECT_HOME": str(WORK / "client"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
)

import common  # noqa: E402
import history  # noqa: E402
from common import Children, log, postgres_reachable  # noqa: E402

QUICK = common.quick()
SIZES: dict[str, Any] = (
    {
        # Quick: 2 x 50 actions (the baseline's 400 feeds took about 35 s of the quick run).
        "p2_n": 50,
        # Quick: 500 orders scanned (ingesting 1,000 took 15-40 s of each layout's P4).
        "p4_orders": 500,
        "p4_cases": 12,
        "p4_engine_orders": 160,
        "p4_engine_cases": 40,
        "p1_burst_cases": 5,
        "p1_decisions": {"resident": 3, "runner_poll_1s": 2, "runner_poll_10s": 2},
        "p1_gap_s": 2.0,
        # Quick: 2,000 waiting (the full run's 10,000 took two of the quick run's minutes).
        "p3_cases": 2_000,
        "p3_runs": 2_000,
        "p3_api_runs": 100,
        "p3_watch_s": 4,  # two of the runner's polls
        "flows_n": 3,
        "worker_limit": int(os.environ.get("BENCH_WORKER_LIMIT", "4")),
        "emulator_time_scale": 10.0,
    }
    if QUICK
    else {
        "p2_n": 200,
        "p4_orders": 1000,
        "p4_cases": 96,
        "p4_engine_orders": 2000,
        # 360 end waiting: P1 decides 72 of them. About three minutes at 10,000 an hour; the
        # resident runner's memory is sampled over them.
        "p4_engine_cases": 480,
        "p1_burst_cases": 24,
        "p1_decisions": {"resident": 50, "runner_poll_1s": 11, "runner_poll_10s": 11},
        # One decision every 5 s (720 an hour) keeps the runner below saturation: at one every
        # 2 s a runner at the 10 s poll with 4 slots queues them (p50 68 s, p95 98 s measured).
        "p1_gap_s": 5.0,
        "p3_cases": 10_000,
        "p3_runs": 10_000,
        "p3_api_runs": 300,
        "p3_watch_s": 10,  # the runner's processes, watched over five of its polls
        "flows_n": 5,
        "worker_limit": int(os.environ.get("BENCH_WORKER_LIMIT", "4")),
        "emulator_time_scale": 10.0,
    }
)
P1_POLLS = [10, 1]  # the process-per-run runner: Prefect's default poll, and lowered
RSS_PROJECTED_CASES = 10_000  # P3: the resident runner's memory after this many cases
GET_ORDER_RATE_PER_S = history.quotas()["getOrder"]["rate_per_s"]  # Amazon's usage plan


def at_quotas_and_flow_overhead(stack: Any, results: dict[str, Any]) -> None:
    """P4 at Amazon's quotas on the default layout, then the sync vs async flow cost."""
    import flow_overhead
    import p4_throughput

    results["p4_sqlite"] = p4_throughput.run(
        "SQLite, one runner",
        emulator=stack.emulator,
        store=stack.store,
        prefect=stack.settings,
        total=SIZES["p4_orders"],
        requests=SIZES["p4_cases"],
        prefix=111,
        timeout=2400,
    )
    results["flows"] = flow_overhead.run(stack, SIZES["flows_n"])


def default_layout(stack: Any, results: dict[str, Any], engine_only: bool = False) -> None:
    """The default layout's parts, on `stack` (a SingleStack begun); `engine_only`: P4 engine
    capacity (with its CPU per case, the server's catch-up and the runner's memory) and
    nothing else, for comparing two codes back to back in a few minutes."""
    import p1_burst
    import p1_decision
    import p3_many_cases
    import p4_throughput
    from common import RssSampler, cpu_s, start_emulator

    children = stack.children
    stack.wait_up()
    assert stack.emulator is not None
    stack.start_runner()  # the resident executor, as `henpin up` runs it
    if not engine_only:
        at_quotas_and_flow_overhead(stack, results)
    # From here on the runner talks to an emulator whose usage plans are lifted: engine capacity.
    stack.emulator = start_emulator(
        children, "emulator-lifted", SIZES["emulator_time_scale"], usage_plans="lifted"
    )
    pid = stack.start_runner()
    busy = {n: children.procs[n].pid for n in ("runner", "prefect", "emulator-lifted")}
    speed = common.machine_speed()  # the machine right before, as engine runs are compared
    cpu_before = {n: cpu_s(p) for n, p in busy.items()}
    with RssSampler(pid) as rss:
        results["p4_engine"] = p4_throughput.run(
            "engine capacity, SQLite, one resident runner, quotas lifted",
            emulator=stack.emulator,
            store=stack.store,
            prefect=stack.settings,
            total=SIZES["p4_engine_orders"],
            requests=SIZES["p4_engine_cases"],
            prefix=333,
            timeout=2400,
        )
    results["p4_engine"]["runner_restarted"] = children.procs["runner"].pid != pid
    results["p4_engine"]["machine_speed_before"] = speed
    # CPU seconds per case of each process (the runner, Prefect's server, the emulator): what
    # a case costs the machine, for planning cores (docs/scaling.md).
    results["p4_engine"]["cpu_s_per_case"] = {
        n: round((cpu_s(p) - cpu_before[n]) / results["p4_engine"]["cases"], 3)
        for n, p in busy.items()
    }
    # What the server still had to write once the cases were ready, and the CPU it took.
    results["p4_engine"]["server_catch_up"] = attempt(
        "Prefect server catch-up",
        lambda: p4_throughput.server_catch_up(
            stack.settings, server_pid=busy["prefect"], server_log=children.logs / "prefect.log"
        ),
    )
    results["resident_rss"] = rss_summary(rss, results["p4_engine"])
    log(f"resident runner memory: {results['resident_rss']}")
    if engine_only:
        log(f"P4 engine CPU seconds per case: {results['p4_engine']['cpu_s_per_case']}")
        return
    emulator = stack.emulator
    # A part that fails is recorded as such (`error`) and the benchmark goes on with the next.
    results["p1_burst"] = attempt(
        "P1 burst",
        lambda: p1_burst.run(stack, emulator, cases=SIZES["p1_burst_cases"], prefix=444),
    )
    results["p1"] = attempt(
        "P1",
        lambda: p1_decision.run(
            stack, decisions=SIZES["p1_decisions"], gap_s=SIZES["p1_gap_s"], order_prefix="333-"
        ),
    )
    results["p3"] = attempt(
        "P3",
        lambda: p3_many_cases.run(
            stack,
            cases=SIZES["p3_cases"],
            runs=SIZES["p3_runs"],
            api_runs=SIZES["p3_api_runs"],
            watch_s=SIZES["p3_watch_s"],
            postgres=postgres_reachable(),
        ),
    )
    for name in ("runner", "emulator", "emulator-lifted", "prefect"):
        children.stop(name)


def attempt(name: str, part: Any) -> dict[str, Any]:
    """`part()`'s results, or {"error": ...} when it raised (logged)."""
    try:
        result: dict[str, Any] = part()
        return result
    except Exception as exc:
        log(f"{name} failed: {exc!r}")
        return {"error": repr(exc)}


def rss_summary(rss: Any, engine: dict[str, Any]) -> dict[str, Any]:
    """The resident runner's memory over P4 engine capacity: at the start, when half the cases
    were ready, at the end; the second half's growth, and a straight-line projection of it to
    RSS_PROJECTED_CASES cases (P4 engine puts fewer through it than that)."""
    cases = engine["cases"]
    start = rss.at(engine["started_at_epoch"]) or (rss.samples[0][1] if rss.samples else None)
    half = rss.at(engine["half_ready_at_epoch"])
    end = rss.at(engine["ready_at_epoch"])
    growth = round(end - half, 1) if end is not None and half is not None else None
    per_case = growth / (cases / 2) if growth is not None and cases else None
    return {
        "cases": cases,
        "start_mb": start,
        "half_mb": half,
        "end_mb": end,
        "peak_mb": max((mb for _, mb in rss.samples), default=None),
        "growth_second_half_mb": growth,
        # None below 100 cases: a quick run's 20 are still in the process's warm-up (imports,
        # caches), and a straight line from them says nothing about 10,000.
        f"projected_{RSS_PROJECTED_CASES}_cases_mb": (
            round(end + max(per_case, 0.0) * (RSS_PROJECTED_CASES - cases), 1)
            if end is not None and per_case is not None and 100 <= cases < RSS_PROJECTED_CASES
            else (end if cases >= RSS_PROJECTED_CASES else None)
        ),
        "samples": [[round(t - engine["started_at_epoch"], 1), mb] for t, mb in rss.samples],
    }


def scaled_layout(children: Children, results: dict[str, Any]) -> None:
    tag = uuid.uuid4().hex[:8]
    os.environ.update(
        {
            "HENPIN_EMULATOR_TIME_SCALE": f"{SIZES['emulator_time_scale']:g}",
            "HENPIN_OUTBOX_INTERVAL_S": "2",
            "HENPIN_POLL_INTERVAL_S": "3600",
        }
    )
    # A quick run starts the layout once, its workers at the default limit, and lifts the
    # usage plans by starting its emulator again (a full run starts a second stack for that).
    options = {} if QUICK else {"worker_limit": SIZES["worker_limit"]}
    try:
        with scaled_stack(f"{tag}", **options) as (stack, store):
            assert stack.urls["emulator"]
            results["p4_pg"] = p4_on_scaled(
                stack, store, "PostgreSQL, two workers", SIZES["p4_orders"], SIZES["p4_cases"], 222
            )
            results["p4_pg"]["redis"] = bool(stack.redis_url)
            results["p4_pg"]["rss_mb"] = {
                name: common.rss_mb(proc.pid)
                for name, proc in stack.procs.items()
                if proc.poll() is None
            }
            if QUICK:
                results["p4_engine_pg"] = attempt(
                    "P4 engine capacity, scaled layout",
                    lambda: scaled_engine_on(lift_usage_plans(stack), store),
                )
        if not QUICK:
            # The same layout with one worker right before and right after the two: what the
            # second worker adds on this machine, in one run (the issue's "no slower than
            # one"). In runs of one then the other, the first ran faster whichever it was
            # (2026-12-07): the machine drifts within minutes, and the mean of the runs on
            # either side of the two-worker run cancels a steady drift.
            results["p4_engine_pg_one_worker_before"] = attempt(
                "P4 engine capacity, scaled layout, one worker, before the two",
                lambda: scaled_engine(f"{tag}b", workers=1),
            )
            results["p4_engine_pg"] = attempt(
                "P4 engine capacity, scaled layout", lambda: scaled_engine(tag)
            )
            results["p4_engine_pg_one_worker"] = attempt(
                "P4 engine capacity, scaled layout, one worker",
                lambda: scaled_engine(tag, workers=1),
            )
    finally:
        for name in ("HENPIN_EMULATOR_TIME_SCALE", "HENPIN_OUTBOX_INTERVAL_S"):
            os.environ.pop(name, None)


def p4_on_scaled(
    stack: Any, store: str, label: str, orders: int, cases: int, prefix: int
) -> dict[str, Any]:
    """One P4 ingestion run on a scaled stack (`orders` orders, `cases` with a cancel request)."""
    import p4_throughput
    from common import Emulator

    return p4_throughput.run(
        label,
        emulator=Emulator(str(stack.urls["emulator"])),
        store=store,
        prefect=stack.prefect_settings,
        total=orders,
        requests=cases,
        prefix=prefix,
        timeout=2400,
    )


def lift_usage_plans(stack: Any) -> Any:
    """`stack` (a scaled stack) with its emulator started again, usage plans lifted, on the same
    socket and with the state it keeps in its file: the workers find it where it was."""
    import dataclasses

    from common import Emulator, check_usage_plans

    supervisor = stack.supervisor
    part = supervisor.parts["emulator"]
    supervisor.stop_part("emulator", forget=False)
    supervisor.start(dataclasses.replace(part, command=[*part.command, "--usage-plans", "lifted"]))
    stack.emulator_usage_plans = "lifted"
    check_usage_plans(Emulator(str(stack.urls["emulator"])), "of the scaled layout", "lifted")
    return stack


def scaled_engine(tag: str, workers: int = 2) -> dict[str, Any]:
    """Engine capacity on PostgreSQL: the scaled layout again with `workers` workers, its
    emulator's usage plans lifted, each worker with the resident executor's default limit (as
    the default layout's runner)."""
    with scaled_stack(f"{tag}_e{workers}", usage_plans="lifted", workers=workers) as (
        stack,
        store,
    ):
        return scaled_engine_on(stack, store, workers)


def scaled_engine_on(stack: Any, store: str, workers: int = 2) -> dict[str, Any]:
    """P4 engine capacity on a scaled stack whose emulator's usage plans are lifted."""
    import p4_throughput
    from common import cpu_s, service_pids

    assert stack.urls["emulator"]
    # Every process of the layout, and the PostgreSQL and Redis servers it shares with
    # nothing else while the benchmark runs: where a case's CPU goes (docs/scaling.md).
    busy = {name: proc.pid for name, proc in stack.procs.items() if proc.poll() is None}
    busy |= {
        {"postgres": "postgresql"}.get(name, name): pid
        for name, pid in service_pids("postgres", "redis-server").items()
    }
    speed = common.machine_speed()
    cpu_before = {n: cpu_s(p) for n, p in busy.items()}
    result = p4_on_scaled(
        stack,
        store,
        f"engine capacity, PostgreSQL, {'two' if workers == 2 else workers} resident "
        f"worker{'s' if workers != 1 else ''}, quotas lifted",
        SIZES["p4_engine_orders"],
        SIZES["p4_engine_cases"],
        223,
    )
    result["machine_speed_before"] = speed
    result["cpu_s_per_case"] = {
        n: round((cpu_s(p) - cpu_before[n]) / result["cases"], 3) for n, p in busy.items()
    }
    result["server_catch_up"] = attempt(
        "Prefect server catch-up, scaled layout",
        lambda: p4_throughput.server_catch_up(
            stack.prefect_settings,
            server_pid=busy["prefect"],
            server_log=stack.home / "logs" / "prefect.log",
        ),
    )
    return result


@contextlib.contextmanager
def scaled_stack(
    tag: str, *, usage_plans: str = "amazon", workers: int = 2, **options: Any
) -> Iterator[Any]:
    """What `henpin.scale` starts (two workers unless told, Prefect on PostgreSQL + Redis when it
    answers), on databases of its own dropped at the end: (the stack, the case store's URL)."""
    from common import PG_SERVER, forget_redis, free_redis_url, with_database

    from henpin.scale import drop_postgres_database, start_scaled_stack

    store = with_database(PG_SERVER, f"henpin_bench_{tag}")
    prefect_db = with_database(PG_SERVER, f"henpin_bench_{tag}_p", scheme="postgresql+asyncpg")
    redis_url = free_redis_url()
    log(
        f"scaled layout: starting {workers} worker(s) (Redis: {redis_url or 'none'}; "
        f"usage plans {usage_plans})"
    )
    stack = start_scaled_stack(
        WORK / f"scaled-{tag}",
        workers=workers,
        database_url=store,
        redis_url=redis_url,
        prefect_database_url=prefect_db,
        demo_data=False,
        inbox=False,
        emulator_usage_plans=usage_plans,
        **options,
    )
    try:
        yield stack, store
    finally:
        stack.stop()
        drop_postgres_database(store)
        drop_postgres_database(prefect_db)
        forget_redis(redis_url)


def summary(r: dict[str, Any]) -> dict[str, Any]:
    p1, p2, p3 = r.get("p1", {}), r.get("p2", {}), r.get("p3", {})
    burst, engine, rss = r.get("p1_burst", {}), r.get("p4_engine", {}), r.get("resident_rss", {})
    low = p1.get(f"runner_poll_{P1_POLLS[-1]}s", {})
    default = p1.get(f"runner_poll_{P1_POLLS[0]}s", {})
    scanned = r.get("p4_sqlite", {}).get("orders_scanned") or 0
    searches = r.get("p4_sqlite", {}).get("search_orders_calls")
    return {
        "p1_p50_s": low.get("p50_s"),
        "p1_p95_s": low.get("p95_s"),
        "p1_poll_s": P1_POLLS[-1],
        "p1_default_poll_p50_s": default.get("p50_s"),
        "p1_default_poll_p95_s": default.get("p95_s"),
        # The resident executor (`henpin runner` as `henpin up` runs it); the figures above are
        # the former process-per-run runner (`henpin runner --process-per-run`).
        "p1_resident_p50_s": p1.get("resident", {}).get("p50_s"),
        "p1_resident_p95_s": p1.get("resident", {}).get("p95_s"),
        "p1_resident_decisions": p1.get("resident", {}).get("decisions"),
        # A finished feed waking many cases at once: its result recorded → each case closed
        # (since 2026-12-06 in the same transaction), and → each case's run finished.
        "p1_burst_p50_s": burst.get("p50_s"),
        "p1_burst_p95_s": burst.get("p95_s"),
        "p1_burst_cases": burst.get("cases"),
        "p1_burst_run_p50_s": burst.get("run_p50_s"),
        "p1_burst_run_p95_s": burst.get("run_p95_s"),
        "p2_feed_calls": p2.get("batch", {}).get("create_feed_calls"),
        "p2_batch_time_s": p2.get("batch", {}).get("time_s"),
        "p2_quota_bound_s": p2.get("quota_bound_s"),
        "p2_baseline_feed_calls": p2.get("baseline", {}).get("create_feed_calls"),
        "p2_baseline_time_s": p2.get("baseline", {}).get("time_s"),
        "p2_baseline_quota_bound_s": p2.get("baseline_quota_bound_s"),
        "p2_429s": (p2.get("batch", {}).get("throttled_429") or 0)
        + (p2.get("baseline", {}).get("throttled_429") or 0),
        "p3_waiting_cases": p3.get("waiting_cases"),
        "p3_processes_per_case": p3.get("processes_per_case"),
        "p3_list_s": p3.get("list_s"),
        "p3_list_proposed_s": p3.get("list_proposed_s"),
        "p3_inbox_page_s": p3.get("inbox_page_s"),
        # The resident runner's memory over P4 engine capacity (`p3_resident_rss_cases` cases
        # through it), and a straight-line projection of its second half to 10,000 cases.
        "p3_resident_rss_mb": rss.get("end_mb"),
        "p3_resident_rss_growth_second_half_mb": rss.get("growth_second_half_mb"),
        "p3_resident_rss_cases": rss.get("cases"),
        "p3_resident_rss_10000_cases_projected_mb": rss.get(
            f"projected_{RSS_PROJECTED_CASES}_cases_mb"
        ),
        "p4_cases_per_hour_sqlite": r.get("p4_sqlite", {}).get("cases_per_hour"),
        "p4_cases_per_hour_pg": r.get("p4_pg", {}).get("cases_per_hour"),
        "p4_cases_per_hour_10_90_sqlite": r.get("p4_sqlite", {}).get("cases_per_hour_10_90"),
        "p4_cases_per_hour_10_90_pg": r.get("p4_pg", {}).get("cases_per_hour_10_90"),
        # Engine capacity: emulator usage plans lifted; default layout (one resident runner).
        "p4_engine_cases_per_hour": engine.get("cases_per_hour"),
        "p4_engine_cases_per_hour_10_90": engine.get("cases_per_hour_10_90"),
        "p4_engine_cases_per_hour_pg": r.get("p4_engine_pg", {}).get("cases_per_hour"),
        # The scaled layout with one worker, right before and right after the two (full runs
        # only): the mean of the two (only the run after, in runs before 2026-12-07 15:30).
        "p4_engine_cases_per_hour_pg_one_worker": one_worker(r),
        # Two workers' pace over one's (that mean): ≥ 1.0 is "no slower than one".
        "p4_engine_pg_two_to_one_worker": two_to_one(r),
        "p4_engine_getorder_calls_per_case": engine.get("get_order_per_case"),
        # Seconds Prefect's server went on writing task runs and events after the engine's
        # cases were ready (None: still writing after 300 s).
        "p4_engine_server_caught_up_s": engine.get("server_catch_up", {}).get("caught_up_s"),
        "p4_engine_server_caught_up_s_pg": (
            r.get("p4_engine_pg", {}).get("server_catch_up", {}).get("caught_up_s")
        ),
        # The same engine runs counted until the server had also written every task run and
        # event (elapsed + caught_up_s): a server that defers its writes does not score higher.
        "p4_engine_cases_per_hour_all_recorded": all_recorded(engine),
        "p4_engine_cases_per_hour_all_recorded_pg": all_recorded(r.get("p4_engine_pg", {})),
        # Events the server's in-memory messaging dropped for a consumer too far behind.
        "p4_engine_server_events_dropped": (
            engine.get("server_catch_up", {}).get("event_deliveries_dropped")
        ),
        "ingest_calls_per_1000_orders": (
            round(searches * 1000 / scanned, 1) if scanned and searches is not None else None
        ),
        # getOrder calls per case (P4, SQLite run): only the safety read right before a
        # cancellation is queued; a case starts from the order ingestion read.
        "p4_getorder_calls_per_case": r.get("p4_sqlite", {}).get("get_order_per_case"),
        "p4_getorder_calls_per_case_pg": r.get("p4_pg", {}).get("get_order_per_case"),
        "p4_getorder_ceiling_cases_per_hour": getorder_ceiling(
            r.get("p4_sqlite", {}).get("get_order_per_case")
        ),
    }


def one_worker(r: dict[str, Any]) -> int | None:
    """Engine cases an hour of the scaled layout with one worker: the mean of its runs right
    before and right after the two-worker run (either alone when the other failed)."""
    paces = [
        r.get(k, {}).get("cases_per_hour")
        for k in ("p4_engine_pg_one_worker_before", "p4_engine_pg_one_worker")
    ]
    known = [p for p in paces if p]
    return round(sum(known) / len(known)) if known else None


def two_to_one(r: dict[str, Any]) -> float | None:
    two, one = r.get("p4_engine_pg", {}).get("cases_per_hour"), one_worker(r)
    return round(two / one, 3) if two and one else None


def all_recorded(engine: dict[str, Any]) -> int | None:
    """An engine run's cases an hour from the start of ingestion until Prefect's server had
    written every task run and event too (None: no such run, or the server never caught up)."""
    caught_up = engine.get("server_catch_up", {}).get("caught_up_s")
    if not engine.get("cases") or caught_up is None:
        return None
    return round(engine["cases"] * 3600 / (engine["elapsed_s"] + caught_up))


def getorder_ceiling(per_case: float | None) -> int | None:
    """Cases an hour Amazon's getOrder usage plan allows at `per_case` calls each (None: no
    getOrder at all, no ceiling from it)."""
    if per_case is None or per_case <= 0:
        return None
    return round(GET_ORDER_RATE_PER_S * 3600 / per_case)


def table(s: dict[str, Any], r: dict[str, Any]) -> str:
    p2, p3 = r.get("p2", {}), r.get("p3", {})
    f = r.get("flows", {})
    ratio = (
        f"{s['p2_batch_time_s'] / s['p2_quota_bound_s']:.2f}x bound"
        if s.get("p2_batch_time_s") and s.get("p2_quota_bound_s")
        else ""
    )
    speedup = (
        f"{s['p2_baseline_time_s'] / s['p2_batch_time_s']:.0f}x faster"
        if s.get("p2_baseline_time_s") and s.get("p2_batch_time_s")
        else ""
    )
    rows = [
        (
            f"P1 decision → action stored, resident executor ({s['p1_resident_decisions']})",
            f"p50 {s['p1_resident_p50_s']} s, p95 {s['p1_resident_p95_s']} s",
            "p95 ≤ 1 s",
        ),
        (
            f"P1 burst: feed result → case closed ({s['p1_burst_cases']} cases woken)",
            f"p50 {s['p1_burst_p50_s']} s, p95 {s['p1_burst_p95_s']} s "
            f"({r.get('p1_burst', {}).get('feeds')} feeds; CPU s per case "
            f"{r.get('p1_burst', {}).get('cpu_s_per_case')})",
            "p95 ≤ 1 s",
        ),
        (
            "P1 burst: feed result → each case's run finished in Prefect",
            f"p50 {s['p1_burst_run_p50_s']} s, p95 {s['p1_burst_run_p95_s']} s",
            "",
        ),
        (
            f"P1 same, process-per-run runner, poll {P1_POLLS[-1]} s",
            f"p50 {s['p1_p50_s']} s, p95 {s['p1_p95_s']} s",
            "",
        ),
        (
            f"P1 same, process-per-run runner, poll {P1_POLLS[0]} s (Prefect default)",
            f"p50 {s['p1_default_poll_p50_s']} s, p95 {s['p1_default_poll_p95_s']} s",
            "",
        ),
        (
            f"P2 createFeed calls, {p2.get('n_per_type')} cancels + {p2.get('n_per_type')} refunds",
            f"{s['p2_feed_calls']} (baseline {s['p2_baseline_feed_calls']})",
            f"= {p2.get('expected_feed_calls')}",
        ),
        (
            "P2 simulated time to all results",
            f"{s['p2_batch_time_s']} s ({ratio}; bound {s['p2_quota_bound_s']} s)",
            "≤ 1.1x bound",
        ),
        (
            "P2 baseline (one feed per action)",
            f"{s['p2_baseline_time_s']} s ({speedup}; its bound "
            f"{s['p2_baseline_quota_bound_s']} s)",
            "≥ 20x",
        ),
        ("P2 429s from Amazon", f"{s['p2_429s']}", "0"),
        (
            f"P3 processes held per waiting case ({s['p3_waiting_cases']} waiting)",
            f"{s['p3_processes_per_case']}",
            "0",
        ),
        (
            "P3 waiting list: henpin cases list / inbox page query",
            f"{s['p3_list_s']} s ({p3.get('list_rows')} rows) / {s['p3_list_proposed_s']} s",
            "≤ 1 s",
        ),
        (
            "P3 inbox page (AppTest rerun, signed in)",
            f"{s['p3_inbox_page_s']} s ({p3.get('inbox_rows_rendered')} rows)",
            "≤ 1 s",
        ),
        ("P3 memory (RSS MB)", ", ".join(f"{k} {v}" for k, v in p3.get("rss_mb", {}).items()), ""),
        (
            f"P3 resident runner RSS after {s['p3_resident_rss_cases']} cases (2nd-half growth; "
            "projected to 10,000)",
            f"{s['p3_resident_rss_mb']} MB ({s['p3_resident_rss_growth_second_half_mb']} MB; "
            f"{s['p3_resident_rss_10000_cases_projected_mb']} MB)",
            "no growth",
        ),
        (
            "P4 cases/hour, SQLite + one runner (all; 10-90 % pace)",
            f"{s['p4_cases_per_hour_sqlite']}; {s['p4_cases_per_hour_10_90_sqlite']}",
            "",
        ),
        (
            "P4 cases/hour, PostgreSQL + two workers (all; 10-90 % pace)",
            f"{s['p4_cases_per_hour_pg']}; {s['p4_cases_per_hour_10_90_pg']}",
            "",
        ),
        (
            "P4 engine cases/hour, quotas lifted, SQLite + one resident runner (all; 10-90 %)",
            f"{s['p4_engine_cases_per_hour']}; {s['p4_engine_cases_per_hour_10_90']} "
            f"({r.get('p4_engine', {}).get('cases')} cases; getOrder/case "
            f"{s['p4_engine_getorder_calls_per_case']})",
            "≥ 10,000",
        ),
        (
            "P4 engine cases/hour, quotas lifted, PostgreSQL + two workers",
            f"{s['p4_engine_cases_per_hour_pg']}",
            "≥ 10,000",
        ),
        (
            "P4 engine, same layout, one worker before and after the two (mean); two ÷ one",
            f"{r.get('p4_engine_pg_one_worker_before', {}).get('cases_per_hour')}, "
            f"{r.get('p4_engine_pg_one_worker', {}).get('cases_per_hour')} "
            f"({s['p4_engine_cases_per_hour_pg_one_worker']}); "
            f"{s['p4_engine_pg_two_to_one_worker']}",
            "two ÷ one ≥ 1.0",
        ),
        (
            "P4 engine runs: the machine right before each, python_s "
            "(SQLite; one worker; two; one worker)",
            "; ".join(
                str(r.get(k, {}).get("machine_speed_before", {}).get("python_s"))
                for k in (
                    "p4_engine",
                    "p4_engine_pg_one_worker_before",
                    "p4_engine_pg",
                    "p4_engine_pg_one_worker",
                )
            ),
            "alike",
        ),
        (
            "P4 engine cases/hour until the server had written every task run and event too "
            "(SQLite; PostgreSQL)",
            f"{s['p4_engine_cases_per_hour_all_recorded']}; "
            f"{s['p4_engine_cases_per_hour_all_recorded_pg']}",
            "",
        ),
        (
            "P4 engine: Prefect server still writing task runs and events after the cases were "
            "ready, s (SQLite; PostgreSQL)",
            f"{s['p4_engine_server_caught_up_s']}; {s['p4_engine_server_caught_up_s_pg']} "
            f"(SQLite: {s['p4_engine_server_events_dropped']} event deliveries dropped)",
            "0 dropped",
        ),
        (
            f"P4 getOrder calls per case (PostgreSQL: {s['p4_getorder_calls_per_case_pg']}); "
            "ceiling at Amazon's quota",
            f"{s['p4_getorder_calls_per_case']}; "
            f"{s['p4_getorder_ceiling_cases_per_hour'] or 'none'} cases/hour "
            f"(getOrder {GET_ORDER_RATE_PER_S:g}/s)",
            "≤ 1.0",
        ),
        (
            "Ingestion SP-API calls per 1,000 orders",
            f"{s['ingest_calls_per_1000_orders']}",
            "paged",
        ),
        (
            "Flow run in-process, sync / async (case flow)",
            f"{f.get('case_flow_sync_s')} s / {f.get('case_flow_async_s')} s",
            "",
        ),
        (
            "Flow run in-process, sync / async (3 tasks)",
            f"{f.get('three_tasks_sync_s')} s / {f.get('three_tasks_async_s')} s",
            "",
        ),
    ]
    width = max(len(a) for a, _, _ in rows)
    vwidth = max(len(b) for _, b, _ in rows)
    lines = [f"{'figure':<{width}}  {'measured':<{vwidth}}  target", "-" * (width + vwidth + 12)]
    lines += [f"{a:<{width}}  {b:<{vwidth}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    import p2_outbox

    started = time.monotonic()
    started_at = datetime.now(UTC)
    results: dict[str, Any] = {
        "mode": "quick" if QUICK else "full",
        "sizes": SIZES,
        "machine": common.machine(),
    }
    log(f"Henpin benchmark ({results['mode']}); work folder {WORK}")
    children = Children(WORK / "logs")
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))  # p2,default,scaled
    try:
        if "memory" in only:  # never in a full run: 10,000 cases take about an hour
            import resident_memory

            cases = int(os.environ.get("BENCH_MEMORY_CASES", "10000"))
            memory = history.RESULTS / "memory" / f"{started_at:%Y-%m-%d-%H%M%S}.json"
            memory.parent.mkdir(parents=True, exist_ok=True)

            def keep(so_far: dict[str, Any]) -> None:
                results["resident_memory"] = so_far
                common.dump(memory, {"started_at": started_at.isoformat(), **results})

            keep(resident_memory.run(children, WORK, cases=cases, progress=keep))
            log(f"resident memory: {results['resident_memory']}; wrote {memory}")
        stack = None
        if not only or only & {"default", "engine"}:
            from single import SingleStack

            stack = SingleStack(
                home=WORK / "single", children=children, time_scale=SIZES["emulator_time_scale"]
            )
            # Prefect's server starts while P2 runs: P2 needs no Prefect, and its figures are
            # in the emulator's simulated time, which the machine's load does not change.
            stack.begin()
        if not only or "p2" in only:
            results["p2"] = p2_outbox.run(children, SIZES["p2_n"])
        if stack is not None:
            default_layout(stack, results, engine_only=bool(only) and "default" not in only)
        if only and "scaled" not in only:
            pass
        elif postgres_reachable():
            scaled_layout(children, results)
        else:
            log("PostgreSQL unreachable: P4 on the scaled layout skipped")
    finally:
        children.stop_all()
    results["elapsed_s"] = round(time.monotonic() - started)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"]["speed_at_end"] = common.machine_speed()
    out = {
        **summary(results),
        "mode": results["mode"],
        "started_at": started_at.isoformat(),
        "machine": results["machine"],
        "load": {"sizes": SIZES, "quotas": history.quotas(), "only": sorted(only) or None},
        "details": results,
    }
    previous = history.last_committed()
    common.dump(BENCH / "results.json", out)
    written = [BENCH / "results.json"]
    if not QUICK and not only:  # a quick or partial run is not comparable: no dated file
        history.RESULTS.mkdir(exist_ok=True)
        dated = history.result_path(started_at)
        common.dump(dated, out)
        written.append(dated)
    print()
    print(table(out, results))
    print()
    print(history.beside(out, previous, label=results["mode"]))
    print(f"\nmachine: {results['machine']}")
    names = " and ".join(str(p.relative_to(ROOT)) for p in written)
    print(f"wrote {names} in {results['elapsed_s']} s; logs in {WORK / 'logs'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
