"""P3: 10,000 cases waiting for operators.

What is created, cheaply instead of running 10,000 flows up to their question:
- in Prefect: `api_runs` flow runs of the `cancel-request/henpin` deployment, created through the
  API directly in the state a waiting case's run has (`Suspended`, pause key `operator-decision`,
  reschedule on resume), with the parameters a real case run has; then copies of those rows
  (`flow_run` and its `flow_run_state`, new ids, names and case parameters) inserted with SQL
  into the server's SQLite database up to `runs` in all, since creating 10,000 through the API
  takes 20 minutes on this machine (the rate is reported);
- in the case store: `cases` rows in state `waiting` (question `operator-decision`, the three
  choices, a deadline spread over the next 48 h, a recommendation and an order snapshot copied
  from a real waiting case), the first `runs` of them pointing at those flow runs.
Then: processes the runner holds (its process tree), memory of each component, the inbox's list
query (`henpin.app.cases.list_cases(state="waiting")`) and the inbox page (Streamlit AppTest of
ui/inbox.py, signed in): `henpin cases list` (1,000 rows) and the inbox's page query (50 rows).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import PG_SERVER, ROOT, environment, log, process_tree, rss_mb, with_database
from single import SingleStack

PAGE = 50  # rows the inbox shows at once


def template_case(store: str) -> dict[str, Any]:
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(store) as s:
        asked = (
            c
            for c in s.scalars(select(Case).where(Case.policy_version.is_not(None)))
            if c.recommendation.get("action") == "ask_operator"
        )
        case = next(asked, None)
        assert case is not None, "P3 copies a real case that asked an operator; P4 leaves some"
        return {
            "recommendation": case.recommendation,
            "order_snapshot": case.order_snapshot,
            "policy_version": case.policy_version,
        }


async def create_suspended_runs(n: int, first_case: int) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    from henpin.policy import load_policy

    policy = load_policy(ROOT / "policies.yaml")
    params = {"policy": policy.cancel_request.model_dump(mode="json"), "policy_version": "bench"}
    async with get_client() as client:
        deployment = await client.read_deployment_by_name("cancel-request/henpin")
        gate = asyncio.Semaphore(8)

        async def one(i: int) -> str:
            order_id = order_id_of(i)
            async with gate:
                run = await client.create_flow_run_from_deployment(
                    deployment.id,
                    parameters={"case_id": first_case + i, "order_id": order_id, **params},
                    name=f"cancel-request {order_id}",
                    tags=["case:cancel-request", "marketplace:US"],
                    state=Suspended(pause_key="operator-decision"),
                )
                return str(run.id)

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def copy_suspended_runs(
    prefect_db: Path, templates: list[str], first: int, n: int, first_case: int
) -> list[str]:
    """Insert copies of the template runs (and their current state) into Prefect's SQLite
    database, for waiting cases `first` .. `first + n - 1`; returns the new run ids."""
    import sqlite3
    import uuid

    db = sqlite3.connect(prefect_db, timeout=60)
    try:
        run_cols = [r[1] for r in db.execute("PRAGMA table_info(flow_run)")]
        state_cols = [r[1] for r in db.execute("PRAGMA table_info(flow_run_state)")]
        run_expr = {
            "id": "?",
            "name": "?",
            "state_id": "?",
            "idempotency_key": "NULL",
            "parameters": "json_set(parameters, '$.case_id', ?, '$.order_id', ?)",
        }
        run_sql = (
            f"INSERT INTO flow_run ({', '.join(run_cols)}) SELECT "
            + ", ".join(run_expr.get(c, c) for c in run_cols)
            + " FROM flow_run WHERE id = ?"
        )
        state_sql = (
            f"INSERT INTO flow_run_state ({', '.join(state_cols)}) SELECT "
            + ", ".join("?" if c in ("id", "flow_run_id") else c for c in state_cols)
            + " FROM flow_run_state WHERE id = ?"
        )
        state_params = [c for c in state_cols if c in ("id", "flow_run_id")]
        template_state = {
            t: db.execute("SELECT state_id FROM flow_run WHERE id = ?", (t,)).fetchone()[0]
            for t in templates
        }
        ids: list[str] = []
        run_rows: list[tuple[object, ...]] = []
        state_rows: list[tuple[object, ...]] = []
        for i in range(first, first + n):
            template = templates[i % len(templates)]
            run_id, state_id = str(uuid.uuid4()), str(uuid.uuid4())
            params: dict[str, tuple[object, ...]] = {
                "id": (run_id,),
                "name": (f"cancel-request {order_id_of(i)}",),
                "state_id": (state_id,),
                "parameters": (first_case + i, order_id_of(i)),
            }
            row = [v for c in run_cols if c in params for v in params[c]]
            run_rows.append((*row, template))
            by_name = {"id": state_id, "flow_run_id": run_id}
            state_rows.append((*(by_name[c] for c in state_params), template_state[template]))
            ids.append(run_id)
        with db:
            db.executemany(run_sql, run_rows)
            db.executemany(state_sql, state_rows)
        return ids
    finally:
        db.close()


def order_id_of(i: int) -> str:
    return f"900-{3000000 + i // 10_000_000:07d}-{i % 10_000_000:07d}"


def insert_waiting_cases(store: str, n: int, runs: list[str], template: dict[str, Any]) -> int:
    """Bulk-insert `n` waiting cases; returns the first new case id."""
    from sqlalchemy import func, insert, select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    now = datetime.now(UTC)
    rng = random.Random(5)
    with session_scope(store) as s:
        first = int(s.scalar(select(func.max(Case.id))) or 0) + 1
    rows = []
    for i in range(n):
        order_id = order_id_of(i)
        snapshot = {**template["order_snapshot"], "order_id": order_id}
        rows.append(
            {
                "id": first + i,
                "type": "cancel-request",
                "order_id": order_id,
                "marketplace_id": "ATVPDKIKX0DER",
                "state": "waiting",
                "policy_version": template["policy_version"],
                "flow_run_id": runs[i] if i < len(runs) else None,
                "waiting_step": "operator-decision",
                "choices": ["cancel", "keep_order", "escalate"],
                "deadline": now + timedelta(minutes=rng.uniform(10, 48 * 60)),
                "timeout_choice": "cancel",
                "recommendation": template["recommendation"],
                "order_snapshot": snapshot,
                "details": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    with session_scope(store) as s:
        for start in range(0, n, 1000):
            s.execute(insert(Case), rows[start : start + 1000])
    return first


def proposed_list_waiting(store: str, limit: int = PAGE) -> list[Any]:
    """The inbox's own page query (henpin.app.cases.find_cases): waiting cases, soonest
    deadline first, ordered and cut in SQL."""
    from henpin.app.cases import CaseFilter, find_cases

    return find_cases(store, CaseFilter(states=("waiting",)), limit=limit).cases


def timed(fn: Any, repeat: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def soonest_is_listed(store: str) -> bool:
    """Whether the current list_cases shows the case with the soonest deadline at all."""
    from henpin.app.cases import list_cases

    soonest = proposed_list_waiting(store, limit=1)[0].id
    return any(c.id == soonest for c in list_cases(store, state="waiting"))


def inbox_page_s(home: Path, store: str) -> tuple[float, int]:
    """Sign in with AppTest, then time one rerun of the inbox page; returns (s, rows shown)."""
    from streamlit.testing.v1 import AppTest

    from henpin.accounts import add_operator

    add_operator(store, "bench", "bench-password-123", role="operator")
    with environment(HENPIN_HOME=str(home.resolve()), HENPIN_DATABASE_URL=None):
        at = AppTest.from_file(str(ROOT / "ui" / "inbox.py"), default_timeout=600).run()
        at.text_input(key="login.name").input("bench")
        at.text_input(key="login.password").input("bench-password-123")
        at.button(key="login.submit").click().run()
        started = time.perf_counter()
        at.button(key="inbox.refresh").click().run()
        elapsed = time.perf_counter() - started
        assert not at.exception, at.exception
        tables = [d for d in at.dataframe if str(d.key or "").startswith("inbox.table.")]
        rows = len(tables[0].value) if tables else 0  # the inbox's table of cases
    return elapsed, rows


def housekeeping_round_s(stack: SingleStack) -> float:
    """One housekeeping round (as the runner's thread runs it) with the waiting cases present."""
    from common import forget_process_state

    from flows.housekeeping import housekeeping_round

    with (
        environment(
            HENPIN_HOME=str(stack.home.resolve()),
            HENPIN_EMULATOR_URL=stack.emulator.url if stack.emulator else None,
            HENPIN_POLICIES=str(ROOT / "policies.yaml"),
        ),
        stack.settings(),
    ):
        forget_process_state()
        started = time.perf_counter()
        housekeeping_round()
        elapsed = time.perf_counter() - started
        forget_process_state()
    return elapsed


def decided_scan_s(store: str) -> dict[str, float]:
    """The store reads of `resume_decided_cases` each housekeeping round: one query per waiting
    case (as it was until 2026-12-04, the baseline) and the single join it uses now
    (`henpin.decisions.answered_waiting_cases`)."""
    from sqlalchemy import select

    from henpin.decisions import answered_waiting_cases, find_decision
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    def current() -> int:
        with session_scope(store) as s:
            waiting = s.execute(
                select(Case.id, Case.waiting_step, Case.flow_run_id).where(Case.state == "waiting")
            ).all()
        return sum(
            1
            for case_id, step, run in waiting
            if step and run and find_decision(store, case_id, step) is not None
        )

    def proposed() -> int:
        return len(answered_waiting_cases(store))

    return {
        "current_s": round(timed(current, repeat=3)[0], 3),
        "proposed_s": round(timed(proposed, repeat=3)[0], 3),
    }


def list_on_postgres(n: int, template: dict[str, Any]) -> dict[str, float]:
    from sqlalchemy import create_engine, text

    from henpin.app.cases import list_cases
    from henpin.scale import drop_postgres_database, ensure_postgres_database
    from henpin.store.db import engine_for, migrate

    url = with_database(PG_SERVER, f"henpin_bench_p3_{os.getpid()}")
    ensure_postgres_database(url)
    try:
        migrate(url)
        insert_waiting_cases(url, n, [], template)
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text("ANALYZE cases"))
        engine.dispose()
        current, _ = timed(lambda: list_cases(url, state="waiting"))
        proposed, _ = timed(lambda: proposed_list_waiting(url))
        engine_for(url).dispose()
    finally:
        drop_postgres_database(url)
    return {"current_s": round(current, 3), "proposed_s": round(proposed, 3)}


def quiet_runner(stack: SingleStack, timeout: float = 120) -> None:
    """Until no case is being worked on (P1's last cases closed): only waiting ones remain."""
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    def busy() -> int:
        with session_scope(stack.store) as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(Case).where(Case.state.in_(["open", "acting"]))
                )
                or 0
            )

    deadline = time.monotonic() + timeout
    while busy() and time.monotonic() < deadline:
        time.sleep(1)


def start_inbox(stack: SingleStack) -> int:
    """The Streamlit inbox as `henpin up` starts it, fetched once; returns its pid."""
    import httpx

    from henpin.supervisor import free_port, inbox_part

    port = free_port()
    pid = stack.children.start(inbox_part(port, stack.henpin_env()))
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
    page.raise_for_status()
    return pid


def page_with_rows(tmp: Path, template: dict[str, Any], rows: int) -> float:
    """The same inbox page with `rows` waiting cases: what a page of the proposed inbox costs."""
    from henpin.store.db import migrate

    home = tmp / "page"
    store = f"sqlite:///{(home / 'henpin.db').resolve()}"
    home.mkdir(parents=True, exist_ok=True)
    migrate(store)
    insert_waiting_cases(store, rows, [], template)
    return inbox_page_s(home, store)[0]


def run(
    stack: SingleStack,
    *,
    cases: int,
    runs: int,
    api_runs: int,
    postgres: bool,
    watch_s: int = 10,
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from henpin.app.cases import list_cases
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    template = template_case(stack.store)
    stack.start_runner()  # as `henpin up` runs it; it also finishes P1's last cases
    quiet_runner(stack)
    with session_scope(stack.store) as s:
        first_case = int(s.scalar(select(func.max(Case.id))) or 0) + 1
    log(f"P3: creating {api_runs} suspended runs through the API, copying them to {runs}")
    with stack.settings():
        started = time.perf_counter()
        run_ids = asyncio.run(create_suspended_runs(api_runs, first_case))
        api_s = time.perf_counter() - started
    prefect_db = stack.home / "prefect" / "prefect.db"
    run_ids += copy_suspended_runs(
        prefect_db, run_ids, len(run_ids), runs - len(run_ids), first_case
    )
    insert_waiting_cases(stack.store, cases, run_ids, template)
    waiting = len(list_cases(stack.store, state="waiting", limit=1_000_000))
    with stack.settings():
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateName,
        )

        with get_client(sync_client=True) as client:
            suspended = client.count_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Suspended"]))
                )
            )
    log(f"P3: {waiting} cases waiting; Prefect counts {suspended} suspended runs")

    inbox_pid = start_inbox(stack)
    samples = []
    for _ in range(watch_s):  # the runner polls every 2 s: watch it for `watch_s` s
        samples.append(len(process_tree(stack.pids()["runner"])) - 1)
        time.sleep(1)
    runner_processes = max(samples)
    pids = stack.pids()
    memory = {name: rss_mb(pid) for name, pid in pids.items()}
    memory["inbox"] = rss_mb(inbox_pid)
    list_s, listed = timed(lambda: list_cases(stack.store, state="waiting"))
    proposed_s, _ = timed(lambda: proposed_list_waiting(stack.store))
    page_s, rows = inbox_page_s(stack.home, stack.store)
    page_50_s = page_with_rows(stack.home.parent, template, PAGE)
    round_s = housekeeping_round_s(stack)
    scan = decided_scan_s(stack.store)
    stack.children.stop("inbox")
    result: dict[str, Any] = {
        "waiting_cases": waiting,
        "suspended_runs": suspended,
        "suspended_runs_via_api": api_runs,
        "api_create_run_s": round(api_s / api_runs, 3),
        "runner_child_processes_max": runner_processes,
        "processes_per_case": runner_processes / waiting,
        "rss_mb": memory,
        "list_s": round(list_s, 3),
        "list_rows": len(listed),
        "list_soonest_deadline_shown": soonest_is_listed(stack.store),
        "list_proposed_s": round(proposed_s, 3),
        "list_proposed_rows": PAGE,
        "inbox_page_s": round(page_s, 2),
        "inbox_rows_rendered": rows,
        "inbox_page_50_rows_s": round(page_50_s, 2),
        "housekeeping_round_s": round(round_s, 2),
        "decided_scan": scan,
    }
    if postgres:
        result["postgres"] = list_on_postgres(cases, template)
    log(f"P3: {result}")
    return result
