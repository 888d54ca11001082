"""Return requests (control API) and the returns reports (Reports API 2021-06-30), read with
python-amazon-sp-api's ``Reports`` class over HTTP; simulated time is moved, never slept."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from sp_api.api import Reports
from sp_api.auth import access_token_client as token_cache
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiNotFoundException

from emulator.clock import iso, parse_time
from emulator.returns_report import FLAT_FILE, FLAT_FILE_COLUMNS, XML
from emulator.server import EmulatorServer
from tests.test_emulator import (
    GOOD_CREDENTIALS,
    UK,
    US,
    LocalMarketplace,
    advance,
    envelope,
    http,
    refund_message,
    submit,
    token_client_for,
)

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

CHEAP = "113-9000014-0000014"  # Demo Phone Stand, 7.99 USD, delivered
NORMAL = "113-9000015-0000015"  # Demo Bluetooth Speaker, 59.99 USD
UK_LAMP = "204-9000016-0000016"
UNSHIPPED = "113-9000002-0000002"


def reports_api(url: str, marketplace_id: str = US) -> Reports:
    return Reports(
        marketplace=LocalMarketplace(url, marketplace_id),
        credentials=GOOD_CREDENTIALS,
        auth_token_client_class=token_client_for(url),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def url(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh account with the demo orders and demo return requests."""
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()
    http.post(f"{server.url}/_emulator/seed-demo").raise_for_status()
    return server.url


def now_of(url: str) -> str:
    now: str = http.get(f"{url}/_emulator/clock").json()["now"]
    return now


def days_before(url: str, days: float) -> str:
    return iso(parse_time(now_of(url)) - timedelta(days=days))


def finished(url: str, reports: Reports, report_id: str) -> dict[str, Any]:
    advance(url, 61)
    report: dict[str, Any] = reports.get_report(report_id).payload
    return report


def rows(document: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(document), delimiter="\t"))


def flat_report_rows(url: str, days: float, marketplace_id: str = US) -> list[dict[str, str]]:
    """The lines of a flat-file returns report of the last `days`, asked for and read now."""
    reports = reports_api(url)
    report_id = reports.create_report(
        reportType=FLAT_FILE, dataStartTime=days_before(url, days), marketplaceIds=[marketplace_id]
    ).payload["reportId"]
    report = finished(url, reports, report_id)
    document = reports.get_report_document(report["reportDocumentId"], download=True)
    return rows(document.payload["document"])


def test_flat_file_returns_report_from_demo_returns(url: str) -> None:
    reports = reports_api(url)
    created = reports.create_report(
        reportType=FLAT_FILE, dataStartTime=days_before(url, 7), marketplaceIds=[US]
    )
    report_id = created.payload["reportId"]
    assert reports.get_report(report_id).payload["processingStatus"] == "IN_QUEUE"
    advance(url, 31)
    assert reports.get_report(report_id).payload["processingStatus"] == "IN_PROGRESS"
    report = finished(url, reports, report_id)
    assert report["processingStatus"] == "DONE" and report["reportType"] == FLAT_FILE
    assert report["dataStartTime"].endswith("+00:00")  # the Reports API's own time spelling
    document = reports.get_report_document(report["reportDocumentId"], download=True)
    text = document.payload["document"]
    assert text.splitlines()[0].split("\t") == list(FLAT_FILE_COLUMNS)
    found = rows(text)
    assert [r["Order ID"] for r in found] == [CHEAP, NORMAL]  # oldest request first, US only
    cheap = found[0]
    assert (cheap["Merchant SKU"], cheap["ASIN"], cheap["Return quantity"]) == (
        "DEMO-PHONE-STAND",
        "B0DEMO1401",
        "1",
    )
    assert cheap["Return Reason"] == "CR-UNWANTED_ITEM" and cheap["In policy"] == "Y"
    assert cheap["Order Amount"] == "7.99" and cheap["Currency code"] == "USD"
    # In policy, in the US: Amazon authorized it itself (help G9DH343PLXALFTUW).
    assert cheap["Return request status"] == "Authorized" and cheap["Refunded Amount"] == ""
    assert cheap["Amazon RMA ID"].endswith("RMA")
    day, month, year = cheap["Return request date"].split("-")
    assert len(day) == 2 and month.isalpha() and len(year) == 4  # e.g. 26-Nov-2026
    # Amazon's report has no column for the buyer's comment: it stays on the control API.
    assert not any("comment" in column.lower() for column in FLAT_FILE_COLUMNS)
    assert "stops charging" not in text


def test_returns_added_later_and_refunds_show_in_the_next_report(url: str) -> None:
    http.patch(
        f"{url}/_emulator/orders/{UNSHIPPED}",
        json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}},
    ).raise_for_status()
    added = http.post(
        f"{url}/_emulator/returns",
        json=[
            {
                "orderId": UNSHIPPED,
                "sku": "DEMO-CASE-BLACK",
                "quantity": 2,
                "returnReason": "CR-SWITCHEROO",
                "customerComments": "Wrong colour inside the box.",
                "status": "Approved",
                "inPolicy": False,
                "labelType": "AmazonPrePaidLabel",
                "labelCost": "4.14",
                "trackingId": "DEMO-TRACK-1",
            }
        ],
    )
    assert added.status_code == 200, added.text
    assert added.json()["created"] == 1
    (record,) = added.json()["returns"]
    assert record["orderItemId"] == "90000020000001" and record["amazonRmaId"].endswith("RMA")
    item = record["orderItemId"]
    document = envelope("OrderAdjustment", [refund_message(1, UNSHIPPED, item, "9.99", "USD")])
    submit(url, "POST_PAYMENT_ADJUSTMENT_DATA", document)
    advance(url, 61)
    (line,) = [r for r in flat_report_rows(url, 1) if r["Order ID"] == UNSHIPPED]
    assert (line["Return Reason"], line["Return quantity"], line["In policy"]) == (
        "CR-SWITCHEROO",
        "2",
        "N",
    )
    assert (line["Label type"], line["Label cost"], line["Tracking ID"]) == (
        "AmazonPrePaidLabel",
        "4.14",
        "DEMO-TRACK-1",
    )
    assert line["Refunded Amount"] == "9.99" and line["Order Amount"] == "19.98"
    listed = http.get(f"{url}/_emulator/returns", params={"orderId": UNSHIPPED}).json()
    assert listed[0]["customerComments"] == "Wrong colour inside the box."


def test_xml_report_groups_items_by_rma(url: str) -> None:
    reports = reports_api(url, UK)
    report_id = reports.create_report(
        reportType=XML, dataStartTime=days_before(url, 7), marketplaceIds=[UK]
    ).payload["reportId"]
    report = finished(url, reports, report_id)
    text = reports.get_report_document(report["reportDocumentId"], download=True).payload[
        "document"
    ]
    root = ET.fromstring(text.encode())
    (details,) = root.iter("return_details")
    assert details.findtext("order_id") == UK_LAMP
    assert details.findtext("item_details/return_reason_code") == "CR-DAMAGED_BY_CARRIER"
    assert details.findtext("label_details/currency_code") == "GBP"
    assert details.findtext("a_to_z_claim") == "false"


def test_empty_window_is_cancelled_without_document(url: str) -> None:
    reports = reports_api(url)
    start = days_before(url, 59)
    report_id = reports.create_report(
        reportType=FLAT_FILE,
        dataStartTime=start,
        dataEndTime=days_before(url, 30),
        marketplaceIds=[US],
    ).payload["reportId"]
    report = finished(url, reports, report_id)
    assert report["processingStatus"] == "CANCELLED" and "reportDocumentId" not in report


def test_create_report_refuses_bad_requests(url: str) -> None:
    reports = reports_api(url)
    for body in (
        {"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": [US]},
        {"reportType": FLAT_FILE, "dataStartTime": days_before(url, 61), "marketplaceIds": [US]},
        {"reportType": FLAT_FILE, "dataStartTime": days_before(url, -1), "marketplaceIds": [US]},
        {"reportType": FLAT_FILE, "dataStartTime": "yesterday", "marketplaceIds": [US]},
    ):
        with pytest.raises(SellingApiBadRequestException):
            reports.create_report(**body)
    with pytest.raises(SellingApiNotFoundException):
        reports.get_report("1")


def test_get_reports_filters_pages_and_cancel(url: str) -> None:
    reports = reports_api(url)
    ids = [
        reports.create_report(
            reportType=FLAT_FILE, dataStartTime=days_before(url, 7), marketplaceIds=[US]
        ).payload["reportId"]
        for _ in range(3)
    ]
    reports.cancel_report(ids[0])
    first = reports.get_reports(reportTypes=[FLAT_FILE], pageSize=2)
    assert [r["reportId"] for r in first.payload["reports"]] == ids[:0:-1]  # newest first
    second = reports.get_reports(nextToken=first.next_token)
    assert [r["reportId"] for r in second.payload["reports"]] == [ids[0]]
    assert second.payload["reports"][0]["processingStatus"] == "CANCELLED"
    queued = reports.get_reports(reportTypes=[FLAT_FILE], processingStatuses=["IN_QUEUE"])
    assert len(queued.payload["reports"]) == 2
    advance(url, 31)
    with pytest.raises(SellingApiBadRequestException):
        reports.cancel_report(ids[1])  # IN_PROGRESS now


def test_control_returns_validation_is_all_or_nothing(url: str) -> None:
    good = {"orderId": CHEAP, "sku": "DEMO-PHONE-STAND", "returnReason": "CR-DEFECTIVE"}
    answer = http.post(
        f"{url}/_emulator/returns",
        json=[
            good,
            {"orderId": UNSHIPPED, "sku": "DEMO-CASE-BLACK", "returnReason": "CR-DEFECTIVE"},
            {"orderId": CHEAP, "orderItemId": "1", "returnReason": "broken", "colour": "red"},
            dict(good, quantity=2),
        ],
    )
    assert answer.status_code == 400
    paths = [p["path"] for p in answer.json()["problems"]]
    assert paths == [
        "$[1].orderId",
        "$[2].colour",
        "$[2].orderItemId",
        "$[2].returnReason",
    ]
    assert len(http.get(f"{url}/_emulator/returns").json()) == 3  # the demo ones only
    too_many = http.post(f"{url}/_emulator/returns", json=[dict(good, quantity=1)])
    assert too_many.status_code == 400  # the demo return already takes the one ordered
    assert "ordered 1 time" in too_many.json()["error"]
