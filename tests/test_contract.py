"""Contract: the emulator answers what Amazon's official SP-API models say, operation by operation.

Each answer is validated with jsonschema against the response schema the swagger 2.0 model gives
for that operation and status (``#/definitions/...`` resolved inside the model). As a check of the
validator itself, the models' own ``x-amzn-api-sandbox`` static responses must validate too.
The models folder comes from ``HENPIN_SPAPI_MODELS``, else the vendored ``emulator/spapi_models``
(a missing folder fails these tests: CI checks the contract, it never skips it).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator

from emulator.demo import demo_orders
from emulator.server import EmulatorServer
from emulator.spec import default_models_dir

REPO = Path(__file__).resolve().parents[1]
MODELS = default_models_dir()

ORDERS = "orders_2026-01-01.json"
FEEDS = "feeds_2021-06-30.json"
REPORTS = "reports_2021-06-30.json"
MESSAGING = "messaging.json"
SEARCH = ("/orders/2026-01-01/orders", "get")
GET_ORDER = ("/orders/2026-01-01/orders/{orderId}", "get")
CREATE_DOCUMENT = ("/feeds/2021-06-30/documents", "post")
CREATE_FEED = ("/feeds/2021-06-30/feeds", "post")
GET_FEEDS = ("/feeds/2021-06-30/feeds", "get")
GET_FEED = ("/feeds/2021-06-30/feeds/{feedId}", "get")
GET_DOCUMENT = ("/feeds/2021-06-30/documents/{feedDocumentId}", "get")
CREATE_REPORT = ("/reports/2021-06-30/reports", "post")
GET_REPORTS = ("/reports/2021-06-30/reports", "get")
GET_REPORT = ("/reports/2021-06-30/reports/{reportId}", "get")
GET_REPORT_DOCUMENT = ("/reports/2021-06-30/documents/{reportDocumentId}", "get")
MESSAGING_ACTIONS = ("/messaging/v1/orders/{amazonOrderId}", "get")
ATTRIBUTES = ("/messaging/v1/orders/{amazonOrderId}/attributes", "get")
MESSAGES = {
    action: (f"/messaging/v1/orders/{{amazonOrderId}}/messages/{action}", "post")
    for action in ("confirmDeliveryDetails", "unexpectedProblem", "confirmOrderDetails")
}
OPERATIONS = [
    (ORDERS, SEARCH),
    (ORDERS, GET_ORDER),
    (FEEDS, CREATE_DOCUMENT),
    (FEEDS, CREATE_FEED),
    (FEEDS, GET_FEEDS),
    (FEEDS, GET_FEED),
    (FEEDS, GET_DOCUMENT),
    (REPORTS, CREATE_REPORT),
    (REPORTS, GET_REPORTS),
    (REPORTS, GET_REPORT),
    (REPORTS, GET_REPORT_DOCUMENT),
    (MESSAGING, MESSAGING_ACTIONS),
    (MESSAGING, ATTRIBUTES),
    *((MESSAGING, operation) for operation in MESSAGES.values()),
]
ALL_DATASETS = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"
US = "ATVPDKIKX0DER"
ACK_FEED = (
    '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header><DocumentVersion>1.01'
    "</DocumentVersion><MerchantIdentifier>DEMO</MerchantIdentifier></Header>"
    "<MessageType>OrderAcknowledgement</MessageType><Message><MessageID>1</MessageID>"
    "<OrderAcknowledgement><AmazonOrderID>113-9000002-0000002</AmazonOrderID>"
    "<StatusCode>Failure</StatusCode><Item><AmazonOrderItemCode>90000020000001"
    "</AmazonOrderItemCode><CancelReason>BuyerCanceled</CancelReason></Item>"
    "</OrderAcknowledgement></Message></AmazonEnvelope>"
)


@cache
def model(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((MODELS / "models" / name).read_text(encoding="utf-8"))
    return loaded


def validator(name: str, operation: tuple[str, str], status: int) -> Draft4Validator:
    """The response schema of an operation and status, with the model's definitions attached."""
    path, method = operation
    response = model(name)["paths"][path][method]["responses"][str(status)]
    schema = dict(response["schema"], definitions=model(name)["definitions"])
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def assert_valid(name: str, operation: tuple[str, str], answer: httpx.Response) -> None:
    """The answer's body validates against the model's schema for its status code."""
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(name, operation, answer.status_code).iter_errors(answer.json())
    ]
    assert not problems, f"{operation} {answer.status_code}: {problems}"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed_demo=True) as running:
        yield running


@cache
def control_client(server: EmulatorServer) -> httpx.Client:
    """A client without token for the control API (one per server: new clients cost ~90 ms)."""
    return httpx.Client(base_url=server.url, timeout=30)


@pytest.fixture(scope="module")
def api(server: EmulatorServer) -> Iterator[httpx.Client]:
    """An HTTP client carrying a valid access token."""
    token = (
        control_client(server)
        .post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "Atzr|henpin-demo-refresh-token",
                "client_id": "henpin-demo-client",
                "client_secret": "henpin-demo-secret",
            },
        )
        .json()["access_token"]
    )
    with httpx.Client(base_url=server.url, headers={"x-amz-access-token": token}) as client:
        yield client


def test_models_sandbox_examples_validate_against_their_own_schemas() -> None:
    checked = 0
    for name, (path, method) in OPERATIONS:
        for status, response in model(name)["paths"][path][method]["responses"].items():
            for case in response.get("x-amzn-api-sandbox", {}).get("static", []):
                if "response" not in case or "schema" not in response:
                    continue
                errors = list(
                    validator(name, (path, method), int(status)).iter_errors(case["response"])
                )
                assert not errors, f"{path} {status}: {errors[0].message}"
                checked += 1
    assert checked >= 15


def test_demo_orders_are_valid_orders() -> None:
    schema = dict(model(ORDERS)["definitions"]["Order"], definitions=model(ORDERS)["definitions"])
    order_validator = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    for order in demo_orders(datetime.now(UTC)):
        assert not list(order_validator.iter_errors(order)), order["orderId"]


@pytest.mark.e2e
def test_search_orders_answers(api: httpx.Client) -> None:
    since = "2020-01-01T00:00:00Z"
    paged: dict[str, str | int] = {
        "createdAfter": since,
        "includedData": ALL_DATASETS,
        "maxResultsPerPage": 3,
    }
    searches: list[dict[str, str | int]] = [
        {"createdAfter": since, "marketplaceIds": US},
        {"lastUpdatedAfter": since, "fulfillmentStatuses": "UNSHIPPED,PENDING"},
        paged,
    ]
    for params in searches:
        answer = api.get("/orders/2026-01-01/orders", params=params)
        assert answer.status_code == 200
        assert_valid(ORDERS, SEARCH, answer)
    token = answer.json()["pagination"]["nextToken"]
    next_page = api.get("/orders/2026-01-01/orders", params={**paged, "paginationToken": token})
    assert next_page.status_code == 200 and next_page.json()["orders"]
    assert_valid(ORDERS, SEARCH, next_page)
    bad = api.get("/orders/2026-01-01/orders", params={"createdAfter": "TEST_CASE_400"})
    assert bad.status_code == 400
    assert_valid(ORDERS, SEARCH, bad)


@pytest.mark.e2e
def test_get_order_answers(api: httpx.Client, server: EmulatorServer) -> None:
    for order in control_client(server).get("/_emulator/orders").json():
        answer = api.get(
            f"/orders/2026-01-01/orders/{order['orderId']}", params={"includedData": ALL_DATASETS}
        )
        assert answer.status_code == 200
        assert_valid(ORDERS, GET_ORDER, answer)
    for missing, status in (("113-0000000-0000000", 404), ("TEST_CASE_400", 400)):
        answer = api.get(f"/orders/2026-01-01/orders/{missing}")
        assert answer.status_code == status
        assert_valid(ORDERS, GET_ORDER, answer)


@pytest.mark.e2e
def test_feed_answers_through_a_whole_cycle(api: httpx.Client, server: EmulatorServer) -> None:
    document = api.post(
        "/feeds/2021-06-30/documents", json={"contentType": "text/xml; charset=UTF-8"}
    )
    assert document.status_code == 201
    assert_valid(FEEDS, CREATE_DOCUMENT, document)
    control_client(server).put(
        document.json()["url"],
        content=io.BytesIO(ACK_FEED.encode()).read(),
        headers={"Content-Type": "text/xml; charset=UTF-8"},  # as signed: see emulator/feeds.py
    ).raise_for_status()
    feed = api.post(
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [US],
            "inputFeedDocumentId": document.json()["feedDocumentId"],
        },
    )
    assert feed.status_code == 202
    assert_valid(FEEDS, CREATE_FEED, feed)
    feed_id = feed.json()["feedId"]
    for seconds in (0, 31, 31):  # IN_QUEUE, IN_PROGRESS, DONE
        control_client(server).post("/_emulator/clock/advance", json={"seconds": seconds})
        answer = api.get(f"/feeds/2021-06-30/feeds/{feed_id}")
        assert_valid(FEEDS, GET_FEED, answer)
    assert answer.json()["processingStatus"] == "DONE"
    listed = api.get(
        "/feeds/2021-06-30/feeds", params={"feedTypes": "POST_ORDER_ACKNOWLEDGEMENT_DATA"}
    )
    assert_valid(FEEDS, GET_FEEDS, listed)
    result = api.get(f"/feeds/2021-06-30/documents/{answer.json()['resultFeedDocumentId']}")
    assert_valid(FEEDS, GET_DOCUMENT, result)
    assert "compressionAlgorithm" not in result.json()
    for wrong, operation in (
        (api.get("/feeds/2021-06-30/feeds/1"), GET_FEED),
        (api.get("/feeds/2021-06-30/documents/nope"), GET_DOCUMENT),
        (api.get("/feeds/2021-06-30/feeds"), GET_FEEDS),
        (api.post("/feeds/2021-06-30/feeds", json={"marketplaceIds": [US]}), CREATE_FEED),
        (api.post("/feeds/2021-06-30/documents", json={}), CREATE_DOCUMENT),
    ):
        assert wrong.status_code in (400, 404)
        assert_valid(FEEDS, operation, wrong)


@pytest.mark.e2e
def test_report_answers_through_a_whole_cycle(api: httpx.Client, server: EmulatorServer) -> None:
    control = control_client(server)
    control.post("/_emulator/seed-demo").raise_for_status()
    now = control.get("/_emulator/clock").json()["now"]
    week_ago = (datetime.fromisoformat(now.replace("Z", "+00:00")) - timedelta(days=7)).isoformat()
    created = api.post(
        "/reports/2021-06-30/reports",
        json={
            "reportType": "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
            "dataStartTime": week_ago,
            "marketplaceIds": [US],
        },
    )
    assert created.status_code == 202
    assert_valid(REPORTS, CREATE_REPORT, created)
    report_id = created.json()["reportId"]
    for seconds in (0, 31, 31):  # IN_QUEUE, IN_PROGRESS, DONE
        control.post("/_emulator/clock/advance", json={"seconds": seconds})
        answer = api.get(f"/reports/2021-06-30/reports/{report_id}")
        assert_valid(REPORTS, GET_REPORT, answer)
    assert answer.json()["processingStatus"] == "DONE"
    listed = api.get(
        "/reports/2021-06-30/reports",
        params={"reportTypes": "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE", "pageSize": 1},
    )
    assert_valid(REPORTS, GET_REPORTS, listed)
    document = api.get(f"/reports/2021-06-30/documents/{answer.json()['reportDocumentId']}")
    assert_valid(REPORTS, GET_REPORT_DOCUMENT, document)
    for wrong, operation in (
        (api.get("/reports/2021-06-30/reports/1"), GET_REPORT),
        (api.get("/reports/2021-06-30/documents/nope"), GET_REPORT_DOCUMENT),
        (api.get("/reports/2021-06-30/reports"), GET_REPORTS),
        (api.post("/reports/2021-06-30/reports", json={"marketplaceIds": [US]}), CREATE_REPORT),
    ):
        assert wrong.status_code in (400, 404)
        assert_valid(REPORTS, operation, wrong)


@pytest.mark.e2e
def test_messaging_answers(api: httpx.Client, server: EmulatorServer) -> None:
    control_client(server).post("/_emulator/seed-demo").raise_for_status()
    shipped, unshipped = "113-9000006-0000006", "113-9000005-0000005"
    market = {"marketplaceIds": US}
    for order_id in (shipped, unshipped, "113-9000001-0000001"):
        answer = api.get(f"/messaging/v1/orders/{order_id}", params=market)
        assert answer.status_code == 200
        assert_valid(MESSAGING, MESSAGING_ACTIONS, answer)
    attributes = api.get(f"/messaging/v1/orders/{shipped}/attributes", params=market)
    assert_valid(MESSAGING, ATTRIBUTES, attributes)
    for action, order_id in (
        ("confirmDeliveryDetails", shipped),
        ("unexpectedProblem", shipped),
        ("confirmOrderDetails", unshipped),
    ):
        path = f"/messaging/v1/orders/{order_id}/messages/{action}"
        sent = api.post(path, params=market, json={"text": "Demo message."})
        assert sent.status_code == 201
        assert_valid(MESSAGING, MESSAGES[action], sent)
        for wrong, status in (
            (api.post(path, params=market, json={"text": ""}), 400),
            (api.post(path, params={"marketplaceIds": "A1PA6795UKMFR9"}, json={"text": "x"}), 404),
        ):
            assert wrong.status_code == status
            assert_valid(MESSAGING, MESSAGES[action], wrong)
    refused = api.post(
        f"/messaging/v1/orders/{unshipped}/messages/confirmDeliveryDetails",
        params=market,
        json={"text": "Address?"},
    )
    assert refused.status_code == 403
    assert_valid(MESSAGING, MESSAGES["confirmDeliveryDetails"], refused)
    missing = api.get("/messaging/v1/orders/113-0000000-0000000", params=market)
    assert missing.status_code == 404
    assert_valid(MESSAGING, MESSAGING_ACTIONS, missing)


@pytest.mark.e2e
def test_fault_answers_are_error_lists(api: httpx.Client, server: EmulatorServer) -> None:
    control = control_client(server)
    for fault in ("429", "500", "503"):
        control.put(
            "/_emulator/faults",
            json={"rules": [{"operations": ["getOrder", "getReport"], "rate": 1, "fault": fault}]},
        ).raise_for_status()
        for name, operation, path in (
            (ORDERS, GET_ORDER, "/orders/2026-01-01/orders/113-9000001-0000001"),
            (REPORTS, GET_REPORT, "/reports/2021-06-30/reports/1"),
        ):
            answer = api.get(path)
            assert answer.status_code == int(fault)
            assert_valid(name, operation, answer)
    control.delete("/_emulator/faults").raise_for_status()


@pytest.mark.e2e
def test_forbidden_and_throttled_answers_are_error_lists(
    api: httpx.Client, server: EmulatorServer
) -> None:
    forbidden = control_client(server).get("/feeds/2021-06-30/feeds/1")
    assert forbidden.status_code == 403
    assert_valid(FEEDS, GET_FEED, forbidden)
    control_client(server).post("/_emulator/reset")  # full buckets
    statuses = [api.get("/feeds/2021-06-30/documents/nope").status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]  # getFeedDocument: burst 10
    throttled = api.get("/feeds/2021-06-30/documents/nope")
    assert_valid(FEEDS, GET_DOCUMENT, throttled)
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
