"""Ingestion: find new cases on Amazon and open one case per order and type.

Runs on a schedule (`henpin up`) and on demand (`henpin poll`):
- one paged searchOrders (with includedData, never one getOrder per order) finds buyers'
  cancel requests and parcels coming back (refused, unclaimed, or undeliverable because of the
  address): one parcel case per order, a later reason recorded on it or handing a waiting
  refused-delivery case over to an address-error case;
- Amazon's returns report (Reports API) finds return requests. Amazon makes a report
  asynchronously (createReport, then getReport until it is done: developer-docs "Verify that
  report processing is complete"), so every region's is asked for at the start of the pass and
  read after its orders.
Cancels asked by message arrive by e-mail: operators open those cases from the inbox.
The returns report also tells open return cases what Amazon did since (authorized or closed
the request, the item was delivered): it reaches back to the oldest open one. A request Amazon
already shows closed opens no case.

Each SP-API region (NA, EU, FE) of the watched marketplaces is read on its own, with its own
login and its own checkpoints: a region whose login Amazon refuses is left for a later pass
(`henpin status` shows it refused; nothing of its window is skipped) while the others go on.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from henpin.context import now, settings
from henpin.domain import AuthorizationStatus, CaseType
from tasks.ingest import (
    Opened,
    advance_checkpoint,
    flag_unreadable_order,
    follow_return_request,
    open_cancel_request_case,
    open_return_request_case,
    open_returning_parcel_case,
    returns_report_since,
    search_window,
)
from tasks.kinds import each, side_by_side
from tasks.orders import (
    AmazonRead,
    ask_for_returns_report,
    find_return_requests,
    read_order_now,
    scan_updated_orders,
)

ORDERS = "ingest:orders"
RETURNS = "ingest:returns"
#: New cases opened (and their flow runs created) side by side: each waits mostly on Prefect.
OPENED_AT_ONCE = 4
#: Orders handed to those threads and not yet opened, at most: the rest wait as plain data.
OPENING_IN_FLIGHT = 2 * OPENED_AT_ONCE


@flow(name="ingest", log_prints=True, task_runner=side_by_side(OPENED_AT_ONCE))
def ingest() -> list[Opened]:
    started_at = now()
    regions = settings().watched_regions
    # Amazon makes a returns report asynchronously: every region's is asked for first, so
    # they are made side by side while the orders are read, not one region after another.
    since = {
        region: returns_since(region, marketplaces, started_at)
        for region, marketplaces in regions.items()
    }
    asked = {
        region: ask_for_returns_report(marketplaces, since[region])
        for region, marketplaces in regions.items()
    }
    opened: list[Opened] = []
    for region, marketplaces in regions.items():
        opened += ingest_region(region, marketplaces, started_at, since[region], asked[region])
    return opened


def returns_since(region: str, marketplaces: list[str], started_at: datetime) -> datetime:
    """Where this pass's returns report of the region starts (its checkpoint, or its oldest
    open return case)."""
    window = search_window(f"{RETURNS}:{region}", started_at, before_regions=RETURNS)
    return returns_report_since(window, marketplaces)


def ingest_region(
    region: str,
    marketplaces: list[str],
    started_at: datetime,
    returns_from: datetime,
    asked: dict[str, str],
) -> list[Opened]:
    """One region's new cases: its orders (cancel requests, parcels coming back), then its
    return requests since `returns_from`, from the reports `asked` for at the start of the
    pass (its orders open no return case, so where the report starts has not moved)."""
    orders_checkpoint, returns_checkpoint = f"{ORDERS}:{region}", f"{RETURNS}:{region}"
    window = search_window(orders_checkpoint, started_at, before_regions=ORDERS)
    found = scan_updated_orders(marketplaces, window)
    if found.login_refused:
        print(f"{region}: Amazon refused the login; this region is read again next pass")
        return []
    if found.not_answered:
        return amazon_did_not_answer(region, found)
    opened = each(open_cancel_request_case, found.cancel_requests, in_flight=OPENING_IN_FLIGHT)
    opened += each(open_returning_parcel_case, found.returning_parcels, in_flight=OPENING_IN_FLIGHT)
    for bad in found.unreadable:
        flag_unreadable_order(CaseType.CANCEL_REQUEST, bad)
    advance_checkpoint(orders_checkpoint, started_at)

    returns = find_return_requests(marketplaces, returns_from, asked)
    if returns.not_answered:
        return amazon_did_not_answer(region, returns)
    if returns.login_refused:
        print(f"{region}: Amazon refused the login; return requests are read again next pass")
    else:
        advance_checkpoint(returns_checkpoint, started_at)
    new_requests = [
        ret
        for ret in returns.requests
        if not follow_return_request(ret)
        and ret.authorization_status is not AuthorizationStatus.CLOSED
    ]
    for ret in new_requests:
        read = read_order_now(ret.order_id, ret.marketplace_id)
        if read.order is None:
            return amazon_did_not_answer(region, read)
        opened.append(open_return_request_case(ret, read.order))

    new = [o for o in opened if o.new]
    print(
        f"{region}: {len(found.cancel_requests)} cancel request(s), "
        f"{len(found.returning_parcels)} returning parcel(s), "
        f"{len(returns.requests)} return request(s); "
        f"{len(new)} new case(s); {len(found.unreadable)} unreadable order(s) flagged"
    )
    return opened


def amazon_did_not_answer(region: str, read: AmazonRead) -> list[Opened]:
    """One region's Amazon failing (unavailable, a FATAL report) does not stop the others; its
    checkpoints stay where they were, so it is read again next pass."""
    print(f"{region}: ingestion failed, read again next pass: {read.not_answered}")
    return []
