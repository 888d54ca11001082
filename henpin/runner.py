"""The runner: serves Henpin's flows as deployments of a long-lived process (`henpin runner`).

A waiting case is a suspended run and holds no process here; when it is resumed the runner
starts it again in a new process, and finished tasks are reused from persisted results.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from prefect.deployments.runner import EntrypointType

from henpin.domain import CaseType
from henpin.logs import keep_secrets_out_of_logs
from henpin.runs import DEPLOYMENT
from henpin.settings import Settings

log = logging.getLogger("henpin.runner")


def case_flows() -> dict[str, Any]:
    """Henpin's flows by name (what the runner serves)."""
    from flows.address_error import address_error
    from flows.cancel_by_message import cancel_by_message
    from flows.cancel_request import cancel_request
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest
    from flows.refused_delivery import refused_delivery
    from flows.return_request import return_request

    case_types = (
        cancel_request,
        return_request,
        cancel_by_message,
        refused_delivery,
        address_error,
    )
    return {f.name: f for f in (*case_types, ingest, housekeeping)}


def deployments(settings: Settings) -> list[Any]:
    flows = case_flows()
    common: dict[str, Any] = {"name": DEPLOYMENT, "entrypoint_type": EntrypointType.MODULE_PATH}
    cases = [flows[t.value].to_deployment(tags=["henpin", "case"], **common) for t in CaseType]
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
        from tasks.sweep import housekeeping_round

        while not self.stopping.is_set():
            try:
                done = housekeeping_round()
                if any(done.values()):
                    log.info("housekeeping: %s", done)
            except Exception:  # keep going: the next round retries what failed
                log.exception("housekeeping round failed; retrying in %s s", self.interval)
            self.stopping.wait(self.interval)


def serve_forever(settings: Settings, limit: int | None = None) -> None:
    from prefect import serve

    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keep_secrets_out_of_logs()  # httpx logs each request's URL (presigned ones too) at INFO
    housekeeper = Housekeeper(settings.outbox_interval_s)
    housekeeper.start()
    serve(
        *deployments(settings), limit=limit, pause_on_shutdown=False, print_starting_message=False
    )
