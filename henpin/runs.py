"""Henpin's dealings with the Prefect API: start a case's flow run, resume a waiting one.

Deployment names are fixed here, so the runner (`henpin runner`) and the code that starts runs
agree on them.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.flow_runs import resume_flow_run

from henpin.domain import CaseType
from henpin.marketplaces import MARKETPLACES

log = logging.getLogger(__name__)

DEPLOYMENT = "henpin"  # every Henpin flow is served under this deployment name


def deployment_name(case_type: CaseType) -> str:
    return f"{case_type.value}/{DEPLOYMENT}"


def case_run_name(case_type: CaseType, order_id: str) -> str:
    """The name the Prefect UI shows, e.g. `cancel-request 113-1234567-1234567`."""
    return f"{case_type.value} {order_id}"


def case_run_tags(case_type: CaseType, marketplace_id: str) -> list[str]:
    m = MARKETPLACES.get(marketplace_id)
    return [f"case:{case_type.value}", f"marketplace:{m.country if m else marketplace_id}"]


def start_case_run(
    case_type: CaseType,
    case_id: int,
    order_id: str,
    marketplace_id: str,
    parameters: dict[str, Any],
) -> str:
    """Create the case's flow run (idempotent per order and type: starting twice returns the same run)."""
    run = cast(
        FlowRun,
        run_deployment(
            deployment_name(case_type),
            parameters=parameters,
            flow_run_name=case_run_name(case_type, order_id),
            tags=case_run_tags(case_type, marketplace_id),
            idempotency_key=f"henpin:{case_type.value}:{order_id}",  # one case per order and type
            timeout=0,
            as_subflow=False,
        ),
    )
    return str(run.id)


class ResumeResult:
    RESUMED = "resumed"
    NOT_WAITING = "not-waiting"  # the run is not suspended (yet, or any more)
    FAILED = "failed"


def resume_case_run(flow_run_id: str, run_input: dict[str, Any] | None) -> str:
    """Resume a suspended case run; say what happened instead of raising for expected races."""
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        if not run.state or not run.state.is_paused():
            return ResumeResult.NOT_WAITING
        resume_flow_run(UUID(flow_run_id), run_input=run_input)
        return ResumeResult.RESUMED
    except ObjectNotFound:
        return ResumeResult.FAILED
    except Exception as exc:  # the Prefect API down or refusing: the sweep will retry
        if "isn't paused" in str(exc) or "not paused" in str(exc).lower():
            return ResumeResult.NOT_WAITING
        log.warning("could not resume flow run %s: %s", flow_run_id, exc)
        return ResumeResult.FAILED


def run_state_name(flow_run_id: str) -> str | None:
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
        return run.state.name if run.state else None
    except Exception:
        return None
