"""The production layout end to end: Prefect server on PostgreSQL (+ Redis), two resident workers.

Real parts, started as `henpin up --scale` starts them (henpin.scale): a Prefect server on its own
PostgreSQL database with prefect-redis messaging, the `henpin` work pool (type henpin-resident)
with two `henpin runner --no-housekeeping --no-deploy` workers (flow runs as threads of each),
the housekeeper, the SP-API emulator and a PostgreSQL case store.
Buyer cancel requests go from ingestion to closed; each case must be handled exactly once: one
flow run per case, one Amazon action per cancelled order, nothing before a wait done twice.
Prefect's API is locked (Basic auth): the workers, their runs, the housekeeper and `henpin
decide` get through with the layout's auth string, nobody else does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from henpin.lifeline import marked_processes
from tests.support import order_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHEAP = ["111-5000001-0000001", "111-5000002-0000002"]  # policy cancels them at once
HIGH = ["111-5000004-0000004", "111-5000005-0000005"]  # an operator decides


def postgres_server() -> str:
    """The test PostgreSQL (HENPIN_TEST_DATABASE_URL, else the local default), or skip."""
    from sqlalchemy import create_engine, text

    url = os.environ.get("HENPIN_TEST_DATABASE_URL") or DEFAULT_SERVER
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL is unreachable at {url} ({type(exc).__name__}): scaled layout")
    finally:
        engine.dispose()
    return url


def with_database(url: str, name: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme or parts.scheme, parts.netloc, f"/{name}", "", ""))


def free_redis_database() -> str | None:
    """An empty database of the local Redis for this stack alone, or None without Redis (or
    without prefect-redis: the layout then keeps the server's messaging in memory)."""
    import importlib.util

    import redis

    if importlib.util.find_spec("prefect_redis") is None:
        return None

    for db in range(15, 0, -1):
        try:
            client = redis.Redis(host="127.0.0.1", port=6379, db=db, socket_connect_timeout=2)
            if client.dbsize() == 0:
                client.set("henpin-test-claim", "1", ex=600)
                return f"redis://127.0.0.1:6379/{db}"
        except redis.RedisError:
            return None
    return None


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def forget_redis(url: str | None) -> None:
    if url:
        import redis

        redis.Redis.from_url(url).flushdb()


@pytest.fixture
def scaled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from henpin.scale import drop_postgres_database, start_scaled_stack

    server = postgres_server()
    tag = uuid.uuid4().hex[:8]
    case_store = with_database(server, f"henpin_scale_{tag}")
    prefect_db = with_database(server, f"henpin_scale_{tag}_p", scheme="postgresql+asyncpg")
    redis_url = free_redis_database()
    # This machine (and CI's) runs Redis: the scaled layout must use it for real.
    assert redis_url or not redis_answers(), "Redis answers on 127.0.0.1:6379 but is not used"
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", "30")  # feeds finish in 2 s, not 60
    monkeypatch.setenv("HENPIN_OUTBOX_INTERVAL_S", "1")
    monkeypatch.delenv("HENPIN_EMULATOR_URL", raising=False)
    stack = start_scaled_stack(
        tmp_path / "home",
        workers=2,
        worker_limit=2,  # four cases start at once: both workers get some
        database_url=case_store,
        redis_url=redis_url,
        prefect_database_url=prefect_db,
        demo_data=False,
        inbox=False,
    )
    try:
        yield stack
        if redis_url:  # the Prefect server kept its messaging there
            import redis

            assert redis.Redis.from_url(redis_url).dbsize() > 0
    finally:
        stack.stop()
        settled = time.monotonic() + 2  # a SIGKILLed process may take a moment to exit
        while (left := marked_processes(stack.supervisor.marker)) and time.monotonic() < settled:
            time.sleep(0.1)
        drop_postgres_database(case_store)
        drop_postgres_database(prefect_db)
        forget_redis(redis_url)
    # Nothing of the stack is left, the workers' flow runs (sessions of their own) included.
    assert left == []


def submitted_runs(logs: Path, worker: str) -> Counter[str]:
    """Flow runs a worker claimed and started, once per start (a resumed run starts again).

    A worker logs "submitting" before it asks the server for the run; when another worker
    was first, the server refuses and the worker logs "Aborted submission".
    """
    text = (logs / f"{worker}.log").read_text(errors="replace")
    tried = Counter(re.findall(rf"Worker '{worker}' submitting flow run '([0-9a-f-]+)'", text))
    lost = Counter(re.findall(r"Aborted submission of flow run '([0-9a-f-]+)'", text))
    return tried - lost


def henpin_cli(scaled: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`henpin ... --operator alice --json` as an operator's shell runs it against the stack's
    home: no Prefect settings of this test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HENPIN_"))}
    env |= {"HENPIN_HOME": str(scaled.home), "HENPIN_DATABASE_URL": scaled.database_url}
    return subprocess.run(
        [sys.executable, "-m", "henpin.cli", *args, "--operator", "alice", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cases_from_ingestion_to_closed_on_two_workers_each_handled_once(scaled: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    from henpin.accounts import add_operator
    from henpin.app.cases import list_cases, show_case
    from henpin.app.decide import decide

    # Prefect's API (and so its UI and Resume form) is locked: nobody without the auth string
    # reads runs or resumes one. The string is the home's, readable by its owner only.
    api = scaled.urls["prefect_api"]
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code == 401
    user, password = (scaled.home / "prefect-auth").read_text().strip().split(":", 1)
    wrong = httpx.post(f"{api}/flow_runs/filter", json={}, auth=(user, "guess"), timeout=10)
    assert wrong.status_code == 401
    right = httpx.post(f"{api}/flow_runs/filter", json={}, auth=(user, password), timeout=10)
    assert right.status_code == 200
    assert (scaled.home / "prefect-auth").stat().st_mode & 0o077 == 0
    assert password not in (scaled.home / "status.json").read_text()

    emulator = scaled.urls["emulator"]
    orders = [order_json(o, price="19.99") for o in CHEAP] + [
        order_json(o, price="480.00") for o in HIGH
    ]
    httpx.post(f"{emulator}/_emulator/orders", json=orders, timeout=10).raise_for_status()
    store = scaled.database_url

    with scaled.prefect_settings():
        run_deployment("ingest/henpin", timeout=0, as_subflow=False)
        waiting = wait_for(
            lambda: len(w := list_cases(store, state="waiting")) == len(HIGH) and w,
            "the high-value cases to wait for an operator",
            timeout=90.0,
            every=1.0,
        )
        choices = dict(zip(sorted(HIGH), ["cancel", "keep_order"], strict=True))
        first, second = sorted(waiting, key=lambda c: c.order_id)
        # `henpin decide` finds the locked Prefect API's auth string in the home, and resumes.
        add_operator(store, "alice", "pw-alice-123456")
        decided = henpin_cli(scaled, "decide", str(first.id), "--choice", "cancel")
        assert decided.returncode == 0, decided.stderr
        assert json.loads(decided.stdout)["resumed"] is True, decided.stderr
        result = decide(store, second.id, choice=choices[second.order_id], operator="alice")
        assert result.accepted and result.resumed

        def all_closed() -> list[Any]:
            cases = list_cases(store)
            return cases if all(c.state == "closed" for c in cases) else []

        cases = wait_for(all_closed, "every case to close", timeout=120, every=1.0)
        names = [f"cancel-request {c.order_id}" for c in cases]
        with get_client(sync_client=True) as client:
            # A case closes in its run's last step; the run's own final state follows it.
            def runs_ended() -> list[Any]:
                runs = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
                )
                return runs if all(r.state is not None and r.state.is_final() for r in runs) else []

            runs = wait_for(runs_ended, "every case's run to end", timeout=60, every=1.0)
            starts = Counter(
                str(r.id)
                for r in runs
                for s in client.read_flow_run_states(r.id)
                if s.type == StateType.RUNNING
            )
            pool_type = client.read_work_pool("henpin").type

    # The workers are resident executors: the pool is of their type, and each run was executed
    # by a worker under its name (a thread of its process), not by a process of its own.
    assert pool_type == "henpin-resident"
    assert {(r.labels or {}).get("prefect.worker.name") for r in runs} <= set(scaled.worker_names)

    # Outcomes as policy and the operator said.
    outcome = {c.order_id: c.outcome for c in cases}
    assert len(cases) == len(CHEAP) + len(HIGH)
    assert {o: outcome[o] for o in CHEAP} == dict.fromkeys(CHEAP, "cancelled-buyer-canceled")
    assert [outcome[o] for o in sorted(HIGH)] == ["cancelled-buyer-canceled", "kept-order"]

    # One flow run per case (the one the case points at), each completed.
    per_name = Counter(r.name for r in runs)
    assert per_name == Counter(names)
    assert {str(r.id) for r in runs} == {c.flow_run_id for c in cases}
    assert {r.name: r.state_type for r in runs} == dict.fromkeys(names, StateType.COMPLETED)

    # Nothing before a wait happened twice, whichever worker ran the resumed run.
    for case in cases:
        detail = show_case(store, case.id)
        assert detail is not None
        kinds = Counter(e.kind for e in detail.timeline)
        assert kinds["recommendation"] == 1 and kinds["closed"] == 1
        assert len(detail.actions) == (0 if case.outcome == "kept-order" else 1)

    # Amazon's side: each cancelled order in exactly one feed message, and cancelled.
    feeds = httpx.get(f"{emulator}/_emulator/feeds", timeout=10).json()
    messages = Counter(
        r["orderId"] for f in feeds for r in f["results"] if f["processingStatus"] == "DONE"
    )
    cancelled = [o for o, out in outcome.items() if out == "cancelled-buyer-canceled"]
    assert messages == Counter(cancelled)
    for order_id in cancelled:
        order = httpx.get(f"{emulator}/_emulator/orders/{order_id}", timeout=10).json()
        assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"

    # Each start of a case run (first run, and each run after a resume) was claimed by exactly
    # one worker, and both workers took some.
    logs = scaled.home / "logs"
    claims = {w: submitted_runs(logs, w) for w in scaled.worker_names}
    assert all(claims.values()), f"a worker ran nothing: {claims}"
    claimed = sum(claims.values(), Counter())
    assert +Counter({run: claimed[run] for run in starts}) == starts
