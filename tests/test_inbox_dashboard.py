"""The dashboard's numbers (henpin.metrics over a real store) and the page that draws them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from henpin.app import metrics
from henpin.app.metrics import CancellationCount, FeesRecovered, OpenCases, RefundTotal
from tests.test_inbox_support import (
    closed_case,
    decision,
    fresh_store,
    on_page,
    refund_action,
    signed_in,
    waiting_case,
)

NOW = datetime.now(UTC)
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_store(tmp_path, monkeypatch)
    # Cancellations: one order the buyer cancelled after asking by message (two linked cases,
    # one order), another the buyer cancelled, one the seller cancelled.
    closed_case(url, "111-0000000-0000401", "cancelled-buyer-canceled")
    closed_case(url, "111-0000000-0000401", "handed-to-cancel-request", type="cancel-by-message")
    closed_case(url, "111-0000000-0000402", "cancelled-buyer-canceled")
    closed_case(url, "302-0000000-0000403", "cancelled-by-seller", marketplace_id=DE)
    # Refunds: two applied on a return (DE), one still waiting to be sent (not counted).
    ret = closed_case(url, "302-0000000-0000404", "refunded-partly", type="return-request")
    refund_action(url, ret, "r1", "CustomerReturn", "20.00")
    refund_action(url, ret, "r2", "CustomerReturn", "5.00")
    refund_action(url, ret, "r3", "CustomerReturn", "9.00", status="pending")
    # Fees: one address error cancelled for reorder (the option's money), one recorded as money.
    options = [
        {"choice": "cancel_for_reorder", "fee_recovered": {"amount": "4.80", "currency": "EUR"}}
    ]
    reorder = closed_case(
        url,
        "302-0000000-0000405",
        "cancelled-for-reorder",
        type="address-error",
        marketplace_id=DE,
        details={"options": options},
    )
    decision(url, reorder, "cancel_for_reorder", NOW)
    closed_case(
        url,
        "302-0000000-0000406",
        "refunded-in-full",
        type="refused-delivery",
        marketplace_id=DE,
        details={"money": {"fees_recovered": {"amount": "1.20", "currency": "EUR"}}},
    )
    # Time to decision: 30 and 90 minutes after opening; one left to its deadline.
    for order_id, minutes, source in [
        ("501", 30, "inbox"),
        ("502", 90, "cli"),
        ("503", 60, "deadline"),
    ]:
        case_id = waiting_case(
            url,
            f"111-0000000-0000{order_id}",
            timedelta(hours=1),
            created_at=NOW - timedelta(days=2),
        )
        decision(
            url, case_id, "cancel", NOW - timedelta(days=2) + timedelta(minutes=minutes), source
        )
    return url


def test_cancellations_buyer_versus_seller_are_counted_per_order(store_url: str) -> None:
    assert metrics.cancellations_by_cause(store_url) == [
        CancellationCount(DE, "seller", 1),
        CancellationCount(US, "buyer", 2),
    ]


def test_refunds_applied_by_reason_and_marketplace(store_url: str) -> None:
    assert metrics.refunds_by_reason(store_url) == [
        RefundTotal("CustomerReturn", DE, "EUR", 2, Decimal("25.00"))
    ]


def test_fees_recovered_from_recorded_money_or_the_chosen_option(store_url: str) -> None:
    assert metrics.fees_recovered(store_url) == [FeesRecovered(DE, "EUR", 2, Decimal("6.00"))]


def test_time_to_decision_and_open_cases_by_age(store_url: str) -> None:
    times = metrics.time_to_decision(store_url)
    # Minutes are measured from the store's own timestamps: allow a few seconds of a busy
    # machine between opening and deciding "at once".
    assert [(t.case_type, t.by_person, t.by_deadline) for t in times] == [
        ("address-error", 1, 0),  # decided as it opened
        ("cancel-request", 2, 1),
    ]
    assert [(t.median_minutes, t.p90_minutes) for t in times] == [
        (pytest.approx(0.0, abs=0.5), pytest.approx(0.0, abs=0.5)),
        (pytest.approx(60.0, abs=0.5), pytest.approx(84.0, abs=0.5)),
    ]
    assert metrics.open_cases_by_age(store_url) == [
        OpenCases("1d-3d", "cancel-request", "waiting", 3)
    ]
    # The fixture's closed cases were stored just now, not at import time (NOW): a window that
    # starts after them counts nothing.
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert metrics.cancellations_by_cause(store_url, since=later) == []


def test_the_dashboard_page_shows_the_numbers(store_url: str) -> None:
    at = on_page(signed_in(), "dashboard")
    assert not at.exception
    assert [m.value for m in at.metric[:3]] == ["2", "1", "33%"]
    assert "6,00\xa0€" in [m.value for m in at.metric]  # as amazon.de writes it
    assert "CustomerReturn" in at.dataframe[0].value.to_string()
    assert len(at.get("vega_lite_chart")) == 3
