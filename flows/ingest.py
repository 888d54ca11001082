"""Ingestion: find buyers' cancel requests on Amazon and open one case per order.

Runs on a schedule (`henpin up`) and on demand (`henpin poll`). One paged searchOrders call
per marketplace set, with includedData, never one getOrder per order.
"""

from __future__ import annotations

from prefect import flow

from henpin.domain import CaseType
from tasks.ingest import (
    Opened,
    advance_checkpoint,
    flag_unreadable_order,
    open_cancel_request_case,
    search_window,
    utcnow,
)
from tasks.orders import find_buyer_cancel_requests
from tasks.store import settings

CHECKPOINT = "ingest:cancel-requests"


@flow(name="ingest", log_prints=True)
def ingest() -> list[Opened]:
    started_at = utcnow()
    since = search_window(CHECKPOINT, started_at)
    found = find_buyer_cancel_requests(settings().marketplaces, since)
    opened = [open_cancel_request_case(order) for order in found.orders]
    for bad in found.unreadable:
        flag_unreadable_order(CaseType.CANCEL_REQUEST, bad)
    advance_checkpoint(CHECKPOINT, started_at)
    new = [o for o in opened if o.new]
    print(
        f"{len(found.orders)} buyer cancel request(s) found; {len(new)} new case(s) opened; "
        f"{len(found.unreadable)} unreadable order(s) flagged"
    )
    return opened
