"""The resident executor: a Prefect worker of Henpin's own (type `henpin-resident`) that runs the
flow runs it claims inside its own long-lived process, many at once.

Prefect still schedules: runs are claimed from the work pool `henpin` through the Prefect API
(the server lets exactly one claim win, as for any worker), so the Prefect UI, cancelling a run
from it, concurrency limits and run history behave as with Prefect's process worker. What goes
is the process per flow run: a resumed case no longer waits for a new Python process to import
Prefect and Henpin (about 1.8 CPU s) before it acts.

How one run is executed, and why one misbehaving run cannot stop the others:

- **Each run in a thread of its own with its own event loop** (`asyncio.run` of Prefect's
  `run_flow`). Henpin's case flows are async, but their tasks are sync and block: sharing one
  loop would let one slow Amazon call hold every other run. Each run starts in an empty
  `contextvars` context, so runs do not see each other's Prefect run context. The threads are
  kept and reused (`RunThreads`): a run goes to an idle one, and a new thread starts only when
  none is idle.
- **An exception** in a flow is the run's own: Prefect records it as the run's state (Failed)
  and its thread waits for the next run; the worker goes on.
- **A suspension** (a case waiting for a person or for Amazon) ends the run's part in its
  thread: Prefect's `Pause` is the normal way out. The run holds nothing here while it waits.
- **A hang** (a run still running after `hang_after_s`, Henpin's stale-run time): a thread
  cannot be killed, so the process stops claiming runs, lets the others finish (at most
  `drain_s`) and exits with `RECYCLE_EXIT` for its supervisor (`henpin up`, systemd) to start it
  again. When it starts again it marks the runs it left running as Crashed, and housekeeping
  starts them again from the top (finished tasks come back from the result store, Amazon actions
  are idempotent in the outbox).
- **A memory leak**: after each run the process's resident memory is read; above `max_rss_mb`
  it recycles the same way.
- **A crash of the whole process** (kill -9) loses nothing for the same reason: its runs are
  marked Crashed at its next start (or found stale by housekeeping) and started again.

Cancelling from the Prefect UI or API: a run cancelled before it started is marked Cancelled
(Prefect's own worker code); a run this process is executing gets its task cancelled in its own
loop (at the flow's next `await`) and ends Cancelled. Housekeeping records the
cancellation on the case and withdraws what the run queued for Amazon and was not sent yet.

Waking up: besides asking for due runs every `query_s` (HENPIN_RUNNER_QUERY_S), the worker
listens to Prefect's event stream for runs becoming Scheduled (a new case run, a run resumed
by a decision or by a finished Amazon feed, a run started again) and asks at once. A run this
process itself made due (ingestion starting a case, its housekeeping resuming the cases of a
finished feed) wakes it directly (`wake`, through the process context's `when_runs_due`),
without waiting for that event to come back through the server. Workers sharing a pool (the
scaled layout) split the due runs between them instead of all claiming each, and each asks at
an event only for a run that falls to it (PEER_GRACE_S).

Due runs of Henpin's deployments outside the pool's queues (created under the former
per-process runner, which had no pool, or left without a queue when a pool of another type was
recreated as this one) are claimed too, so an upgrade strands no waiting case.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ctypes
import functools
import heapq
import inspect
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
import httpx
from prefect import Flow
from prefect._flow_run_suspension import FlowRunSuspensionRequest
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkerFilter,
    WorkerFilterStatus,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import Pause
from prefect.states import Cancelled, Crashed
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult

from henpin.runs import DEPLOYMENT

log = logging.getLogger("henpin.resident")

WORKER_TYPE = "henpin-resident"
POOL = "henpin"  # the work pool Henpin's deployments are in (henpin/scale.py, prefect.yaml)
#: The exit code of a process that stops to be started again (a hung run, too much memory):
#: EX_TEMPFAIL, "try again later".
RECYCLE_EXIT = 75
#: Events that mean a run may now be due in this pool: new, resumed, started again.
WAKE_EVENTS = (
    "prefect.flow-run.Scheduled",
    "prefect.flow-run.Resuming",
    "prefect.flow-run.AwaitingRetry",
)
CANCEL_EVENT = "prefect.flow-run.Cancelling"
#: Workers sharing a pool (the scaled layout) all hear each run's event and ask at once: each
#: proposed every due run Pending and the server refused all but one (the scaled layout's
#: engine benchmark, 2026-12-07: 513 refused claims for about 600 runs, and as many "Aborted
#: submission" lines). So a worker that knows other workers online in its pool claims at once
#: only the due runs that fall to it (the run's id modulo the workers, ordered by name), and
#: another's only once that run has been due this long: a worker that is full, stuck or gone
#: holds no run back for longer.
PEER_GRACE_S = 5.0
#: How often, at most, memory freed inside malloc's arenas is handed back (after a run ends):
#: a trim takes a few milliseconds of the executor's loop.
TRIM_EVERY_S = 10.0
#: The most runs the Prefect server lists in one answer (PREFECT_API_DEFAULT_LIMIT's default;
#: it refuses to be asked for more).
SERVER_PAGE = 200


@contextlib.contextmanager
def _no_suspension_watch(
    flow_run_id: UUID, suspension_request: FlowRunSuspensionRequest, polling_interval: float = 10
) -> Iterator[None]:
    yield


_this_thread = threading.local()  # `.running`: the InFlight a run's thread executes


def _cancel_or_prefects_intent(original: Callable[[], Any]) -> Callable[[], Any]:
    """Prefect's engine reads a process-wide "termination intent" when a run's task is
    cancelled: "cancel" makes it end the run Cancelled (prefect/flow_engine.py), anything else
    Crashed. Here many runs share the process, so the intent is the run's own: "cancel" in the
    thread of a run the executor is cancelling, else Prefect's."""

    def intent() -> Any:
        running = getattr(_this_thread, "running", None)
        if running is not None and running.cancel_requested:
            return "cancel"
        return original()

    return intent


def engine_per_run() -> None:
    """Fit Prefect's flow engine to many runs in one process (see the functions above and
    below); idempotent."""
    import prefect.flow_engine as engine

    if not getattr(engine._termination_intent, "henpin", False):
        intent = _cancel_or_prefects_intent(engine._termination_intent)
        intent.henpin = True  # type: ignore[attr-defined]
        engine._termination_intent = intent
    skip_suspension_watch()
    sooner_first_retries()
    one_timeout_watcher()


#: Prefect's client waits about 2**n s (n = 1..5) before retrying a request its server answered
#: 503. Prefect's server on SQLite (the default layout) answers 503 when a request's transaction
#: meets one of its own writers (events, task runs: "database is locked", PrefectHQ/prefect#17473):
#: many runs in one process make that frequent, and a next try soon after nearly always goes
#: through. A first wait of 2 s was the ~2 s tail of a fifth of the resident runner's decisions
#: and ingestion's one case per ~2 s (bench P1, P4, 2026-12-05); with the first three waits
#: shortened only, the fourth (16 s) still showed in a quick run. The first four waits are a
#: tenth as long (0.2, 0.4, 0.8, 1.6 s); the last stays Prefect's (32 s), so a server that stays
#: down still gets a last try half a minute later.
SHORT_RETRY_UP_TO_S = 16.0
SHORT_RETRY_SCALE = 0.1


def sooner_first_retries() -> None:
    """Make the Prefect client's first retries in this process sooner (above); idempotent."""
    import prefect.client.base as client_base

    jittered = client_base.clamped_poisson_interval  # type: ignore[attr-defined]
    if getattr(jittered, "henpin", False):
        return

    def sooner(average_interval: float, clamping_factor: float = 0.3) -> float:
        if average_interval <= SHORT_RETRY_UP_TO_S:
            average_interval *= SHORT_RETRY_SCALE
        return float(jittered(average_interval, clamping_factor))

    sooner.henpin = True  # type: ignore[attr-defined]
    client_base.clamped_poisson_interval = sooner  # type: ignore[attr-defined]


def skip_suspension_watch() -> None:
    """Prefect 3.9 starts, for every run of a deployment, a thread with its own event loop and
    a websocket subscription that waits for someone to suspend the run from the UI
    (prefect/_flow_run_suspension.py `observe_flow_run_suspension`); the run waits for the
    subscription before it begins and for the thread after it ends: 0.1-0.3 s of every resumed
    case's wait, and a thread per run. Henpin's case flows run for a moment and suspend on
    their own at each question, so in this process the watch is left out; cancelling a run from
    the UI is still watched (by the executor, once for all runs)."""
    import prefect.flow_engine

    prefect.flow_engine.observe_flow_run_suspension = _no_suspension_watch  # type: ignore[attr-defined]


class TimeoutWatcher:
    """One thread that enforces the timeouts of every sync task of the process.

    Prefect enforces a sync task's `timeout_seconds` outside the main thread with a
    `WatcherThreadCancelScope`: a thread started at the task run's start, which waits for the
    timeout and then raises `CancelledError` into the task's thread (at its next Python
    instruction), and is joined at the task run's end. Every Henpin task has a timeout, so each
    case started and joined about seven threads (3-4 % of a busy runner's CPU under py-spy,
    2026-12-06). Here the scopes' deadlines go into one heap, served by one daemon thread,
    which does at a deadline what Prefect's watcher thread does (`cancel`, then
    `_send_cancelled_error`, which delivers under the scope's exit lock, never into a thread
    that has left the scope)."""

    def __init__(self) -> None:
        self._deadlines: list[tuple[float, int, Any]] = []  # (deadline, order, scope), a heap
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._left = 0  # scopes in the heap that left their block (dropped in bulk, below)

    def watch(self, scope: Any) -> None:
        with self._changed:
            heapq.heappush(self._deadlines, (scope._deadline, next(self._order), scope))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="henpin timeout watcher", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def left(self) -> None:
        """A watched scope left its block: once half the heap has, drop those (a deadline is
        up to 300 s away; the heap holds only the scopes still inside their block and a few)."""
        with self._changed:
            self._left += 1
            if self._left > 64 and 2 * self._left > len(self._deadlines):
                self._deadlines = [d for d in self._deadlines if not d[2]._exited]
                heapq.heapify(self._deadlines)
                self._left = 0

    def _due(self) -> Any:
        """The next scope past its deadline and still inside its block (waits for one)."""
        with self._changed:
            while True:
                while self._deadlines and self._deadlines[0][2]._exited:
                    heapq.heappop(self._deadlines)  # left its block in time
                    self._left = max(0, self._left - 1)
                now = time.monotonic()
                if self._deadlines and self._deadlines[0][0] <= now:
                    return heapq.heappop(self._deadlines)[2]
                self._changed.wait(self._deadlines[0][0] - now if self._deadlines else None)

    def _serve(self) -> None:
        while True:
            scope = self._due()
            try:
                if scope.cancel(throw=False):
                    scope._send_cancelled_error()
            except Exception:  # the next deadline still gets its turn
                log.exception("could not enforce the timeout of %r", scope)
            del scope


def one_timeout_watcher() -> None:
    """Enforce sync tasks' timeouts in this process from one `TimeoutWatcher` (above), not a
    thread per task run; idempotent."""
    from prefect._internal.concurrency import cancellation

    prefects = cancellation.WatcherThreadCancelScope
    if getattr(prefects, "henpin", False):
        return
    watcher = TimeoutWatcher()

    class WatchedCancelScope(prefects):  # type: ignore[misc, valid-type]
        """Prefect's `WatcherThreadCancelScope`, its deadline kept by `watcher`."""

        henpin = True

        def __enter__(self) -> Any:
            cancellation.CancelScope.__enter__(self)  # type: ignore[no-untyped-call]
            self._event = threading.Event()
            self._exit_lock = threading.Lock()
            self._exited = False
            self._enforcer_thread = None
            self._supervised_thread = threading.current_thread()
            if self.timeout is not None:
                watcher.watch(self)
            return self

        def __exit__(self, *exc_info: Any) -> bool | None:
            try:
                with self._exit_lock:
                    self._exited = True
                    left: bool | None = cancellation.CancelScope.__exit__(self, *exc_info)
            finally:
                self._event.set()
                if self.timeout is not None:
                    watcher.left()
            return left

    cancellation.WatcherThreadCancelScope = WatchedCancelScope  # type: ignore[misc]


class ResidentResult(BaseWorkerResult):
    """What `run` returns: the engine recorded the run's own state already; 0 = the executor
    did its part."""


@dataclass
class InFlight:
    """A run this process is executing."""

    flow_run: FlowRun
    started: float = field(default_factory=time.monotonic)
    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[Any] | None = None
    cancel_requested: bool = False


def resident_memory_mb() -> float:
    """This process's resident memory now (Linux /proc; 0 where not available)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def give_back_free_memory() -> None:
    """Hand memory freed inside glibc's malloc arenas back to the system (`malloc_trim(0)`;
    nothing under jemalloc, whose background thread does it, or where the C library is not
    glibc).

    Each flow run executes in a thread of its own, and glibc gives threads arenas of their own
    (up to 8 per core). Memory a run freed stays inside its arena, resident, in pieces that
    later allocations of another size do not fill: over thousands of cases the runner's
    resident memory grew while the Python objects it held and the memory malloc had handed
    out stayed flat (bench `BENCH_ONLY=memory`, README "Performance"). Since glibc 2.8,
    `malloc_trim` releases every whole free page of every arena (man 3 malloc_trim)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def allocator_in_use() -> str:
    """Which malloc serves this process: "jemalloc" when it is preloaded (the supervisor's
    HENPIN_RUNNER_ALLOCATOR, henpin/supervisor/parts.py), else "glibc" or "system"."""
    return "jemalloc" if _jemalloc() else "glibc" if _glibc_trim() is not None else "system"


def jemalloc_arenas() -> int | None:
    """How many arenas jemalloc spreads this process's threads over (its `opt.narenas`, which
    MALLOC_CONF sets); None without jemalloc. jemalloc ignores a MALLOC_CONF it cannot read,
    with a line on stderr, so the runner logs the figure it took."""
    if not _jemalloc():
        return None
    value, size = ctypes.c_uint(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_uint))
    read = ctypes.CDLL(None).mallctl(
        b"opt.narenas", ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)
    )
    return value.value if read == 0 else None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    return None if _jemalloc() else _glibc_trim()


@functools.cache
def _jemalloc() -> bool:
    """jemalloc exports `mallctl`; glibc does not."""
    try:
        return hasattr(ctypes.CDLL(None), "mallctl")
    except OSError:
        return False


@functools.cache
def _glibc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        return None
    return trim


class RunThreads:
    """Threads that execute flow runs, kept and reused: a job goes to an idle thread, and a new
    thread starts only when none is idle (so there are never more than the most runs ever
    executing at once; a hung run keeps its thread, and the next run gets another).

    Why not a thread per run: a thread's start and end cost CPU every run (its Python thread
    state, its stack, its malloc cache). They were not what grows the runner's memory: with
    threads kept it grew alike (docs/scaling.md, "The resident executor"). Why not `concurrent.futures.ThreadPoolExecutor`:
    its threads are joined at interpreter exit, so a hung run would keep a recycling process
    from ending; these are daemon threads.

    Each job runs in a new, empty `contextvars` context, as in a thread of its own."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self.started = 0  # threads started so far (a test reads it)

    def submit(self, job: Callable[[], None]) -> None:
        if not self._idle.acquire(blocking=False):
            self.started += 1
            threading.Thread(
                target=self._serve, name=f"{self.name} {self.started}", daemon=True
            ).start()
        self._jobs.put(job)

    def _serve(self) -> None:
        thread = threading.current_thread()
        name = thread.name
        while True:
            job = self._jobs.get()
            try:
                contextvars.Context().run(job)
            except BaseException:  # a job keeps its own trouble; the thread serves the next
                log.exception("a job of %s raised", self.name)
            finally:
                del job
                thread.name = name  # a job may name the thread after itself
            self._idle.release()


class ResidentWorker(BaseWorker[BaseJobConfiguration, BaseVariables, ResidentResult]):
    """Runs claimed flow runs in this process; see the module's text."""

    type = WORKER_TYPE
    job_configuration = BaseJobConfiguration
    _description = (
        "Henpin's resident executor: runs Henpin's flows inside one long-lived process, "
        "each run in a thread of its own (kept and reused) and an event loop of its own."
    )

    def __init__(
        self,
        flows: Mapping[str, Flow[..., Any]],
        *,
        name: str,
        work_pool_name: str = POOL,
        deployment: str = DEPLOYMENT,
        limit: int = 16,
        hang_after_s: float = 900.0,
        max_rss_mb: float = 2048.0,
        drain_s: float = 60.0,
        query_s: float = 5.0,
        heartbeat_s: int | None = None,
        exit: Callable[[int], Any] = os._exit,
    ) -> None:
        super().__init__(
            work_pool_name=work_pool_name,
            name=name,
            limit=limit,
            prefetch_seconds=0,
            heartbeat_interval_seconds=heartbeat_s,  # None: PREFECT_WORKER_HEARTBEAT_SECONDS
        )
        self.flows = dict(flows)
        self.deployment = deployment
        self.hang_after_s = hang_after_s
        self.max_rss_mb = max_rss_mb
        self.drain_s = drain_s
        self.query_s = query_s
        self.exit = exit  # how the process ends to be started again (a test records it)
        self.in_flight: dict[UUID, InFlight] = {}
        self.runs_done = 0
        self.recycling: str | None = None  # why this process stops claiming, once it does
        self.stopping = threading.Event()
        self._flow_names: dict[UUID, str] = {}
        self._claimed: set[UUID] = set()  # claimed by this process and not finished
        self._wake = asyncio.Event()
        # The last claim left due runs unclaimed for want of a free slot: a run that ends wakes
        # the poll to claim them (else they would wait for the next event or query_s).
        self._runs_left_for_a_slot = False
        self._claiming = asyncio.Lock()
        self._cancels: Any = None  # the FlowRunCancellingObserver of running runs
        self._trimmed_at = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None  # serve()'s, for `wake`
        self.peers: list[str] = []  # other workers online in the pool, as of the last sync
        self.threads = RunThreads("flow runs")

    # --- claiming ---------------------------------------------------------------------------

    async def get_and_submit_flow_runs(self) -> list[FlowRun]:
        """Claim due runs (one caller at a time: the poll and the event stream both call it),
        unless this process is stopping: the pool's, then any other due run of Henpin's
        deployments; asking for about as many as it could start.

        Each due run the server lists is a whole flow run to send and to parse: in the memory
        benchmark, where the server answered up to 200 due runs to every event of a backlog,
        those answers took about a sixth of the runner's CPU (py-spy). So a process with no
        free slot asks for none (a run that ends asks again: `_runs_left_for_a_slot`), and one
        with free slots asks for about as many as it could start, oldest first, as the server
        orders a pool's due runs."""
        if self.recycling or self.stopping.is_set() or not self._has_successfully_synced:
            return []
        async with self._claiming:
            free = self.free_slots()
            if free == 0:
                self._runs_left_for_a_slot = True
                if datetime.now(UTC) - self._last_polled_time < timedelta(seconds=self.query_s):
                    return []
                # Every `query_s` all the same, asking for none: the server marks the pool's
                # queues polled (Ready in the Prefect UI) as for any worker.
                await self._scheduled_in_pool(limit=0)
                self._last_polled_time = datetime.now(UTC)
                return []
            # The oldest due runs include those whose claim is on its way (this process's, and
            # in the scaled layout another worker's: about as many as it has slots): room for
            # them, else they would fill the answer and the newer ones wait for a run to end.
            ask = min(SERVER_PAGE, 2 * free + len(self._submitting_flow_run_ids))
            pooled = await self._scheduled_in_pool(limit=ask)
            self._last_polled_time = datetime.now(UTC)
            known = {entry.flow_run.id for entry in pooled}
            # Runs outside the pool's queues are asked for once the pool's do not fill the
            # answer (the pool's own due runs match that query too: room for them as well).
            outside = (
                await self._henpin_runs_due(limit=min(SERVER_PAGE, ask + len(pooled)))
                if len(pooled) < ask
                else []
            )
            others = [r for r in outside if r.flow_run.id not in known]
            # A run claimed since the server answered (its Pending not yet in that answer) is
            # not offered again (Prefect's worker would warn of a duplicate submission), nor
            # one that falls to another worker online, until it has waited PEER_GRACE_S.
            unclaimed = [e for e in [*pooled, *others] if e.flow_run.id not in self._claimed]
            due = [e for e in unclaimed if self.falls_to_me(e.flow_run)]
            if len(due) < len(unclaimed) and self._loop is not None:
                # Ask again once they are this worker's too, if their worker has not come.
                self._loop.call_later(PEER_GRACE_S, self._wake.set)
            submitted = await self._submit_scheduled_flow_runs(due)
            # A full answer may have left due runs unseen: the next free slot asks again.
            self._runs_left_for_a_slot = len(submitted) < len(due) or len(pooled) >= ask
            return submitted

    def falls_to_me(self, run: FlowRun) -> bool:
        """Whether this worker claims `run` now: it falls to this worker (see PEER_GRACE_S), or
        it has been due for PEER_GRACE_S, or no other worker is online."""
        if self.mine(run.id):
            return True
        since = run.state.timestamp if run.state is not None else None
        waited = datetime.now(UTC) - since if since is not None else None
        return waited is None or waited >= timedelta(seconds=PEER_GRACE_S)

    def mine(self, run_id: UUID) -> bool:
        """Whether the run with this id falls to this worker: always, with no other online."""
        workers = sorted({self.name, *self.peers})
        return workers[run_id.int % len(workers)] == self.name

    def free_slots(self) -> int:
        """Runs this process could start now (its limit less those it is executing)."""
        if self._limiter is None:
            return SERVER_PAGE
        return int(self._limiter.available_tokens)

    async def _scheduled_in_pool(self, limit: int) -> list[Any]:
        """The pool's due Scheduled runs, oldest first, at most `limit` (prefect 3.9.1's client
        call, `get_scheduled_flow_runs_for_work_pool`, cannot pass the server's `limit`: the
        server then answers up to PREFECT_API_DEFAULT_LIMIT, 200)."""
        from prefect.client.schemas.responses import WorkerFlowRunResponse
        from prefect.types._datetime import now as prefect_now

        body: dict[str, Any] = {
            "scheduled_before": str(prefect_now("UTC")),
            "limit": limit,
        }
        if self._work_queues:
            body["work_queue_names"] = list(self._work_queues)
        try:
            response = await self.client.request(
                "POST",
                "/work_pools/{name}/get_scheduled_flow_runs",
                path_params={"name": self._work_pool_name},
                json=body,
            )
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:  # the pool is made again at the next sync
                return []
            raise
        return WorkerFlowRunResponse.model_validate_list(response.json())

    async def _henpin_runs_due(self, limit: int) -> list[Any]:
        """Due Scheduled runs of Henpin's deployments, of the flows this process runs, whatever
        their work queue (oldest first, at most `limit`): runs created under the former
        per-process runner have none, and those of a pool of another type, recreated as this
        one, lost theirs."""
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(self.flows))),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[self.deployment])),
            sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
            limit=limit,
        )
        now = time.time()
        return [
            SimpleNamespace(flow_run=run)
            for run in runs
            if run.next_scheduled_start_time is None
            or run.next_scheduled_start_time.timestamp() <= now
        ]

    # --- executing ----------------------------------------------------------------------------
    async def _submit_run(self, flow_run: FlowRun) -> None:
        """Claim the run (Pending: the server lets one claim win) and start it at once.

        Leaner than Prefect's own (prefect/workers/base.py `_submit_run`): no deployment
        re-read, no job configuration (nothing here is templated: the run is a thread), no
        Submitting state, and the worker's labels (by which a restarted process finds the runs
        it left behind) are written beside the run rather than before it, and only when the run
        does not carry them yet. About half of a resumed case's wait for its executor went to
        those calls."""
        try:
            claimed = await self._propose_pending_state(flow_run)
            if claimed:
                self._claimed.add(flow_run.id)
                assert self._runs_task_group is not None
                if not self._labelled(flow_run):
                    self._runs_task_group.start_soon(self._label, flow_run)
                self._runs_task_group.start_soon(self._run_claimed, flow_run)
            else:  # another executor claimed it: the slot asks again when a run ends
                self._release_limit_slot(flow_run.id)
                self._runs_left_for_a_slot = True
        finally:
            self._submitting_flow_run_ids.discard(flow_run.id)
            if self._cancelling_observer is not None:
                self._cancelling_observer.remove_in_flight_flow_run_id(flow_run.id)

    def _labelled(self, flow_run: FlowRun) -> bool:
        """Whether the run carries this executor's labels already (a resumed case's run that
        this executor claimed before): its labels are not written again."""
        labels = flow_run.labels or {}
        mine = {"prefect.worker.name": self.name, "prefect.worker.type": self.type}
        if self._work_pool is not None:
            mine["prefect.work-pool.id"] = str(self._work_pool.id)
        return all(labels.get(k) == v for k, v in mine.items())

    async def _label(self, flow_run: FlowRun) -> None:
        try:
            await self._give_worker_labels_to_flow_run(flow_run.id)
        except Exception as exc:  # only the restart's search for left-behind runs needs it
            log.warning("could not label flow run %s with this executor: %s", flow_run.id, exc)

    async def _run_claimed(self, flow_run: FlowRun) -> None:
        try:
            await self.run(flow_run, BaseJobConfiguration())
        except Exception as exc:  # not Henpin's flow, or no thread: the run did not start
            log.exception("could not start flow run %s", flow_run.id)
            await self._propose_crashed_state(
                flow_run, f"The resident executor could not start it: {type(exc).__name__}: {exc}"
            )
        finally:
            self._claimed.discard(flow_run.id)
            self._release_limit_slot(flow_run.id)
            if self._runs_left_for_a_slot:
                self._wake.set()

    async def _flow_for(self, flow_run: FlowRun) -> Flow[..., Any]:
        name = self._flow_names.get(flow_run.flow_id)
        if name is None:
            name = (await self.client.read_flow(flow_run.flow_id)).name
            self._flow_names[flow_run.flow_id] = name
        if name not in self.flows:
            raise LookupError(f"flow {name!r} is not one of Henpin's: {sorted(self.flows)}")
        return self.flows[name]

    async def run(
        self,
        flow_run: FlowRun,
        configuration: BaseJobConfiguration,
        task_status: anyio.abc.TaskStatus[int] | None = None,
    ) -> ResidentResult:
        flow = await self._flow_for(flow_run)
        running = InFlight(flow_run)
        self.in_flight[flow_run.id] = running
        if self._cancels is not None:
            self._cancels.add_in_flight_flow_run_id(flow_run.id)
        finished = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.threads.submit(
            functools.partial(
                self._execute, flow, running, lambda: loop.call_soon_threadsafe(finished.set)
            )
        )
        if task_status is not None:
            task_status.started(os.getpid())
        try:
            await finished.wait()
        finally:
            self.in_flight.pop(flow_run.id, None)
            if self._cancels is not None:
                self._cancels.remove_in_flight_flow_run_id(flow_run.id)
        if running.cancel_requested:
            await self._mark_cancelled(flow_run.id)
        self.runs_done += 1
        self._check_memory()
        return ResidentResult(identifier=str(flow_run.id), status_code=0)

    def _execute(self, flow: Flow[..., Any], running: InFlight, done: Any) -> None:
        """The run's thread: Prefect's engine on a loop of its own."""
        from prefect.context import SyncClientContext
        from prefect.flow_engine import run_flow

        flow_run = running.flow_run
        threading.current_thread().name = f"flow-run {flow_run.name}"
        _this_thread.running = running

        async def main() -> None:
            running.loop = asyncio.get_running_loop()
            running.task = asyncio.current_task()
            if running.cancel_requested:
                raise asyncio.CancelledError
            # One Prefect client for the run's sync tasks. Prefect's engine gives an async flow run
            # an async client only, and each sync task run of it then built a client of its own:
            # an SSL context (about 3.5 % of a busy runner's CPU under py-spy, 2026-12-06) and a
            # connection to the server each. Prefect's sync flows share one client this way.
            with SyncClientContext.get_or_create():
                ran: Any = run_flow(
                    flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
                )
                if inspect.isawaitable(ran):  # the case flows are async: run it to its end here
                    await ran

        try:
            asyncio.run(main())
        except Pause:
            pass  # suspended: it waits for a person or for Amazon
        except BaseException as exc:  # the run's own trouble: its state says so, go on
            if not running.cancel_requested:
                log.warning("flow run %s (%s) raised %r", flow_run.id, flow_run.name, exc)
        finally:
            _this_thread.running = None
            with contextlib.suppress(RuntimeError):  # the executor's loop closed: it has stopped
                done()

    # --- cancelling -----------------------------------------------------------------------------

    async def _cancel_run(self, flow_run_id: UUID) -> None:
        """A run went Cancelling: one this process is executing has its task cancelled in its
        own loop; one not started yet is marked Cancelled by Prefect's own code."""
        running = self.in_flight.get(flow_run_id)
        if running is None:
            await super()._cancel_run(flow_run_id)
            return
        if running.cancel_requested:
            return
        running.cancel_requested = True
        log.info("flow run %s was cancelled: stopping it", flow_run_id)
        if running.loop is not None and running.task is not None:
            with contextlib.suppress(RuntimeError):  # its loop has just closed
                running.loop.call_soon_threadsafe(running.task.cancel)

    async def _mark_cancelled(self, flow_run_id: UUID) -> None:
        """The engine ends a cancelled run Cancelled itself; this is for a cancel that came
        before the engine began, or one it took for a crash."""
        with contextlib.suppress(Exception):  # the run is gone; nothing to mark
            state = (await self.client.read_flow_run(flow_run_id)).state
            if state is not None and state.type == StateType.CANCELLED:
                return
            await self.client.set_flow_run_state(
                flow_run_id,
                Cancelled(message="Cancelled from the Prefect API while it was running."),
                force=True,
            )

    # --- recycling --------------------------------------------------------------------------

    def _check_memory(self) -> None:
        """After a run: free memory goes back to the system (at most every `TRIM_EVERY_S`),
        then the resident memory decides whether the process recycles."""
        now = time.monotonic()
        if now - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = now
            give_back_free_memory()
        rss = resident_memory_mb()
        if rss > self.max_rss_mb and not self.recycling:
            self.recycle(f"resident memory {rss:.0f} MB is over {self.max_rss_mb:.0f} MB")

    def recycle(self, why: str) -> None:
        """Stop claiming runs; the watchdog exits once the others finished (or `drain_s`)."""
        if not self.recycling:
            log.error("resident executor %s recycles: %s", self.name, why)
            self.recycling = why
            self.recycle_deadline = time.monotonic() + self.drain_s

    def hung_runs(self) -> list[InFlight]:
        now = time.monotonic()
        return [r for r in self.in_flight.values() if now - r.started > self.hang_after_s]

    async def _watchdog(self) -> None:
        while True:
            hung = self.hung_runs()
            if hung and not self.recycling:
                names = ", ".join(f"{r.flow_run.name} ({r.flow_run.id})" for r in hung)
                self.recycle(f"flow runs running longer than {self.hang_after_s:.0f} s: {names}")
            if self.recycling:
                others = [r for r in self.in_flight.values() if r not in hung]
                if not others or time.monotonic() > self.recycle_deadline:
                    log.error("resident executor %s exits to be started again", self.name)
                    self.exit(RECYCLE_EXIT)
                    return
            await asyncio.sleep(1.0)

    async def mark_runs_left_behind(self) -> list[UUID]:
        """Runs this worker (by name) was executing when its process stopped: marked Crashed,
        for housekeeping to start them again."""
        runs = await self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                )
            ),
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[self.deployment])),
            limit=200,
        )
        left = [
            r
            for r in runs
            if (r.labels or {}).get("prefect.worker.name") == self.name
            and r.id not in self.in_flight
        ]
        for run in left:
            with contextlib.suppress(Exception):
                await self.client.set_flow_run_state(
                    run.id,
                    Crashed(
                        message=f"Its resident executor ({self.name}) stopped while running it."
                    ),
                    force=True,
                )
        if left:
            log.warning("marked %d runs left behind by the last process as Crashed", len(left))
        return [r.id for r in left]

    # --- the loops --------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask for due runs now (from any thread): this process has just made one due."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: it has stopped
                loop.call_soon_threadsafe(self._wake.set)

    async def _poll(self) -> None:
        """Ask for due runs every `query_s`, or at once when the event stream says so."""
        while not self.stopping.is_set():
            self._wake.clear()
            try:
                await self.get_and_submit_flow_runs()
            except Exception as exc:  # the API down: ask again later
                log.warning("could not ask for due flow runs: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.query_s)

    async def _listen(self) -> None:
        """Wake the poll when a run becomes Scheduled; reconnects after the stream breaks."""
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter

        wanted = EventFilter(event=EventNameFilter(name=list(WAKE_EVENTS)))
        while not self.stopping.is_set():
            try:
                async with get_events_subscriber(filter=wanted, reconnection_attempts=0) as events:
                    self._wake.set()  # whatever happened while not listening
                    async for event in events:
                        self._heard(event.resource.id)
            except Exception as exc:  # the server restarting: the poll covers meanwhile
                log.debug("event stream closed (%s); listening again", exc)
            await asyncio.sleep(2.0)

    def _heard(self, resource_id: str) -> None:
        """A run may be due (`prefect.flow-run.<id>`): ask now if it falls to this worker.
        Another worker's run is left to it: each worker asking at every event doubled the
        server's answers about the same run. If its worker does not come, this one's poll
        (every `query_s`) claims it once it has been due PEER_GRACE_S."""
        _, _, tail = resource_id.rpartition(".")
        try:
            run_id: UUID | None = UUID(tail)
        except ValueError:  # not a flow run's event: ask
            run_id = None
        if run_id is None or self.mine(run_id):
            self._wake.set()

    async def _sync(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._sync_and_initialize()
                self.peers = await self._peers_online()
            except Exception as exc:
                log.warning("could not sync with the Prefect API: %s", exc)
            await asyncio.sleep(self.heartbeat_interval_seconds)

    async def _leave_the_pool(self) -> None:
        """A worker that stops deletes its record in the pool, so the others stop counting it
        online at once (PEER_GRACE_S) rather than when the server finds its heartbeats missing,
        a minute and more later. Started again under the same name, it is recorded again at its
        first heartbeat. One killed is left to the server."""
        with contextlib.suppress(Exception):  # the server gone: it marks the worker offline
            await self.client.request(
                "DELETE",
                "/work_pools/{work_pool_name}/workers/{name}",
                path_params={"work_pool_name": self._work_pool_name, "name": self.name},
            )

    async def _peers_online(self) -> list[str]:
        """The other workers of this pool that Prefect's server counts online (a heartbeat
        within its last few intervals)."""
        workers = await self.client.read_workers_for_work_pool(
            self._work_pool_name,
            worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"])),
        )
        return sorted(worker.name for worker in workers if worker.name != self.name)

    async def serve(self, ready: threading.Event | None = None) -> None:
        """Claim and execute runs until `stopping` is set."""
        from prefect._internal.observers import FlowRunCancellingObserver
        from prefect.events.filters import EventFilter, EventNameFilter

        engine_per_run()
        self._loop = asyncio.get_running_loop()
        async with self:
            assert self._runs_task_group is not None
            group = self._runs_task_group

            def on_cancelling(flow_run_id: UUID) -> None:
                group.start_soon(self._cancel_run, flow_run_id)

            self._cancels = await self._exit_stack.enter_async_context(
                FlowRunCancellingObserver(
                    on_cancelling=on_cancelling,
                    polling_interval=self.query_s,
                    event_filter=EventFilter(event=EventNameFilter(name=[CANCEL_EVENT])),
                )
            )
            await self.mark_runs_left_behind()
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._sync)
                loops.start_soon(self._poll)
                loops.start_soon(self._listen)
                loops.start_soon(self._watchdog)
                if ready is not None:
                    ready.set()
                arenas = jemalloc_arenas()
                log.info(
                    "resident executor %s serving work pool %s (malloc: %s%s, PYTHONMALLOC=%s)",
                    *(self.name, self._work_pool_name, allocator_in_use()),
                    f" with {arenas} arena{'s' if arenas != 1 else ''}" if arenas else "",
                    os.environ.get("PYTHONMALLOC", "pymalloc"),
                )
                while not self.stopping.is_set():
                    await asyncio.sleep(0.2)
                loops.cancel_scope.cancel()
            await self._leave_the_pool()
