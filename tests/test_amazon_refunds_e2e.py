"""Returns Amazon refunds itself, end to end on real parts (Prefect server, the emulator over HTTP
through python-amazon-sp-api, SQLite case store): a US return Amazon authorized and refunded at
the parcel's first scan closes as refunded by Amazon with nothing sent; a return the seller did
not refund within two business days of its delivery is refunded by Amazon in simulated time, and
Henpin's refund step then sends nothing.
"""

# ruff: noqa: F811 - the e2e fixtures of test_case_types_e2e are imported and used by name

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.test_case_types_e2e import (  # noqa: F401 - fixtures used by name
    answer,
    control,
    emulator,
    henpin,
    mailbox,
    settle_amazon,
    shipped_order,
    the_case,
)
from tests.test_refund_twice_e2e import payment_feeds
from tests.test_returns_e2e import (  # noqa: F401 - the fixture is used by its autouse
    events,
    fresh_returns_reports,
    poll_amazon,
    post_return,
)

pytestmark = [pytest.mark.e2e]

US = "ATVPDKIKX0DER"
DAY = 86400


def amazon_refunds_seen_by_henpin(emulator: Any, order_id: str) -> Any:
    """What python-amazon-sp-api reads from listFinancialEventsByOrderId, as Henpin does."""
    from tests.test_amazon_adapter import demo_adapter

    return demo_adapter(emulator.url).refunds_for_order(order_id, marketplace_id=US)


def test_refund_at_first_scan_closes_the_case_as_refunded_by_amazon_with_nothing_sent(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000061-0000061"
    control(emulator, "POST", "orders", json=[shipped_order(order_id, price="40.00")])
    record = post_return(emulator, order_id, labelCost="5.00")  # US, in policy, buyer's reason
    assert record["authorizedBy"] == "amazon"
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-received"

    # The buyer drops the parcel off: the carrier's first scan, and Amazon refunds at once.
    rma = record["amazonRmaId"]
    control(emulator, "POST", f"returns/{rma}/advance", json={"to": "inTransit"})
    control(emulator, "POST", "clock/advance", json={"seconds": 60})
    shown = amazon_refunds_seen_by_henpin(emulator, order_id)
    assert shown.amount(f"{order_id[-7:]}01", "Principal") == Decimal("40.00")
    [refund] = control(emulator, "GET", f"orders/{order_id}/refunds")
    assert (refund["refundedBy"], refund["amazonReason"]) == ("AMAZON", "refund at first scan")

    # The parcel arrives; the report shows the delivery and Amazon's refund (less the label).
    control(emulator, "POST", f"returns/{rma}/advance", json={"to": "delivered"})
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.details["amazon_report"]["refunded_amount"] == {
        "amount": "35.00",
        "currency": "USD",
    }
    assert case.waiting_step == "item-after-amazon-refund"  # no refund amount asked
    assert "Amazon already refunded 40.00 USD" in case.question["prompt"]
    answer(henpin, case, "as_expected")
    settle_amazon(emulator, rounds=2)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "refunded-by-amazon"
    [closed] = [e for e in events(henpin, case.id) if e.kind == "closed"]
    assert "Amazon already refunded 40.00 USD" in closed.message
    assert "sent no refund" in closed.message
    assert payment_feeds(emulator, order_id) == []
    assert len(control(emulator, "GET", f"orders/{order_id}/refunds")) == 1


def test_missed_refund_window_amazon_refunds_and_henpin_sends_nothing(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000062-0000062"
    control(
        emulator,
        "PUT",
        "amazon-refund-settings",
        json={"marketplaces": {US: {"missedRefundWindow": True}}},
    )
    control(emulator, "POST", "orders", json=[shipped_order(order_id, price="40.00")])
    record = post_return(emulator, order_id, refundAtFirstScan=False)  # Amazon left it out
    control(emulator, "POST", f"returns/{record['amazonRmaId']}/advance", json={"to": "delivered"})
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-condition"  # nothing refunded yet: the usual steps
    assert control(emulator, "GET", f"orders/{order_id}/refunds") == []

    # The seller lets the two business days pass (at most four days with a weekend).
    control(emulator, "POST", "clock/advance", json={"seconds": 4 * DAY + 600})
    [refund] = control(emulator, "GET", f"orders/{order_id}/refunds")
    assert (refund["refundedBy"], refund["amazonReason"]) == ("AMAZON", "missed refund window")
    delivered = control(emulator, "GET", "returns", params={"orderId": order_id})[0]
    late = refund["time"] > delivered["returnDeliveryDate"]
    assert late and _business_days_between(delivered["returnDeliveryDate"], refund["time"]) == 2

    condition = case.question["fields"][0]["options"][0]
    answer(henpin, case, "inspected", condition=condition)
    case = the_case(henpin, order_id, "return-request")
    answer(henpin, case, "refund_proposed")
    settle_amazon(emulator, rounds=2)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "refunded-by-amazon"
    assert payment_feeds(emulator, order_id) == []
    assert len(control(emulator, "GET", f"orders/{order_id}/refunds")) == 1


def _business_days_between(start: str, end: str) -> int:
    """Weekdays stepped over from ``start`` to ``end`` in Los Angeles time (amazon.com's)."""
    from zoneinfo import ZoneInfo

    from emulator.clock import parse_time

    zone = ZoneInfo("America/Los_Angeles")
    day, last = parse_time(start).astimezone(zone), parse_time(end).astimezone(zone)
    count = 0
    while day + timedelta(days=1) <= last:
        day += timedelta(days=1)
        count += day.weekday() < 5
    return count
