"""The tasks' one door into the outbox: an action is stored only while its flow run is not
being cancelled.

Someone may cancel a case's run in the Prefect UI while it reads the order from Amazon; the
housekeeper withdraws what such a run stored (henpin/housekeeping.py `record_cancelled_runs`),
and this door keeps the run from storing more: it asks Prefect (one call) right before storing.
"""

from __future__ import annotations

from prefect.runtime import flow_run
from pydantic import BaseModel

from henpin import outbox
from henpin.context import store_url
from henpin.domain import ActionKind, ClosesCase, FeedType
from henpin.runs import refuse_if_cancelled


def store_action(
    *,
    key: str,
    case_id: int | None,
    kind: ActionKind,
    marketplace_id: str,
    payload: BaseModel,
    feed_type: FeedType | None = None,
    closes_case: ClosesCase | None = None,
) -> int:
    """`outbox.enqueue` into the process's case store, refused (`RunCancelled`, naming the run)
    when the present flow run is cancelling or cancelled in Prefect; outside a flow run it
    stores without asking."""
    refuse_if_cancelled(flow_run.get_id(), f"the {kind.value} action {key}")
    return outbox.enqueue(
        store_url(),
        key=key,
        case_id=case_id,
        kind=kind,
        marketplace_id=marketplace_id,
        payload=payload,
        feed_type=feed_type,
        closes_case=closes_case,
    )
