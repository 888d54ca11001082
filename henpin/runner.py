"""The runner (`henpin runner`): executes Henpin's flow runs and runs the housekeeping round.

By default it is the resident executor (henpin/resident.py): Henpin's deployments are in the
work pool `henpin` (type `henpin-resident`) and this one long-lived process claims their runs
through the Prefect API and runs them in-process, many at once. `--process-per-run` serves the
same deployments the former way instead (Prefect's Runner: a new process per flow run), as a
fallback.

A waiting case is a suspended run and holds nothing here; when it is resumed it is claimed and
run again from the top, and finished tasks are reused from persisted results.

Stops that finish: on SIGTERM Prefect's runner shuts down through its API (it reports the runs
it cancels); with the server gone that took over 40 s of retries. The runner now exits at most
`stop_grace_s - 1` seconds after SIGTERM whatever Prefect is doing, and stops by itself when its
Prefect server has not answered for `runner_server_gone_s` (its supervisor, or systemd, starts
it again once the server is back). A flow run it leaves behind is started again by housekeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from prefect.types.entrypoint import EntrypointType

from henpin.cases.registry import CASE_TYPES
from henpin.context import current
from henpin.logs import keep_secrets_out_of_logs
from henpin.resident import POOL, RECYCLE_EXIT, WORKER_TYPE, ResidentWorker
from henpin.runs import DEPLOYMENT
from henpin.settings import Settings

log = logging.getLogger("henpin.runner")


def case_flows() -> dict[str, Any]:
    """Henpin's flows by name (what the runner serves): each case type's, as the registry
    (henpin/cases/registry.py) names them, then ingestion and housekeeping."""
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest
    from flows.registry import case_type_flows

    return {f.name: f for f in (*case_type_flows().values(), ingest, housekeeping)}


def deployments(settings: Settings) -> list[Any]:
    flows = case_flows()
    common: dict[str, Any] = {"name": DEPLOYMENT, "entrypoint_type": EntrypointType.MODULE_PATH}
    cases = [
        flows[entry.flow_name].to_deployment(tags=["henpin", "case"], **common)
        for entry in CASE_TYPES.values()
    ]
    return [
        *cases,
        flows["ingest"].to_deployment(interval=settings.poll_interval_s, tags=["henpin"], **common),
        # Served without a schedule (a run can be started by hand in the Prefect UI): the
        # housekeeper thread below runs the same round every few seconds without spawning a
        # process each time.
        flows["housekeeping"].to_deployment(tags=["henpin"], **common),
    ]


class Housekeeper(threading.Thread):
    """Runs a housekeeping round every `interval` seconds in the runner process."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="henpin-housekeeper", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        from flows.housekeeping import housekeeping_round

        while not self.stopping.is_set():
            try:
                done = housekeeping_round()
                if any(done.values()):
                    log.info("housekeeping: %s", done)
            except Exception:  # keep going: the next round retries what failed
                log.exception("housekeeping round failed; retrying in %s s", self.interval)
            self.stopping.wait(self.interval)


class ServerWatch(threading.Thread):
    """Stops the runner (SIGTERM to itself) when the Prefect server has not answered for
    `gone_after` seconds: a runner without its server can do nothing but retry."""

    def __init__(
        self,
        api_url: str,
        gone_after: float,
        every: float = 2.0,
        on_gone: Callable[[], Any] = lambda: os.kill(os.getpid(), signal.SIGTERM),
    ) -> None:
        super().__init__(name="henpin-server-watch", daemon=True)
        self.health = f"{api_url.rstrip('/')}/health"
        self.gone_after = gone_after
        self.every = every
        self.on_gone = on_gone
        self.gone = threading.Event()

    def run(self) -> None:
        # One client for every look: a new one builds an SSL context each time (CA bundle
        # loaded): about 1.4 CPU s a minute of a busy runner (py-spy, bench memory run).
        with httpx.Client(timeout=5) as http:
            self._watch(http)

    def _watch(self, http: httpx.Client) -> None:
        last_answer = time.monotonic()
        while not self.gone.is_set():
            try:
                if http.get(self.health).status_code == 200:
                    last_answer = time.monotonic()
            except httpx.HTTPError:
                pass
            if time.monotonic() - last_answer > self.gone_after:
                log.error(
                    "the Prefect server at %s has not answered for %.0f s: stopping the runner",
                    self.health,
                    self.gone_after,
                )
                self.gone.set()
                self.on_gone()
                return
            time.sleep(self.every)


def deploy_to_work_pool(settings: Settings) -> list[str]:
    """Create the work pool `henpin` of the resident executor's type (if missing) and register
    Henpin's deployments in it. A pool of another type (Prefect's `process`, before the
    resident executor) is created again: Prefect cannot change a pool's type. Runs left without
    a queue by that are claimed by the resident executor all the same."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(POOL)
        except ObjectNotFound:
            pool = None
        if pool is not None and pool.type != WORKER_TYPE:
            log.warning(
                "work pool %s is of type %s: creating it again as %s", POOL, pool.type, WORKER_TYPE
            )
            client.delete_work_pool(POOL)
            pool = None
        if pool is None:
            client.create_work_pool(
                WorkPoolCreate(
                    name=POOL,
                    type=WORKER_TYPE,
                    base_job_template=ResidentWorker.get_default_base_job_template(),
                )
            )
    names = []
    for deployment in deployments(settings):
        deployment.apply(work_pool_name=POOL)
        names.append(f"{deployment.flow_name}/{deployment.name}")
    return names


def _start_logging() -> None:
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keep_secrets_out_of_logs()  # httpx logs each request's URL (presigned ones too) at INFO


def serve_resident(
    settings: Settings,
    *,
    limit: int | None = None,
    name: str = "henpin-runner",
    housekeeping: bool = True,
    deploy: bool = True,
) -> None:
    """Execute Henpin's flow runs in this process (the resident executor) until SIGTERM; with
    `housekeeping`, run the housekeeping round in a thread; with `deploy`, first register the
    deployments in the work pool. Stops within `stop_grace_s`, and by itself when its Prefect
    server has not answered for `runner_server_gone_s`; exits with `RECYCLE_EXIT` after a hung
    run or too much memory, for its supervisor to start it again."""
    from prefect.settings import PREFECT_API_URL

    _start_logging()
    if deploy:
        deploy_to_work_pool(settings)
    worker = ResidentWorker(
        case_flows(),
        name=name,
        limit=limit or settings.runner_limit,
        hang_after_s=settings.stale_run_s,
        max_rss_mb=settings.runner_max_rss_mb,
        query_s=settings.runner_query_s,
    )
    # Ingestion and housekeeping in this process make runs due: the executor hears it at once.
    current().when_runs_due(worker.wake)
    housekeeper = Housekeeper(settings.outbox_interval_s)
    if housekeeping:
        housekeeper.start()
    watch = ServerWatch(str(PREFECT_API_URL.value()), settings.runner_server_gone_s)
    if PREFECT_API_URL.value():
        watch.start()
    exit_within = max(0.5, settings.stop_grace_s - 1)

    def stop(signum: int, frame: Any) -> None:
        # Runs still going are left RUNNING: marked Crashed at the next start (or found stale by
        # housekeeping) and started again from the top. Never let Prefect hold the stop.
        code = 1 if watch.gone.is_set() else 0
        timer = threading.Timer(exit_within, os._exit, args=(code,))
        timer.daemon = True
        timer.start()
        housekeeper.stopping.set()
        worker.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    asyncio.run(worker.serve())
    if worker.recycling:
        raise SystemExit(RECYCLE_EXIT)
    if watch.gone.is_set():
        raise SystemExit(1)


def serve_forever(settings: Settings, limit: int | None = None) -> None:
    """Serve Henpin's deployments with a process per flow run (`--process-per-run`: what
    `prefect.serve` does, with bounded stops)."""
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL

    _start_logging()
    housekeeper = Housekeeper(settings.outbox_interval_s)
    housekeeper.start()
    watch = ServerWatch(str(PREFECT_API_URL.value()), settings.runner_server_gone_s)
    if PREFECT_API_URL.value():
        watch.start()
    runner = Runner(pause_on_shutdown=False, limit=limit)
    for deployment in deployments(settings):
        runner.add_deployment(deployment)
    graceful = runner.handle_sigterm
    exit_within = max(0.5, settings.stop_grace_s - 1)

    def stop_within_grace(*args: Any, **kwargs: Any) -> None:
        # Prefect's own shutdown talks to the server; never let it hold the stop.
        code = 1 if watch.gone.is_set() else 0
        timer = threading.Timer(exit_within, os._exit, args=(code,))
        timer.daemon = True
        timer.start()
        housekeeper.stopping.set()
        graceful(*args, **kwargs)

    # Runner.start installs `self.handle_sigterm` as the SIGTERM handler: this one instead.
    runner.handle_sigterm = stop_within_grace  # type: ignore[method-assign]
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
        asyncio.run(runner.start())
    if watch.gone.is_set():
        raise SystemExit(1)
