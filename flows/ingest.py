"""Ingestion: find new cases on Amazon and open one case per order and type.

Runs on a schedule (`henpin up`) and on demand (`henpin poll`):
- one paged searchOrders (with includedData, never one getOrder per order) finds buyers'
  cancel requests and parcels coming back (refused, unclaimed, or undeliverable because of the
  address): one parcel case per order, a later reason recorded on it or handing a waiting
  refused-delivery case over to an address-error case;
- Amazon's returns report (Reports API) finds return requests.
Cancels asked by message arrive by e-mail: operators open those cases from the inbox.
"""

from __future__ import annotations

from prefect import flow

from henpin.domain import CaseType
from tasks.ingest import (
    Opened,
    advance_checkpoint,
    flag_unreadable_order,
    open_cancel_request_case,
    open_return_request_case,
    open_returning_parcel_case,
    search_window,
    utcnow,
)
from tasks.orders import find_return_requests, read_order, scan_updated_orders
from tasks.store import settings

ORDERS = "ingest:orders"
RETURNS = "ingest:returns"


@flow(name="ingest", log_prints=True)
def ingest() -> list[Opened]:
    started_at = utcnow()
    marketplaces = settings().marketplaces

    found = scan_updated_orders(marketplaces, search_window(ORDERS, started_at))
    opened = [open_cancel_request_case(order) for order in found.cancel_requests]
    opened += [open_returning_parcel_case(order) for order in found.returning_parcels]
    for bad in found.unreadable:
        flag_unreadable_order(CaseType.CANCEL_REQUEST, bad)
    advance_checkpoint(ORDERS, started_at)

    returns = find_return_requests(marketplaces, search_window(RETURNS, started_at))
    opened += [open_return_request_case(ret, read_order(ret.order_id)) for ret in returns]
    advance_checkpoint(RETURNS, started_at)

    new = [o for o in opened if o.new]
    print(
        f"{len(found.cancel_requests)} cancel request(s), {len(found.returning_parcels)} "
        f"returning parcel(s), {len(returns)} return request(s); {len(new)} new case(s); "
        f"{len(found.unreadable)} unreadable order(s) flagged"
    )
    return opened
