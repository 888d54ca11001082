# ruff: noqa: F811 - fixtures of test_emulator_reports are imported and used by name
"""Return requests on Amazon's side in the emulator: who authorizes them (per-marketplace return
settings), the seller's actions in Manage Returns (control API), and their life over simulated
time as the control API and the returns report show it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from emulator.clock import iso, parse_time
from emulator.returns_report import report_date
from tests.test_emulator import JP, US, advance, http
from tests.test_emulator_reports import (  # noqa: F401 - server, url: fixtures used by name
    flat_report_rows,
    now_of,
    server,
    url,
)

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

UK_LAMP = "204-9000016-0000016"  # demo: UK, in policy, manual by default
DAY = 86400


@pytest.fixture
def emulator_url(url: str) -> Iterator[str]:
    yield url
    http.delete(f"{url}/_emulator/return-settings").raise_for_status()


def control(url: str, method: str, path: str, **kw: Any) -> Any:
    answer = http.request(method, f"{url}/_emulator/{path}", **kw)
    assert answer.status_code < 300, answer.text
    return answer.json()


def the_return(url: str, order_id: str) -> dict[str, Any]:
    (record,) = control(url, "GET", "returns", params={"orderId": order_id})
    return dict(record)


SOCKS = "113-9000006-0000006"  # demo: shipped, no return yet


def socks_return(url: str, **fields: Any) -> dict[str, Any]:
    """A return request on the demo's shipped socks, as the control API answers it."""
    entry = {"orderId": SOCKS, "sku": "DEMO-SOCKS-3PK", "returnReason": "CR-DEFECTIVE", **fields}
    (record,) = control(url, "POST", "returns", json=[entry])["returns"]
    return dict(record)


def ship(url: str, order_id: str) -> None:
    control(
        url, "PATCH", f"orders/{order_id}", json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}}
    )


def test_return_settings_default_and_change(emulator_url: str) -> None:
    url = emulator_url
    settings = control(url, "GET", "return-settings")
    assert settings["default"] == "manual"
    assert settings["marketplaces"] == {US: "authorizeInPolicy"}
    refused = http.put(f"{url}/_emulator/return-settings", json={"marketplaces": {US: "manual"}})
    assert refused.status_code == 400 and "G9DH343PLXALFTUW" in refused.json()["error"]
    bad = http.put(f"{url}/_emulator/return-settings", json={"marketplaces": {JP: "sometimes"}})
    assert bad.status_code == 400
    changed = control(url, "PUT", "return-settings", json={"marketplaces": {JP: "authorizeAll"}})
    assert changed["marketplaces"] == {US: "authorizeInPolicy", JP: "authorizeAll"}
    assert control(url, "DELETE", "return-settings")["marketplaces"] == {US: "authorizeInPolicy"}


def test_amazon_authorizes_by_the_marketplace_setting(emulator_url: str) -> None:
    url = emulator_url
    us = the_return(url, "113-9000015-0000015")  # demo: US, in policy
    assert (us["status"], us["stage"], us["authorizedBy"]) == ("Authorized", "authorized", "amazon")
    assert us["authorizedAt"] == us["returnRequestDate"]  # at once
    uk = the_return(url, UK_LAMP)
    assert (uk["status"], uk["stage"], uk["authorizedAt"]) == ("Pending", "pending", None)

    order_id = "113-9000005-0000005"
    ship(url, order_id)
    (out,) = control(
        url,
        "POST",
        "returns",
        json=[
            {
                "orderId": order_id,
                "sku": "DEMO-NOTEBOOK-A5",
                "returnReason": "CR-UNWANTED_ITEM",
                "inPolicy": False,
            }
        ],
    )["returns"]
    assert out["status"] == "Pending"  # out of policy: the US seller answers it

    control(
        url, "PUT", "return-settings", json={"marketplaces": {"A1F83G8C2ARO7P": "authorizeAll"}}
    )
    control(url, "POST", "seed-demo")  # the UK request again, now under "authorize all"
    assert the_return(url, UK_LAMP)["stage"] == "authorized"


def test_a_return_moves_on_in_simulated_time_and_the_report_shows_it(emulator_url: str) -> None:
    url = emulator_url
    order_id = "113-9000014-0000014"
    record = the_return(url, order_id)
    requested = parse_time(record["returnRequestDate"])

    def report_line() -> dict[str, str]:
        (found,) = [r for r in flat_report_rows(url, 59) if r["Order ID"] == order_id]
        return found

    before = report_line()
    assert (before["Return request status"], before["Return delivery date"]) == ("Authorized", "")

    shipped_at = requested + timedelta(days=1)
    advance(url, (shipped_at - parse_time(now_of(url))).total_seconds() + 60)
    assert the_return(url, order_id)["stage"] == "inTransit"
    advance(url, 3 * DAY)
    delivered = the_return(url, order_id)
    assert delivered["stage"] == "delivered" and delivered["status"] == "Authorized"
    assert parse_time(delivered["returnDeliveryDate"]) == shipped_at + timedelta(days=3)
    line = report_line()
    arrived = parse_time(delivered["returnDeliveryDate"])
    local_day = report_date(arrived.astimezone(ZoneInfo("America/Los_Angeles")))
    assert line["Return delivery date"] == local_day  # the seller's own calendar day

    # Fifty days after the request, a request nothing happened to is closed by Amazon.
    uk = the_return(url, UK_LAMP)
    advance(url, 50 * DAY)
    closed = the_return(url, UK_LAMP)
    assert (closed["status"], closed["stage"], closed["closedBy"]) == ("Closed", "closed", "amazon")
    assert parse_time(closed["closedAt"]) == parse_time(uk["returnRequestDate"]) + timedelta(
        days=50
    )
    assert the_return(url, order_id)["stage"] == "delivered"  # a delivered one stays delivered


def test_the_seller_authorizes_or_closes_a_pending_request(emulator_url: str) -> None:
    url = emulator_url
    rma = the_return(url, UK_LAMP)["amazonRmaId"]
    no_reason = http.post(f"{url}/_emulator/returns/{rma}/close", json={})
    assert no_reason.status_code == 400
    too_early = http.post(f"{url}/_emulator/returns/{rma}/advance", json={"to": "delivered"})
    assert too_early.status_code == 409  # not authorized yet
    (authorized,) = control(url, "POST", f"returns/{rma}/authorize")["returns"]
    assert (authorized["status"], authorized["authorizedBy"]) == ("Authorized", "seller")
    again = http.post(f"{url}/_emulator/returns/{rma}/authorize")
    assert again.status_code == 409 and "pending" in again.json()["error"]
    before_authorizing = iso(parse_time(authorized["authorizedAt"]) - timedelta(hours=1))
    early = http.post(
        f"{url}/_emulator/returns/{rma}/advance", json={"to": "delivered", "at": before_authorizing}
    )
    assert early.status_code == 409  # it cannot arrive before the buyer had a label
    (arrived,) = control(url, "POST", f"returns/{rma}/advance", json={"to": "delivered"})["returns"]
    assert arrived["stage"] == "delivered"
    assert parse_time(arrived["returnDeliveryDate"]) <= parse_time(now_of(url))
    future = iso(parse_time(now_of(url)) + timedelta(hours=2))
    assert (
        http.post(
            f"{url}/_emulator/returns/{rma}/advance", json={"to": "delivered", "at": future}
        ).status_code
        == 409
    )
    assert http.post(f"{url}/_emulator/returns/NOSUCHRMA/authorize").status_code == 404

    pending = socks_return(url, inPolicy=False)
    (closed,) = control(
        url, "POST", f"returns/{pending['amazonRmaId']}/close", json={"reason": "Window expired"}
    )["returns"]
    assert (closed["status"], closed["closedBy"], closed["closeReason"]) == (
        "Closed",
        "seller",
        "Window expired",
    )


def test_a_status_set_by_hand_never_moves(emulator_url: str) -> None:
    url = emulator_url
    record = socks_return(url, status="Approved")
    advance(url, 10 * DAY)
    shown = the_return(url, SOCKS)
    assert (shown["status"], shown["stage"]) == ("Approved", "asSet")
    assert record["amazonRmaId"] == shown["amazonRmaId"]
