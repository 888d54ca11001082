"""The emulator refuses an amount with more decimals than its currency allows in a payment
adjustment feed: that message fails, the feed's other messages apply (issue 10)."""

from __future__ import annotations

import pytest

from tests import test_emulator
from tests.support import order_json
from tests.test_emulator import (
    JP,
    US,
    US_SHIPPED,
    envelope,
    finished_report,
    first_item,
    http,
    refund_message,
    report_results,
    seed_demo,
    submit,
)

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

# The emulator server (one per module) and a fresh, empty account per test.
server = test_emulator.server
url = test_emulator.url

JP_SHIPPED = "503-0000042-0000042"


def refunds_of(url: str, order_id: str) -> list[str]:
    refunds = http.get(f"{url}/_emulator/orders/{order_id}/refunds").json()
    return [c["amount"] for r in refunds for c in r["components"]]


def test_an_extra_decimal_fails_its_message_and_refunds_nothing(url: str) -> None:
    seed_demo(url)
    item = first_item(url, US_SHIPPED)  # 19.99 USD x 1
    document = envelope(
        "OrderAdjustment",
        [
            refund_message(1, US_SHIPPED, item, "0.019", "USD"),
            refund_message(2, US_SHIPPED, item, "12.345", "USD"),
            refund_message(3, US_SHIPPED, item, "1.50", "USD"),  # exact: applied
        ],
    )
    feed, report = finished_report(url, submit(url, "POST_PAYMENT_ADJUSTMENT_DATA", document, US))
    assert feed["processingStatus"] == "DONE"
    results = report_results(report)
    assert sorted(results) == [1, 2]
    assert results[2]["description"] == (
        "cvc-fractionDigits-valid: Value '12.345' of Principal has 3 fraction digits, but the"
        " number of fraction digits has been limited to 2 for USD."
    )
    assert results[1]["orderId"] == US_SHIPPED
    assert refunds_of(url, US_SHIPPED) == ["1.50"]


def test_fractional_yen_is_refused(url: str) -> None:
    order = order_json(
        JP_SHIPPED, marketplace_id=JP, status="SHIPPED", price="3000", currency="JPY"
    )
    http.post(f"{url}/_emulator/orders", json=[order]).raise_for_status()
    item = first_item(url, JP_SHIPPED)
    document = envelope(
        "OrderAdjustment",
        [
            refund_message(1, JP_SHIPPED, item, "1500.5", "JPY"),
            refund_message(2, JP_SHIPPED, item, "1500", "JPY"),
        ],
    )
    _, report = finished_report(url, submit(url, "POST_PAYMENT_ADJUSTMENT_DATA", document, JP))
    results = report_results(report)
    assert list(results) == [1]
    assert "Value '1500.5' of Principal has 1 fraction digits" in results[1]["description"]
    assert "limited to 0 for JPY" in results[1]["description"]
    assert refunds_of(url, JP_SHIPPED) == ["1500"]
