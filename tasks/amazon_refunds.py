"""What Amazon already refunded for a returned item, from both of Amazon's witnesses: its
financial events (Finances API, which may lag up to 48 hours) and the returns report's `Refunded
Amount`, the latest of which ingestion keeps on the case (`details["amazon_report"]`)."""

from __future__ import annotations

from henpin.cases import return_request as texts
from henpin.cases.money import RefundFit, with_report_figure
from henpin.context import adapter, store_url
from henpin.domain import AlreadyRefunded, Money, Order, ReturnRequest
from henpin.outbox.refund_limits import fit_new_refund
from henpin.store.db import session_scope
from henpin.store.models import Case
from tasks.kinds import amazon_task, store_task


def reported_refund(case_id: int, ret: ReturnRequest) -> Money | None:
    """The returns report's latest `Refunded Amount` for the case's item."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        latest = (case.details or {}).get("amazon_report") if case is not None else None
    news = ReturnRequest.model_validate(latest) if latest else ret
    return news.refunded_amount or ret.refunded_amount


@store_task("with-returns-report-refunds", fresh=True)
def with_returns_report(
    case_id: int, ret: ReturnRequest, order: Order, shown: AlreadyRefunded
) -> AlreadyRefunded:
    """Amazon's financial events for the order, raised to the returns report's figure for the
    returned item where the report shows more (the larger of the two counts)."""
    item = texts.returned_item(ret, order)
    return with_report_figure(shown, item.order_item_id, reported_refund(case_id, ret))


#: Case.details key of what was refunded when Amazon's report showed the request closed.
CLOSED_CHECK = "refund_when_closed_at_amazon"


@amazon_task("check-refund-when-closed-at-amazon", fresh=True)
def refund_when_closed_at_amazon(case_id: int, ret: ReturnRequest, order: Order) -> RefundFit:
    """Amazon's report shows the request Closed: what was refunded on the returned item
    (Amazon's financial events raised to the report's Refunded Amount, and every case's
    refunds), held against a full item-price refund. Kept on the case, so that a resumed flow
    closes the same way."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if CLOSED_CHECK in (case.details or {}):
            return RefundFit.model_validate(case.details[CLOSED_CHECK])
    shown = adapter().refunds_for_order(order.order_id, marketplace_id=order.marketplace_id)
    shown = with_report_figure(
        shown, texts.returned_item(ret, order).order_item_id, reported_refund(case_id, ret)
    )
    fit = fit_new_refund(store_url(), order, texts.item_price_refund(ret, order), shown)
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.details = {**(case.details or {}), CLOSED_CHECK: fit.model_dump(mode="json")}
    return fit


#: Case.details key of the arrival check's answer (kept: a resumed flow must take the same path).
ARRIVAL_CHECK = "amazon_refund_on_arrival"


@amazon_task("check-amazon-refund-on-arrival", fresh=True)
def amazon_refund_on_arrival(case_id: int, ret: ReturnRequest, order: Order) -> RefundFit | None:
    """When the item came back: had Amazon refunded its price itself, leaving nothing to refund
    (refund at first scan, a missed window)? A full item-price refund is checked against
    everything refunded (Amazon's financial events raised to the returns report's figure, and
    every case's refunds of the order); the answer when it finds nothing left and part of it
    refunded by Amazon, else None. Checked once per case and kept on it, so that a flow resumed
    later takes the same path."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if ARRIVAL_CHECK in (case.details or {}):
            kept = case.details[ARRIVAL_CHECK]
            return RefundFit.model_validate(kept) if kept else None
    shown = adapter().refunds_for_order(order.order_id, marketplace_id=order.marketplace_id)
    shown = with_report_figure(
        shown, texts.returned_item(ret, order).order_item_id, reported_refund(case_id, ret)
    )
    fit = fit_new_refund(store_url(), order, texts.item_price_refund(ret, order), shown)
    found = fit if fit.refund is None and fit.by_amazon is not None else None
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        answer = found.model_dump(mode="json") if found else None
        case.details = {**(case.details or {}), ARRIVAL_CHECK: answer}
    return found
