"""The runner: serves Henpin's flows as deployments of a long-lived process (`henpin runner`).

A waiting case is a suspended run and holds no process here; when it is resumed the runner
starts it again in a new process, and finished tasks are reused from persisted results.
"""

from __future__ import annotations

import os
from typing import Any

from prefect.deployments.runner import EntrypointType

from henpin.runs import DEPLOYMENT
from henpin.settings import Settings


def case_flows() -> dict[str, Any]:
    """Henpin's flows by name (what the runner serves)."""
    from flows.cancel_request import cancel_request
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest

    return {f.name: f for f in (cancel_request, ingest, housekeeping)}


def deployments(settings: Settings) -> list[Any]:
    from flows.cancel_request import cancel_request
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest

    common: dict[str, Any] = {"name": DEPLOYMENT, "entrypoint_type": EntrypointType.MODULE_PATH}
    return [
        cancel_request.to_deployment(tags=["henpin", "case"], **common),
        ingest.to_deployment(
            interval=settings.poll_interval_s, concurrency_limit=1, tags=["henpin"], **common
        ),
        housekeeping.to_deployment(
            interval=settings.outbox_interval_s, concurrency_limit=1, tags=["henpin"], **common
        ),
    ]


def serve_forever(settings: Settings, limit: int | None = None) -> None:
    from prefect import serve

    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")
    serve(
        *deployments(settings), limit=limit, pause_on_shutdown=False, print_starting_message=False
    )
