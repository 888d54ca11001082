"""Issue 10, measured: a 1,480 USD cancel request whose items carry Amazon's proceeds but no
unit price was cancelled by the catch-all rule with no one asked. Now the order's value falls
back to the proceeds (the high-value rule asks a person), and an order with neither is never
taken as small: it goes to a person, who is told why. End to end on the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import drive_case_runs, order_json
from tests.test_cancel_request_e2e import (  # noqa: F401 - fixtures
    case_by_order,
    control,
    emulator,
    henpin,
)

pytestmark = [pytest.mark.e2e]

WITH_PROCEEDS = "111-0001480-0001480"
WITH_NOTHING = "111-0001481-0001481"


def without_unit_price(order: dict[str, Any], proceeds: str | None) -> dict[str, Any]:
    item = order["orderItems"][0]
    del item["product"]["price"]
    if proceeds is not None:
        money = {"amount": proceeds, "currencyCode": "USD"}
        item["proceeds"] = {
            "proceedsTotal": money,
            "breakdowns": [{"type": "ITEM", "subtotal": money}],
        }
    return order


def test_unknown_unit_price_never_passes_as_small(henpin: str, emulator: Any) -> None:  # noqa: F811
    from flows.ingest import ingest

    control(
        emulator,
        "POST",
        "orders",
        json=[
            without_unit_price(order_json(WITH_PROCEEDS), "1480.00"),
            without_unit_price(order_json(WITH_NOTHING), None),
        ],
    )
    served = control(emulator, "GET", f"orders/{WITH_PROCEEDS}")
    assert "price" not in served["orderItems"][0]["product"]  # as the issue measured it

    ingest()
    drive_case_runs()

    priced = case_by_order(henpin, WITH_PROCEEDS)
    assert priced.state == "waiting"
    assert priced.recommendation["action"] == "ask_operator"
    assert priced.recommendation["rule"] == "high-value"
    assert "order value 1,480.00 USD is over the 200 USD limit" in priced.recommendation["reason"]

    unknown = case_by_order(henpin, WITH_NOTHING)
    assert unknown.state == "waiting"
    assert unknown.recommendation["action"] == "ask_operator"
    assert unknown.recommendation["rule"] == "value-unknown"
    assert unknown.recommendation["reason"] == (
        "rule high-value cannot be checked: the order's value is unknown: Amazon gave neither a"
        f" unit price nor proceeds for item(s) {WITH_NOTHING[-7:]}01; a person decides"
    )
    assert unknown.recommendation["reason"] in unknown.question["prompt"]

    # Nothing was cancelled on Amazon's side: no feed at all.
    for order_id in (WITH_PROCEEDS, WITH_NOTHING):
        order = control(emulator, "GET", f"orders/{order_id}")
        assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert control(emulator, "GET", "feeds") == []
