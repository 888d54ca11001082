"""The SP-API emulator over HTTP, driven by python-amazon-sp-api exactly as Henpin uses it.

One emulator serves the module; each test starts from an empty account (control API reset) and
moves simulated time with the clock endpoint instead of sleeping.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sp_api.api import FeedsV20210630, OrdersV20260101
from sp_api.auth import AccessTokenClient
from sp_api.auth import access_token_client as token_cache
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base.exceptions import (
    SellingApiBadRequestException,
    SellingApiForbiddenException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
)

from emulator.clock import iso, parse_time
from emulator.demo import demo_orders
from emulator.server import EmulatorServer
from emulator.spec import models_available

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

US, UK, DE, JP = "ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A1VC38T7YXB528"
#: One client for control-API calls: a new httpx client per call costs ~90 ms (TLS set-up).
http = httpx.Client(timeout=30)
GOOD_CREDENTIALS = {
    "refresh_token": "Atzr|henpin-demo-refresh-token",
    "lwa_app_id": "henpin-demo-client",
    "lwa_client_secret": "henpin-demo-secret",
}
# Demo orders (see emulator/demo.py) the tests act on.
US_PENDING = "113-9000001-0000001"
US_UNSHIPPED_LOW = "113-9000002-0000002"
US_UNSHIPPED_HIGH = "113-9000003-0000003"
US_SHIPPED = "113-9000006-0000006"
DE_TWO_ITEMS = "304-9000010-0000010"
UNKNOWN_ORDER = "113-0000000-0000000"


@dataclass(frozen=True)
class LocalMarketplace:
    """What python-amazon-sp-api needs of a marketplace, pointed at the emulator."""

    endpoint: str
    marketplace_id: str
    region: str = "NA"


def token_client_for(url: str) -> type[AccessTokenClient]:
    """An LWA client class that posts to the emulator over plain HTTP."""
    return type(
        "EmulatorTokenClient",
        (AccessTokenClient,),
        {"scheme": "http://", "host": url.removeprefix("http://")},
    )


def orders_api(url: str, credentials: dict[str, str] | None = None) -> OrdersV20260101:
    return OrdersV20260101(
        marketplace=LocalMarketplace(url, US),
        credentials=credentials or GOOD_CREDENTIALS,
        auth_token_client_class=token_client_for(url),
    )


def feeds_api(url: str, marketplace_id: str = US) -> FeedsV20210630:
    return FeedsV20210630(
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
    """A fresh, empty account; the library's module-level token cache forgotten too."""
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()
    return server.url


def seed_demo(url: str) -> None:
    http.post(f"{url}/_emulator/seed-demo").raise_for_status()


def advance(url: str, seconds: float) -> dict[str, Any]:
    answer = http.post(f"{url}/_emulator/clock/advance", json={"seconds": seconds})
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def control_order(url: str, order_id: str) -> dict[str, Any]:
    answer = http.get(f"{url}/_emulator/orders/{order_id}")
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def status_of(order: dict[str, Any]) -> str:
    status: str = order["fulfillment"]["fulfillmentStatus"]
    return status


def envelope(message_type: str, messages: list[str]) -> str:
    body = "".join(messages)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">'
        "<Header><DocumentVersion>1.01</DocumentVersion>"
        "<MerchantIdentifier>DEMO</MerchantIdentifier></Header>"
        f"<MessageType>{message_type}</MessageType>{body}</AmazonEnvelope>"
    )


def cancel_message(message_id: int, order_id: str, items: list[tuple[str, str]]) -> str:
    lines = "".join(
        f"<Item><AmazonOrderItemCode>{code}</AmazonOrderItemCode>"
        f"<CancelReason>{reason}</CancelReason></Item>"
        for code, reason in items
    )
    return (
        f"<Message><MessageID>{message_id}</MessageID><OrderAcknowledgement>"
        f"<AmazonOrderID>{order_id}</AmazonOrderID><StatusCode>Failure</StatusCode>{lines}"
        "</OrderAcknowledgement></Message>"
    )


def refund_message(message_id: int, order_id: str, item_id: str, amount: str, currency: str) -> str:
    return (
        f"<Message><MessageID>{message_id}</MessageID><OrderAdjustment>"
        f"<AmazonOrderID>{order_id}</AmazonOrderID><ActionType>Refund</ActionType>"
        f"<AdjustedItem><AmazonOrderItemCode>{item_id}</AmazonOrderItemCode>"
        "<AdjustmentReason>CustomerReturn</AdjustmentReason><ItemPriceAdjustments>"
        f'<Component><Type>Principal</Type><Amount currency="{currency}">{amount}</Amount>'
        "</Component></ItemPriceAdjustments></AdjustedItem></OrderAdjustment></Message>"
    )


def first_item(url: str, order_id: str) -> str:
    item_id: str = control_order(url, order_id)["orderItems"][0]["orderItemId"]
    return item_id


def submit(url: str, feed_type: str, document: str, marketplace_id: str = US) -> str:
    """Upload a feed document and create the feed, as Henpin's outbox sender does."""
    feeds = feeds_api(url, marketplace_id)
    created = feeds.create_feed_document(io.StringIO(document), "text/xml; charset=UTF-8")
    document_id = created.payload["feedDocumentId"]
    feed = feeds.create_feed(feed_type, document_id, marketplaceIds=[marketplace_id])
    feed_id: str = feed.payload["feedId"]
    return feed_id


def finished_report(url: str, feed_id: str) -> tuple[dict[str, Any], ET.Element]:
    """Let simulated time run until the feed is finished; return it and its processing report."""
    advance(url, 61)
    feeds = feeds_api(url)
    feed = feeds.get_feed(feed_id).payload
    report = feeds.get_feed_document(feed["resultFeedDocumentId"])
    return feed, ET.fromstring(report.encode("utf-8"))


def report_results(report: ET.Element) -> dict[int, dict[str, str]]:
    return {
        int(result.findtext("MessageID") or 0): {
            "code": result.findtext("ResultMessageCode") or "",
            "description": result.findtext("ResultDescription") or "",
            "orderId": result.findtext("AdditionalInfo/AmazonOrderID") or "",
        }
        for result in report.iter("Result")
    }


# -- Login with Amazon ---------------------------------------------------------------------------


def test_token_refused_with_bad_secret(url: str) -> None:
    bad = dict(GOOD_CREDENTIALS, lwa_client_secret="wrong")
    with pytest.raises(AuthorizationError) as refused:
        orders_api(url, bad).get_order(US_PENDING)
    assert (refused.value.status_code, refused.value.error_code) == (401, "invalid_client")


def test_token_refused_with_bad_refresh_token(url: str) -> None:
    answer = http.post(
        f"{url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "Atzr|not-this-one",
            "client_id": "henpin-demo-client",
            "client_secret": "henpin-demo-secret",
        },
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_grantless_token_is_issued_but_opens_no_seller_data(url: str) -> None:
    answer = http.post(
        f"{url}/auth/o2/token",
        data={
            "grant_type": "client_credentials",
            "scope": "sellingpartnerapi::notifications",
            "client_id": "henpin-demo-client",
            "client_secret": "henpin-demo-secret",
        },
    )
    assert answer.status_code == 200 and answer.json()["access_token"].startswith("Atza|")
    orders = http.get(
        f"{url}/orders/2026-01-01/orders/{US_PENDING}",
        headers={"x-amz-access-token": answer.json()["access_token"]},
    )
    assert orders.status_code == 403


def test_sp_api_call_without_valid_token_is_forbidden(url: str) -> None:
    for headers in ({}, {"x-amz-access-token": "Atza|made-up"}):
        answer = http.get(f"{url}/orders/2026-01-01/orders/{US_PENDING}", headers=headers)
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["code"] == "Unauthorized"


# -- Orders --------------------------------------------------------------------------------------


def test_search_orders_pages_through_one_marketplace_with_included_data(url: str) -> None:
    seed_demo(url)
    orders = orders_api(url)
    since = iso(parse_time(advance(url, 0)["now"]) - timedelta(days=7))
    seen: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    while True:
        extra = {"paginationToken": token} if token else {}
        page = orders.search_orders(
            createdAfter=since,
            includedData=["CANCELLATION", "FULFILLMENT"],
            maxResultsPerPage=2,
            **extra,
        )
        pages += 1
        seen.extend(page.payload["orders"])
        token = page.next_token  # the library lifts pagination.nextToken off the payload
        if not token:
            break
    us_recent = [
        o
        for o in demo_orders(parse_time(since) + timedelta(days=7))
        if o["salesChannel"]["marketplaceId"] == US and o["createdTime"] >= since
    ]
    assert pages == 4 and len(seen) == len(us_recent) == 7
    assert {o["salesChannel"]["marketplaceId"] for o in seen} == {US}
    assert all("buyer" not in o and "recipient" not in o for o in seen)
    pending = next(o for o in seen if o["orderId"] == US_PENDING)
    assert status_of(pending) == "PENDING"
    assert pending["orderItems"][0]["cancellation"]["cancellationRequest"]["requester"] == "BUYER"


def test_search_orders_filters_by_status_and_several_marketplaces(url: str) -> None:
    seed_demo(url)
    since = iso(parse_time(advance(url, 0)["now"]) - timedelta(days=7))
    page = orders_api(url).search_orders(
        createdAfter=since, marketplaceIds=[UK, DE, JP], fulfillmentStatuses=["UNSHIPPED"]
    )
    found = page.payload["orders"]
    assert len(found) == 7
    assert all("fulfillment" not in o for o in found)  # FULFILLMENT was not requested
    assert page.headers["x-amzn-RateLimit-Limit"] == "0.0056"
    assert page.headers["x-amzn-RequestId"]


def test_search_orders_needs_exactly_one_of_created_or_updated_after(url: str) -> None:
    orders = orders_api(url)
    with pytest.raises(SellingApiBadRequestException) as neither:
        orders.search_orders()
    assert neither.value.amzn_code == "InvalidInput"
    with pytest.raises(SellingApiBadRequestException):
        orders.search_orders(
            createdAfter="2026-01-01T00:00:00Z", lastUpdatedAfter="2026-01-01T00:00:00Z"
        )
    now = advance(url, 0)["now"]
    with pytest.raises(SellingApiBadRequestException) as too_recent:
        orders.search_orders(createdAfter="2026-01-01T00:00:00Z", createdBefore=now)
    assert "two minutes" in too_recent.value.message


def test_search_orders_by_last_update_sees_changes(url: str) -> None:
    seed_demo(url)
    now = parse_time(advance(url, 0)["now"])
    advance(url, 60)
    http.patch(
        f"{url}/_emulator/orders/{US_UNSHIPPED_HIGH}",
        json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}},
    ).raise_for_status()
    page = orders_api(url).search_orders(lastUpdatedAfter=iso(now + timedelta(seconds=30)))
    assert [o["orderId"] for o in page.payload["orders"]] == [US_UNSHIPPED_HIGH]
    assert "lastUpdatedBefore" in page.payload


def test_get_order_with_buyer_and_not_found(url: str) -> None:
    seed_demo(url)
    orders = orders_api(url)
    order = orders.get_order(US_UNSHIPPED_HIGH, includedData=["BUYER", "PROCEEDS"]).payload["order"]
    assert order["buyer"]["buyerName"].endswith("(demo)")
    assert order["proceeds"]["grandTotal"] == {"amount": "329.00", "currencyCode": "USD"}
    assert "cancellation" not in order["orderItems"][0]
    with pytest.raises(SellingApiNotFoundException) as missing:
        orders.get_order(UNKNOWN_ORDER)
    assert missing.value.amzn_code == "NotFound"


# -- Feeds ---------------------------------------------------------------------------------------


def test_acknowledgement_feed_cancels_unshipped_order_and_reports_each_error(url: str) -> None:
    seed_demo(url)
    document = envelope(
        "OrderAcknowledgement",
        [
            cancel_message(
                1, US_UNSHIPPED_LOW, [(first_item(url, US_UNSHIPPED_LOW), "BuyerCanceled")]
            ),
            cancel_message(2, US_SHIPPED, [(first_item(url, US_SHIPPED), "BuyerCanceled")]),
            cancel_message(3, UNKNOWN_ORDER, []),
            cancel_message(4, US_UNSHIPPED_HIGH, [(first_item(url, US_UNSHIPPED_HIGH), "Bored")]),
        ],
    )
    feed_id = submit(url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", document)
    feeds = feeds_api(url)
    assert feeds.get_feed(feed_id).payload["processingStatus"] == "IN_QUEUE"
    advance(url, 31)
    assert feeds.get_feed(feed_id).payload["processingStatus"] == "IN_PROGRESS"
    assert status_of(control_order(url, US_UNSHIPPED_LOW)) == "UNSHIPPED"  # not applied at upload

    feed, report = finished_report(url, feed_id)
    assert feed["processingStatus"] == "DONE"
    assert report.findtext(".//MessagesProcessed") == "4"
    assert report.findtext(".//MessagesSuccessful") == "1"
    assert report.findtext(".//MessagesWithError") == "3"
    errors = report_results(report)
    assert sorted(errors) == [2, 3, 4]
    assert errors[2]["orderId"] == US_SHIPPED and "SHIPPED" in errors[2]["description"]
    assert errors[3]["code"] == "18028"
    assert errors[4]["code"] == "5001" and "Bored" in errors[4]["description"]

    cancelled = control_order(url, US_UNSHIPPED_LOW)
    assert status_of(cancelled) == "CANCELLED"
    cancellation = cancelled["orderItems"][0]["cancellation"]
    assert cancellation["cancellationExecution"] == {
        "cancelledBy": "MERCHANT",
        "cancelReason": "BuyerCanceled",
    }
    assert cancellation["cancellationRequest"]["requester"] == "BUYER"
    assert cancelled["lastUpdatedTime"] == iso(parse_time(feed["processingEndTime"]))
    assert status_of(control_order(url, US_SHIPPED)) == "SHIPPED"
    assert status_of(control_order(url, US_UNSHIPPED_HIGH)) == "UNSHIPPED"

    [listed] = http.get(f"{url}/_emulator/feeds").json()
    assert listed["feedId"] == feed_id and listed["processingStatus"] == "DONE"
    assert "<OrderAcknowledgement>" in listed["document"] and "ProcessingReport" in listed["result"]
    assert [r["resultCode"] for r in listed["results"]] == ["Success", "Error", "Error", "Error"]
    assert listed["results"][2]["orderId"] == UNKNOWN_ORDER


def test_partial_cancel_then_rest_of_order(url: str) -> None:
    seed_demo(url)
    items = [item["orderItemId"] for item in control_order(url, DE_TWO_ITEMS)["orderItems"]]
    first = envelope(
        "OrderAcknowledgement", [cancel_message(1, DE_TWO_ITEMS, [(items[0], "NoInventory")])]
    )
    finished_report(url, submit(url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", first, DE))
    order = control_order(url, DE_TWO_ITEMS)
    assert status_of(order) == "UNSHIPPED"
    assert "cancellationExecution" not in order["orderItems"][1]["cancellation"]
    rest = envelope("OrderAcknowledgement", [cancel_message(1, DE_TWO_ITEMS, [])])
    finished_report(url, submit(url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", rest, DE))
    order = control_order(url, DE_TWO_ITEMS)
    assert status_of(order) == "CANCELLED"
    assert order["orderItems"][1]["cancellation"]["cancellationExecution"] == {
        "cancelledBy": "MERCHANT"
    }


def test_feed_for_another_marketplace_does_not_find_the_order(url: str) -> None:
    seed_demo(url)
    document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
    _, report = finished_report(url, submit(url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", document, UK))
    assert report_results(report)[1]["code"] == "18028"
    assert status_of(control_order(url, US_PENDING)) == "PENDING"


def test_malformed_feed_is_fatal_and_changes_nothing(url: str) -> None:
    seed_demo(url)
    before = control_order(url, US_PENDING)
    broken = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])[:-30]
    feed, report = finished_report(url, submit(url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", broken))
    assert feed["processingStatus"] == "FATAL"
    assert report.findtext(".//ResultMessageCode") == "5000"
    assert "XML Parsing Error" in (report.findtext(".//ResultDescription") or "")
    assert control_order(url, US_PENDING) == before


def test_payment_adjustment_records_refunds_up_to_what_was_paid(url: str) -> None:
    seed_demo(url)
    item = first_item(url, US_SHIPPED)  # 19.99 USD x 1
    document = envelope(
        "OrderAdjustment",
        [
            refund_message(1, US_SHIPPED, item, "10.00", "USD"),
            refund_message(2, US_SHIPPED, item, "10.00", "USD"),
            refund_message(3, US_SHIPPED, item, "9.99", "USD"),
            refund_message(4, US_SHIPPED, item, "1.00", "EUR"),
        ],
    )
    _, report = finished_report(url, submit(url, "POST_PAYMENT_ADJUSTMENT_DATA", document))
    assert sorted(report_results(report)) == [2, 4]
    refunds = http.get(f"{url}/_emulator/orders/{US_SHIPPED}/refunds").json()
    assert [r["components"][0]["amount"] for r in refunds] == ["10.00", "9.99"]
    assert refunds[0]["adjustmentReason"] == "CustomerReturn"


def test_get_feeds_filters_and_pages(url: str) -> None:
    seed_demo(url)
    for _ in range(3):
        submit(
            url,
            "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            envelope("OrderAcknowledgement", [cancel_message(1, UNKNOWN_ORDER, [])]),
        )
    feeds = feeds_api(url)
    first = feeds.get_feeds(feedTypes=["POST_ORDER_ACKNOWLEDGEMENT_DATA"], pageSize=2)
    assert len(first.payload["feeds"]) == 2
    second = feeds.get_feeds(nextToken=first.next_token)
    assert len(second.payload["feeds"]) == 1 and second.next_token is None
    done = feeds.get_feeds(
        feedTypes=["POST_ORDER_ACKNOWLEDGEMENT_DATA"], processingStatuses=["DONE"]
    )
    assert done.payload["feeds"] == []


def test_create_feed_refuses_missing_document(url: str) -> None:
    with pytest.raises(SellingApiBadRequestException):
        feeds_api(url).create_feed("POST_ORDER_ACKNOWLEDGEMENT_DATA", "no-such-document")


# -- Throttling ----------------------------------------------------------------------------------


def test_throttled_after_burst_until_quota_refills(url: str) -> None:
    orders = orders_api(url)
    since = "2026-01-01T00:00:00Z"
    for _ in range(20):  # searchOrders: burst 20
        assert (
            orders.search_orders(createdAfter=since).headers["x-amzn-RateLimit-Limit"] == "0.0056"
        )
    with pytest.raises(SellingApiRequestThrottledException) as throttled:
        orders.search_orders(createdAfter=since)
    assert throttled.value.error == [
        {"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource."}
    ]
    assert throttled.value.headers["x-amzn-RequestId"]
    # Other operations have their own buckets.
    with pytest.raises(SellingApiNotFoundException):
        orders.get_order(UNKNOWN_ORDER)
    advance(url, 180)  # 0.0056 requests/s: one request back after ~179 s
    orders.search_orders(createdAfter=since)


def test_usage_plans_are_amazons_unless_lifted_for_a_benchmark(url: str) -> None:
    assert http.get(f"{url}/_emulator/clock").json()["usagePlans"] == "amazon"
    with EmulatorServer(usage_plans_lifted=True) as lifted:
        assert http.get(f"{lifted.url}/_emulator/clock").json()["usagePlans"] == "lifted"
        orders = orders_api(lifted.url)
        since = "2026-01-01T00:00:00Z"
        for _ in range(25):  # past searchOrders' burst of 20, in no simulated time
            answer = orders.search_orders(createdAfter=since)
            # The lifted rate is stated, so a client pacing itself by the header stops waiting.
            assert answer.headers["x-amzn-RateLimit-Limit"] == "10000"
        calls = http.get(f"{lifted.url}/_emulator/calls").json()
        assert [c["status"] for c in calls if c["operation"] == "searchOrders"] == [200] * 25


def test_lifting_usage_plans_is_an_explicit_benchmark_switch() -> None:
    import subprocess
    import sys

    from henpin.supervisor import emulator_part

    assert "--usage-plans" not in emulator_part(8500, {}).command
    part = emulator_part(8500, {}, usage_plans="lifted")
    assert part.command[-2:] == ["--usage-plans", "lifted"]
    helped = subprocess.run(
        [sys.executable, "-m", "henpin.cli", "emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "BENCHMARKS ONLY" in " ".join(helped.stdout.split())
    refused = subprocess.run(
        [sys.executable, "-m", "henpin.cli", "emulator", "--usage-plans", "none"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "invalid choice" in refused.stderr


# -- Control API ---------------------------------------------------------------------------------


def test_control_orders_upsert_get_patch(url: str) -> None:
    now = parse_time(advance(url, 0)["now"])
    order = demo_orders(now)[1]
    created = http.post(f"{url}/_emulator/orders", json=[order])
    assert created.json() == {"created": 1, "updated": 0}
    again = http.post(f"{url}/_emulator/orders", json=[order])
    assert again.json() == {"created": 0, "updated": 1}
    assert control_order(url, order["orderId"]) == order
    assert http.get(f"{url}/_emulator/orders/{UNKNOWN_ORDER}").status_code == 404

    item_id = order["orderItems"][0]["orderItemId"]
    advance(url, 10)
    patched = http.patch(
        f"{url}/_emulator/orders/{order['orderId']}",
        json={
            "fulfillment": {"fulfillmentStatus": "SHIPPED"},
            "orderItems": [{"orderItemId": item_id, "cancellation": None}],
        },
    ).json()
    assert status_of(patched) == "SHIPPED"
    assert patched["fulfillment"]["fulfilledBy"] == "MERCHANT"  # merged, not replaced
    assert "cancellation" not in patched["orderItems"][0]
    assert patched["orderItems"][0]["product"] == order["orderItems"][0]["product"]
    assert patched["lastUpdatedTime"] > order["lastUpdatedTime"]


@pytest.mark.skipif(
    not models_available(), reason="SP-API models absent: orders get a structural check only"
)
def test_control_rejects_invalid_order_naming_index_and_path(url: str) -> None:
    good, bad = demo_orders(parse_time(advance(url, 0)["now"]))[:2]
    bad["orderItems"][0]["quantityOrdered"] = "two"
    answer = http.post(f"{url}/_emulator/orders", json=[good, bad])
    assert answer.status_code == 400
    problem = answer.json()["problems"][0]
    assert (problem["index"], problem["path"]) == (1, "$[1].orderItems[0].quantityOrdered")
    assert (
        http.get(f"{url}/_emulator/orders/{good['orderId']}").status_code == 404
    )  # all or nothing
    bad_patch = http.patch(
        f"{url}/_emulator/orders/{good['orderId']}",
        json={"fulfillment": {"fulfillmentStatus": "LOST"}},
    )
    assert bad_patch.status_code == 404
    http.post(f"{url}/_emulator/orders", json=[good]).raise_for_status()
    bad_patch = http.patch(
        f"{url}/_emulator/orders/{good['orderId']}",
        json={"fulfillment": {"fulfillmentStatus": "LOST"}},
    )
    assert bad_patch.status_code == 400
    assert bad_patch.json()["problems"][0]["path"] == "$.fulfillment.fulfillmentStatus"


def test_control_calls_clock_and_reset(url: str) -> None:
    seed_demo(url)
    orders = orders_api(url)
    orders.get_order(US_PENDING)
    with pytest.raises(SellingApiNotFoundException):
        orders.get_order(UNKNOWN_ORDER)
    calls = http.get(f"{url}/_emulator/calls").json()
    assert [(c["operation"], c["method"], c["status"]) for c in calls] == [
        ("getOrder", "GET", 200),
        ("getOrder", "GET", 404),
    ]
    assert calls[0]["path"] == f"/orders/2026-01-01/orders/{US_PENDING}"
    clock = http.get(f"{url}/_emulator/clock").json()
    moved = advance(url, 3600)
    assert parse_time(moved["now"]) - parse_time(clock["now"]) >= timedelta(hours=1)
    assert moved["timeScale"] == 1.0
    assert http.post(f"{url}/_emulator/clock/advance", json={"seconds": -1}).status_code == 400
    http.post(f"{url}/_emulator/reset").raise_for_status()
    assert http.get(f"{url}/_emulator/calls").json() == []
    assert http.get(f"{url}/_emulator/feeds").json() == []
    with pytest.raises(SellingApiNotFoundException):
        orders.get_order(US_PENDING)


def test_state_file_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    state_file = tmp_path / "emulator.json"
    with EmulatorServer(state_file=state_file, seed_demo=True) as first:
        token_cache.cache.clear()
        orders_api(first.url).get_order(US_PENDING)
        http.patch(
            f"{first.url}/_emulator/orders/{US_UNSHIPPED_LOW}",
            json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}},
        ).raise_for_status()
        before = advance(first.url, 7200)["now"]
    with EmulatorServer(state_file=state_file, seed_demo=True) as second:
        assert status_of(control_order(second.url, US_UNSHIPPED_LOW)) == "SHIPPED"  # not re-seeded
        assert http.get(f"{second.url}/_emulator/clock").json()["now"] >= before
        # The library's cached access token is still honoured after the restart.
        assert (
            orders_api(second.url).get_order(US_PENDING).payload["order"]["orderId"] == US_PENDING
        )
        assert [c["operation"] for c in http.get(f"{second.url}/_emulator/calls").json()] == [
            "getOrder",
            "getOrder",
        ]


def test_time_scale_speeds_up_feed_processing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    with EmulatorServer(time_scale=3600, seed_demo=True) as fast:
        token_cache.cache.clear()
        document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
        feed_id = submit(fast.url, "POST_ORDER_ACKNOWLEDGEMENT_DATA", document)
        # 60 simulated seconds are 1/60 of a wall second at this scale.
        time.sleep(0.1)
        assert feeds_api(fast.url).get_feed(feed_id).payload["processingStatus"] == "DONE"
        assert status_of(control_order(fast.url, US_PENDING)) == "CANCELLED"


def test_forbidden_answers_are_errors_lists(url: str) -> None:
    with pytest.raises(SellingApiForbiddenException):
        OrdersV20260101(
            marketplace=LocalMarketplace(url, US),
            credentials=GOOD_CREDENTIALS,
            restricted_data_token="Atza|not-issued",
            auth_token_client_class=token_client_for(url),
        ).get_order(US_PENDING)
