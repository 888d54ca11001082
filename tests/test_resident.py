"""The resident executor (henpin/resident.py) against a real Prefect server: runs execute in its
one process at once; a run that raises, hangs, leaks or is cancelled stops no other; it wakes
on Prefect's events rather than its poll; a process started again marks the runs it left
behind as Crashed.

The executor runs in a thread of the test process, on a work pool and deployment name of its
own (the case tests' deployments are not touched); its flows are this module's."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import asuspend_flow_run
from prefect.states import Cancelling

from henpin.resident import RECYCLE_EXIT, WORKER_TYPE, ResidentWorker, RunThreads
from henpin.runs import create_flow_run
from tests.support import ResidentExecutor as Executor
from tests.support import wait_for

pytestmark = pytest.mark.e2e

DEPLOYMENT = "resident-test"
SEEN: list[tuple[str, str, float]] = []  # (label, what, monotonic time) from the flows
RELEASE = threading.Event()  # lets a hung run go at the end of its test


def seen(label: str, what: str) -> None:
    SEEN.append((label, what, time.monotonic()))


@task
def block(label: str, seconds: float) -> None:
    """A blocking call, as an Amazon request is."""
    seen(label, "start")
    time.sleep(seconds)
    seen(label, "end")


@task
def hang() -> None:
    RELEASE.wait(120)


@flow(name="resident-test-sleeps")
async def sleeps(label: str, seconds: float) -> str:
    seen(label, "start")
    await asyncio.sleep(seconds)
    seen(label, "end")
    return label


@flow(name="resident-test-blocks")
async def blocks(label: str, seconds: float) -> str:
    block(label, seconds)
    return label


@flow(name="resident-test-raises")
async def raises() -> None:
    raise ValueError("a bad order")


@flow(name="resident-test-hangs")
async def hangs() -> None:
    hang()


@flow(name="resident-test-waits")
async def waits(label: str) -> str:
    seen(label, "start")
    await asuspend_flow_run(key="question-1", timeout=None)
    seen(label, "resumed")
    return label


@flow(name="resident-test-orphan")
async def orphan(label: str) -> str:
    seen(label, "start")
    return label


CLIENTS: list[Any] = []  # the Prefect client each task run of `two_tasks` was given


@task
def note_the_client(which: int) -> None:  # `which`: two calls, so no cached result
    CLIENTS.append(get_client(sync_client=True))


@flow(name="resident-test-two-tasks")
async def two_tasks() -> None:
    note_the_client(1)
    note_the_client(2)


THREADS_SEEN: list[list[str]] = []  # the process's thread names, seen from inside a task


@task(timeout_seconds=30)
def note_the_threads() -> None:
    THREADS_SEEN.append([t.name for t in threading.enumerate()])


@task(timeout_seconds=1)
def spins(seconds: float) -> None:
    """Busy in Python (not in a blocking call), so a timeout can interrupt it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@flow(name="resident-test-timeouts")
async def timeouts(spin_s: float) -> None:
    note_the_threads()
    spins(spin_s)


POOLED = (sleeps, blocks, raises, hangs, waits, two_tasks, timeouts)
FLOWS = {f.name: f for f in (*POOLED, orphan)}


def new_pool(prefix: str) -> str:
    """A new work pool of the resident executor's type, named `prefix` and a random tail."""
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"{prefix}-{uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(
                name=name,
                type=WORKER_TYPE,
                base_job_template=ResidentWorker.get_default_base_job_template(),
            )
        )
    return name


@pytest.fixture(scope="module")
def pool(prefect_server: Any) -> str:
    """A work pool of the resident executor's type with this module's flows deployed in it, and
    `orphan` deployed without a pool (as the former per-process runner served Henpin's)."""
    name = new_pool("resident-test")
    for f in POOLED:
        f.to_deployment(name=DEPLOYMENT).apply(work_pool_name=name)
    orphan.to_deployment(name=DEPLOYMENT).apply()
    return name


@pytest.fixture
def executor(pool: str) -> Iterator[Callable[..., Executor]]:
    started: list[Executor] = []
    SEEN.clear()
    RELEASE.clear()

    def start(name: str = "", **options: Any) -> Executor:
        options.setdefault("query_s", 1.0)
        one = Executor(
            FLOWS,
            name or f"resident-{uuid4().hex[:8]}",
            work_pool_name=pool,
            deployment=DEPLOYMENT,
            **options,
        )
        started.append(one)
        return one

    yield start
    RELEASE.set()
    for one in started:
        one.stop()


def start(flow_name: str, **parameters: Any) -> UUID:
    run: FlowRun = run_deployment(  # type: ignore[assignment]
        f"{flow_name}/{DEPLOYMENT}", parameters=parameters, timeout=0, as_subflow=False
    )
    return run.id


def read(run_id: UUID) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def final_state(run_id: UUID, timeout: float = 60.0) -> StateType:
    def ended() -> StateType | None:
        state = read(run_id).state
        return state.type if state is not None and state.is_final() else None

    return wait_for(ended, f"flow run {run_id} ended", timeout)  # type: ignore[no-any-return]


def span(label: str) -> tuple[float, float]:
    times = {what: t for name, what, t in SEEN if name == label}
    return times["start"], times["end"]


def test_a_run_henpin_creates_has_its_parameters_checked_once_by_its_flow(
    executor: Callable[..., Executor],
) -> None:
    """henpin/runs.py `create_flow_run` does not have the server check a run's parameters
    against the deployment's schema (Prefect's `run_deployment` does): the flow checks them
    when the run starts, and a run it refuses ends Failed, naming the parameter."""
    bad = {"label": "x", "seconds": "soon"}
    with pytest.raises(httpx.HTTPStatusError, match=r"Validation failed for field .seconds."):
        start("resident-test-sleeps", **bad)

    key = uuid4().hex
    run = create_flow_run(
        f"resident-test-sleeps/{DEPLOYMENT}",
        bad,
        name="bad seconds",
        tags=["t"],
        idempotency_key=key,
    )
    again = create_flow_run(
        f"resident-test-sleeps/{DEPLOYMENT}",
        bad,
        name="bad seconds",
        tags=["t"],
        idempotency_key=key,
    )
    assert again.id == run.id  # one run per idempotency key, as run_deployment's
    assert (run.name, run.parameters, run.state_type) == ("bad seconds", bad, StateType.SCHEDULED)
    assert "t" in run.tags

    executor(limit=1)
    assert final_state(run.id) == StateType.FAILED
    state = read(run.id).state
    assert state is not None and "seconds" in (state.message or "")
    assert not [what for label, what, _ in SEEN if label == "x"]  # the body never ran


def test_runs_go_at_once_and_one_that_raises_stops_no_other(
    executor: Callable[..., Executor],
) -> None:
    one = executor(limit=4)
    waiting, blocking, failing = (
        start("resident-test-sleeps", label="a", seconds=2.0),
        start("resident-test-blocks", label="b", seconds=2.0),
        start("resident-test-raises"),
    )

    assert final_state(failing) == StateType.FAILED
    assert "a bad order" in str(read(failing).state.message)  # type: ignore[union-attr]
    assert final_state(waiting) == StateType.COMPLETED
    assert final_state(blocking) == StateType.COMPLETED
    a, b = span("a"), span("b")
    # The blocking task held its own thread only: the other run went on meanwhile.
    assert a[0] < b[1] and b[0] < a[1], f"the runs did not overlap: a={a}, b={b}"
    wait_for(lambda: one.worker.runs_done == 3, "the executor counted three runs done")
    assert not one.worker.recycling and one.exits == []


def test_runs_one_after_another_reuse_one_thread(executor: Callable[..., Executor]) -> None:
    one = executor(limit=4)
    for done, label in enumerate(("r1", "r2", "r3"), start=1):
        assert final_state(start("resident-test-sleeps", label=label, seconds=0.0)) == (
            StateType.COMPLETED
        )
        wait_for(lambda done=done: one.worker.runs_done == done, f"run {done} counted done")
        time.sleep(0.2)  # its thread goes back to idle right after the run is counted

    assert one.worker.threads.started == 1


def test_the_sync_tasks_of_a_run_share_one_prefect_client(
    executor: Callable[..., Executor],
) -> None:
    CLIENTS.clear()
    executor()
    assert final_state(start("resident-test-two-tasks")) == StateType.COMPLETED

    first, second = CLIENTS
    assert first is second, "each task run built a Prefect client (and an SSL context) of its own"


def test_task_timeouts_are_kept_by_one_watcher_thread_and_still_fire(
    executor: Callable[..., Executor],
) -> None:
    THREADS_SEEN.clear()
    executor()

    in_time = start("resident-test-timeouts", spin_s=0.0)
    assert final_state(in_time) == StateType.COMPLETED
    (names,) = THREADS_SEEN
    assert "henpin timeout watcher" in names
    assert not [n for n in names if n.startswith("timeout-watcher")], names  # Prefect's own

    too_long = start("resident-test-timeouts", spin_s=20.0)
    assert final_state(too_long) == StateType.FAILED
    message = str(read(too_long).state.message)  # type: ignore[union-attr]
    assert "timed out" in message.lower() or "timeout" in message.lower(), message


def test_run_threads_start_one_only_when_none_is_idle_each_job_in_an_empty_context() -> None:
    threads = RunThreads("test jobs")
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen_in: list[tuple[str, int]] = []
    finished = threading.Semaphore(0)

    def job(label: str, *, sets: bool = False, raises: bool = False, hold: float = 0.0) -> None:
        try:
            seen_in.append((var.get(), threading.get_ident()))
            if sets:
                var.set(label)
            time.sleep(hold)
            if raises:
                raise RuntimeError(f"job {label} failed")
        finally:
            finished.release()

    threads.submit(lambda: job("a", sets=True, raises=True))
    assert finished.acquire(timeout=10)
    time.sleep(0.1)  # the thread goes back to idle after the job
    threads.submit(lambda: job("b"))
    assert finished.acquire(timeout=10)
    time.sleep(0.1)

    assert threads.started == 1, "a second job started a thread while one was idle"
    assert [value for value, _ in seen_in] == ["unset", "unset"], "a job saw another's context"
    assert seen_in[0][1] == seen_in[1][1], "the idle thread was not reused after a job raised"

    threads.submit(lambda: job("c", hold=0.5))
    threads.submit(lambda: job("d", hold=0.5))
    assert finished.acquire(timeout=10) and finished.acquire(timeout=10)
    assert threads.started == 2, "two jobs at once did not get two threads"


def test_a_resumed_run_is_woken_by_the_event_not_the_poll(
    executor: Callable[..., Executor],
) -> None:
    from prefect.flow_runs import resume_flow_run

    one = executor(query_s=600)  # its one poll is at its start: later runs come by events
    time.sleep(1.0)
    labelled: list[UUID] = []
    label = one.worker._give_worker_labels_to_flow_run

    async def counted(flow_run_id: UUID) -> None:
        labelled.append(flow_run_id)
        await label(flow_run_id)

    one.worker._give_worker_labels_to_flow_run = counted  # type: ignore[method-assign]
    run_id = start("resident-test-waits", label="w")
    wait_for(lambda: (s := read(run_id).state) and s.is_paused(), "the run suspended")
    wait_for(lambda: read(run_id).labels.get("prefect.worker.name") == one.worker.name, "labels")
    resume_flow_run(run_id)

    assert final_state(run_id) == StateType.COMPLETED
    assert [what for name, what, _ in SEEN if name == "w"] == ["start", "start", "resumed"]
    wait_for(lambda: one.worker.runs_done == 2, "the executor counted both runs of it")
    # Labelled when first claimed; claimed again after the resume, it carries them already.
    assert labelled == [run_id]


def test_a_run_this_process_resumes_wakes_its_executor_without_the_event(
    executor: Callable[..., Executor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingestion and housekeeping run in the runner's own process: a run they start or resume
    is claimed at once, not when Prefect's event about it comes back (here: never)."""
    from henpin import resident
    from henpin.context import current
    from henpin.runs import ResumeResult, resume_case_run

    monkeypatch.setattr(resident, "WAKE_EVENTS", ("henpin.test.never-emitted",))
    one = executor(query_s=600)  # one poll at its start, then only what wakes it
    current().when_runs_due(one.worker.wake)
    time.sleep(1.0)
    run_id = start("resident-test-waits", label="d")
    current().runs_due()  # as start_case_run says after creating a case's run
    wait_for(lambda: (s := read(run_id).state) and s.is_paused(), "the run suspended")

    assert resume_case_run(str(run_id), None) == ResumeResult.RESUMED
    assert final_state(run_id, timeout=30) == StateType.COMPLETED
    assert [what for name, what, _ in SEEN if name == "d"] == ["start", "start", "resumed"]


PEERS = "resident-peers"  # the deployment name of the tests of workers sharing a pool


@pytest.fixture
def peer_pool(prefect_server: Any) -> Iterator[str]:
    """A pool of its own, with `sleeps` deployed in it as PEERS: the workers these tests start
    or pretend (a heartbeat) online would otherwise share the module's pool with later tests.
    It is deleted at the end, with its workers."""
    name = new_pool("resident-peers")
    sleeps.to_deployment(name=PEERS).apply(work_pool_name=name)
    yield name
    with get_client(sync_client=True) as client:
        client.delete_work_pool(name)


def peer_run(label: str) -> UUID:
    run: FlowRun = run_deployment(  # type: ignore[assignment]
        f"resident-test-sleeps/{PEERS}",
        parameters={"label": label, "seconds": 0.0},
        timeout=0,
        as_subflow=False,
    )
    return run.id


@pytest.mark.parametrize("spread", [True, False], ids=["each claims its own", "all claim all"])
def test_workers_sharing_a_pool_claim_each_run_once_not_all_of_them_at_once(
    peer_pool: str, monkeypatch: pytest.MonkeyPatch, spread: bool
) -> None:
    """Every worker of a pool hears each run's Scheduled event and asks at once. Before, each
    proposed every due run Pending and the server refused all but one: a wasted call on both
    sides for every run. Now a worker with another online claims at once only the runs that
    fall to it. (`all claim all` is the former way, kept to show the test can tell.)

    Once a run has been due PEER_GRACE_S, either worker may claim it, and both may ask: on a
    busy machine (a CI run of the whole suite) an event reached its worker more than 5 s late
    and two claims were refused. That path is the next test's; here the grace is a minute, so
    only the split is seen."""
    from henpin import resident

    monkeypatch.setattr(resident, "PEER_GRACE_S", 60.0)
    refused: list[UUID] = []
    propose = ResidentWorker._propose_pending_state

    async def counted(self: ResidentWorker, flow_run: FlowRun) -> bool:
        taken = await propose(self, flow_run)
        if not taken:
            refused.append(flow_run.id)
        return taken

    monkeypatch.setattr(ResidentWorker, "_propose_pending_state", counted)
    if not spread:
        monkeypatch.setattr(ResidentWorker, "falls_to_me", lambda self, run: True)
    SEEN.clear()
    options = {"work_pool_name": peer_pool, "deployment": PEERS, "query_s": 600}
    workers = [Executor(FLOWS, f"peer-{n}", heartbeat_s=1, **options) for n in (1, 2)]
    try:
        wait_for(lambda: all(w.worker.peers for w in workers), "each counts the other online")
        refused.clear()
        runs = [peer_run(f"p{i}") for i in range(20)]
        assert all(final_state(run_id) == StateType.COMPLETED for run_id in runs)
    finally:
        for w in workers:
            w.stop()
    started = sorted(name for name, what, _ in SEEN if what == "start")
    assert started == sorted(f"p{i}" for i in range(20))  # each run once
    with get_client(sync_client=True) as client:  # stopped, each left the pool
        assert client.read_workers_for_work_pool(peer_pool) == []
    if spread:
        assert refused == []
        assert {w.worker.runs_done for w in workers} != {0}  # both took part
    else:
        assert len(refused) >= 2, "the former way showed no refused claims to tell from"


def test_a_run_that_falls_to_a_worker_that_does_not_come_is_claimed_after_the_grace(
    peer_pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker counted online that claims nothing (stuck, or gone and not yet marked offline)
    holds its share of the runs back for PEER_GRACE_S, no longer: the others claim them then
    (asking again when they saw them, or at their poll)."""
    from henpin import resident

    monkeypatch.setattr(resident, "PEER_GRACE_S", 2.0)
    with get_client(sync_client=True) as client:  # a worker Prefect counts online
        client.send_worker_heartbeat(peer_pool, "peer-ghost", heartbeat_interval_seconds=600)
    SEEN.clear()
    one = Executor(
        FLOWS, "peer-alone", work_pool_name=peer_pool, deployment=PEERS, query_s=2, heartbeat_s=1
    )
    try:
        wait_for(lambda: one.worker.peers == ["peer-ghost"], "the ghost counted online")
        created = {peer_run(f"g{i}"): time.monotonic() for i in range(8)}
        assert all(final_state(run_id, timeout=30) == StateType.COMPLETED for run_id in created)
    finally:
        one.stop()
    ghosts = {r for r in created if ["peer-alone", "peer-ghost"][r.int % 2] == "peer-ghost"}
    assert 0 < len(ghosts) < len(created), "the runs did not fall to both: the test shows nothing"
    runs = {f"g{i}": run_id for i, run_id in enumerate(created)}
    waited = {runs[n]: at - created[runs[n]] for n, what, at in SEEN if what == "start"}
    assert all(waited[r] >= 1.5 for r in ghosts), waited  # held back for the grace
    assert min(waited[r] for r in created if r not in ghosts) < min(waited[r] for r in ghosts)


def test_a_run_left_for_want_of_a_slot_starts_when_one_frees_not_at_the_poll(
    executor: Callable[..., Executor],
) -> None:
    executor(limit=1, query_s=600)  # its one poll is at its start
    time.sleep(1.0)
    first = start("resident-test-blocks", label="1", seconds=2.0)
    second = start("resident-test-blocks", label="2", seconds=0.1)

    assert final_state(first) == StateType.COMPLETED
    assert final_state(second, timeout=20) == StateType.COMPLETED
    # One slot: the second waited for the first, and started as soon as it ended (its own
    # Scheduled event had come while the slot was taken; the poll was 600 s away).
    assert span("2")[0] >= span("1")[1]
    assert span("2")[0] - span("1")[1] < 5.0


def test_an_executor_asks_for_no_more_due_runs_than_it_has_free_slots(
    executor: Callable[..., Executor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server lists due runs whole: an executor asks for about as many as it could start,
    and with every slot taken only for none, once a `query_s`, to keep its pool's queues
    Ready."""
    asked: list[tuple[float, int, int]] = []  # (when, runs asked for, runs answered)
    ask = ResidentWorker._scheduled_in_pool

    async def counted(self: ResidentWorker, limit: int) -> list[Any]:
        answer = await ask(self, limit)
        asked.append((time.monotonic(), limit, len(answer)))
        return answer

    monkeypatch.setattr(ResidentWorker, "_scheduled_in_pool", counted)
    runs = [start("resident-test-blocks", label=str(i), seconds=2.0) for i in range(5)]
    executor(limit=2, query_s=1.0)  # five runs due already

    assert all(final_state(run_id, timeout=60) == StateType.COMPLETED for run_id in runs)
    # Of the five due, twice the two it could start (room for claims on their way).
    assert asked[0][1:] == (4, 4)
    assert all(limit <= 2 * 2 + 2 and answered <= limit for _, limit, answered in asked), asked
    full = [when for when, limit, _ in asked if limit == 0]
    assert full, "never asked while every slot was taken"
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(full)), full
    spans = [span(str(i)) for i in range(5)]
    most_at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert most_at_once == 2


def test_a_run_cancelled_while_running_stops_and_ends_cancelled(
    executor: Callable[..., Executor],
) -> None:
    one = executor()
    cancelled = start("resident-test-sleeps", label="c", seconds=30.0)
    other = start("resident-test-sleeps", label="o", seconds=3.0)
    wait_for(lambda: any(name == "c" for name, _, _ in SEEN), "the run started")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(cancelled, Cancelling(message="from the test"), force=True)

    assert final_state(cancelled, timeout=30) == StateType.CANCELLED
    assert ("c", "end") not in [(name, what) for name, what, _ in SEEN]
    assert final_state(other) == StateType.COMPLETED
    wait_for(lambda: not one.worker.in_flight, "the executor holds no run")
    with get_client(sync_client=True) as client:
        history = [state.type for state in client.read_flow_run_states(cancelled)]
    # Ended Cancelled by its own engine, never Crashed on the way (housekeeping restarts those).
    assert StateType.CRASHED not in history and history[-1] == StateType.CANCELLED


def test_a_hung_run_recycles_the_process_and_its_successor_marks_it_crashed(
    executor: Callable[..., Executor],
) -> None:
    first = executor("resident-hang", hang_after_s=1.0, drain_s=1.0)
    hung = start("resident-test-hangs")

    wait_for(lambda: first.exits, "the executor recycled", timeout=30)
    assert first.exits == [RECYCLE_EXIT]
    assert "running longer than 1 s" in str(first.worker.recycling)
    assert read(hung).state.type == StateType.RUNNING  # type: ignore[union-attr]
    later = start("resident-test-sleeps", label="l", seconds=0.0)
    time.sleep(3.0)
    assert read(later).state.type == StateType.SCHEDULED, "a recycling process claimed a run"  # type: ignore[union-attr]

    executor("resident-hang")  # started again under the same name

    assert final_state(hung, timeout=30) == StateType.CRASHED
    assert "resident-hang" in str(read(hung).state.message)  # type: ignore[union-attr]
    assert final_state(later) == StateType.COMPLETED


def test_memory_over_the_limit_recycles_after_the_run(executor: Callable[..., Executor]) -> None:
    one = executor(max_rss_mb=1.0)
    run_id = start("resident-test-sleeps", label="m", seconds=0.0)

    assert final_state(run_id) == StateType.COMPLETED
    wait_for(lambda: one.exits, "the executor recycled", timeout=30)
    assert one.exits == [RECYCLE_EXIT]
    assert "resident memory" in str(one.worker.recycling)


def test_a_run_of_a_deployment_without_a_work_queue_is_claimed(
    executor: Callable[..., Executor],
) -> None:
    executor()
    run_id = start("resident-test-orphan", label="q")
    assert read(run_id).work_queue_id is None

    assert final_state(run_id) == StateType.COMPLETED
    assert [what for name, what, _ in SEEN if name == "q"] == ["start"]
