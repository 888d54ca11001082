"""The Amazon adapter: parsing of Amazon's own example answers, retries and quotas, and the real
python-amazon-sp-api against the SP-API emulator over HTTP.

Amazon is faked at the HTTP transport (httpx.MockTransport) for Amazon's sandbox examples and
for failures that are hard to provoke; everything else goes through the emulator. Time is a
fake clock whose `sleep` only moves time (and, with the emulator, the emulator's clock).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import henpin.amazon.client as client_module
from emulator.spec import default_models_dir
from henpin.amazon import (
    AmazonAdapter,
    AmazonAuthError,
    AmazonPayloadError,
    AmazonRequestRejected,
    AmazonThrottled,
    AmazonUnavailable,
    FeedProcessingStatus,
    RetryPolicy,
    order_from_amazon,
)
from henpin.amazon.feed_xml import order_acknowledgement_feed, parse_processing_report
from henpin.amazon.ratelimit import OPERATION_QUOTAS, Quota, QuotaExhausted, RateLimiter
from henpin.domain import (
    CancelOrder,
    FeedType,
    FulfillmentStatus,
    Money,
)
from henpin.settings import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    Settings,
)

REPO = Path(__file__).resolve().parent.parent
MODELS = default_models_dir()
SECRET = "lwa-secret-never-shown"  # a recognisable fake


def load_model(name: str) -> dict[str, Any]:
    path = MODELS / "models" / f"{name}.json"
    model: dict[str, Any] = json.loads(path.read_text())
    return model


def operation(model: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for methods in model["paths"].values():
        for op in methods.values():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return op
    raise KeyError(operation_id)


def sandbox(model: str, operation_id: str, status: str = "200") -> list[dict[str, Any]]:
    """The `x-amzn-api-sandbox` static request/response pairs of one operation and status."""
    op = operation(load_model(model), operation_id)
    cases: list[dict[str, Any]] = op["responses"][status]["x-amzn-api-sandbox"]["static"]
    return cases


# --- a fake Amazon at the transport --------------------------------------------------------------

Answer = httpx.Response | dict[str, Any] | Exception | Callable[[httpx.Request], httpx.Response]


class FakeAmazon:
    """LWA and canned SP-API answers, recording every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: list[tuple[str, re.Pattern[str], list[Answer]]] = []
        self.token_answers: list[httpx.Response] = []
        self.tokens_issued = 0

    def on(self, method: str, path: str, *answers: Answer) -> FakeAmazon:
        """Answer requests to `path` (a regex) with `answers` in turn; the last one repeats."""
        self.routes.append((method, re.compile(path), list(answers)))
        return self

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if re.search(path, r.url.path)]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/auth/o2/token":
            if self.token_answers:
                return self.token_answers.pop(0)
            self.tokens_issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"Atza|token-{self.tokens_issued}",
                    "token_type": "bearer",
                    "expires_in": 3600,
                },
            )
        for method, pattern, answers in self.routes:
            if request.method == method and pattern.search(request.url.path):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, Exception):
                    raise answer
                if isinstance(answer, httpx.Response):
                    return answer
                if isinstance(answer, dict):
                    return httpx.Response(200, json=answer)
                return answer(request)
        return httpx.Response(404, json={"errors": [{"code": "NotFound", "message": "no route"}]})


class FakeTime:
    """Monotonic time that only moves when someone sleeps; `on_sleep` can move others' clocks."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep is not None and seconds > 0:
            self.on_sleep(seconds)


def real_settings(**values: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        LWA_APP_ID="amzn1.application-oa2-client.henpin-test",
        LWA_CLIENT_SECRET=SECRET,
        # One authorization per region (the watched US, UK, DE and JP span NA, EU and FE).
        SP_API_REFRESH_TOKEN_NA="Atzr|seller-refresh-token",
        SP_API_REFRESH_TOKEN_EU="Atzr|seller-refresh-token",
        SP_API_REFRESH_TOKEN_FE="Atzr|seller-refresh-token",
        seller_id_na="A1SELLERNA",
        seller_id_eu="A1SELLEREU",
        seller_id_fe="A1SELLERFE",
        **values,
    )


@pytest.fixture
def amazon() -> FakeAmazon:
    return FakeAmazon()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def adapter(amazon: FakeAmazon, fake_time: FakeTime) -> Iterator[AmazonAdapter]:
    with AmazonAdapter(
        real_settings(),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rng=random.Random(7),
        http_transport=httpx.MockTransport(amazon.handle),
    ) as built:
        yield built


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


# --- the usage plans ---------------------------------------------------------------------------


def test_usage_plans_are_the_models_ones() -> None:
    """Each operation's rate and burst, as the description table of its model states them."""
    ops = {
        **{op: "orders_2026-01-01" for op in ("searchOrders", "getOrder")},
        **{
            op: "feeds_2021-06-30"
            for op in (
                "createFeedDocument",
                "createFeed",
                "getFeed",
                "getFeeds",
                "getFeedDocument",
                "cancelFeed",
            )
        },
        **{
            op: "reports_2021-06-30"
            for op in ("createReport", "getReport", "getReports", "getReportDocument")
        },
        **{
            op: "messaging"
            for op in (
                "getMessagingActionsForOrder",
                "createConfirmDeliveryDetails",
                "createUnexpectedProblem",
                "createConfirmOrderDetails",
                "GetAttributes",
            )
        },
        "listFinancialEventsByOrderId": "financesV0",
    }
    assert set(ops) == set(OPERATION_QUOTAS)
    for op_id, model in ops.items():
        description = operation(load_model(model), op_id)["description"]
        rate, burst = re.search(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|", description).groups()  # type: ignore[union-attr]
        assert OPERATION_QUOTAS[op_id] == Quota(rate=float(rate), burst=int(burst)), op_id


# --- parsing Amazon's own examples -------------------------------------------------------------


def test_search_orders_reads_amazons_examples_and_follows_the_pagination_token(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    pages = [case["response"] for case in sandbox("orders_2026-01-01", "searchOrders")]
    assert pages[0]["pagination"]["nextToken"]
    amazon.on("GET", r"^/orders/2026-01-01/orders$", *pages[:2])

    since = datetime(2024, 12, 20, tzinfo=UTC)
    orders = list(adapter.search_orders(["A1VC38T7YXB528"], last_updated_after=since, page_size=50))

    first, second = amazon.sent("/orders/2026-01-01/orders")
    assert first.url.host == "sellingpartnerapi-fe.amazon.com"  # Japan is in the Far East region
    assert query(first) == {
        "lastUpdatedAfter": "2024-12-20T00:00:00Z",
        "includedData": "CANCELLATION,FULFILLMENT,PROCEEDS,PROMOTION,BUYER",
        "maxResultsPerPage": "50",
        "marketplaceIds": "A1VC38T7YXB528",
    }
    assert query(second)["paginationToken"] == pages[0]["pagination"]["nextToken"]
    assert first.headers["x-amz-access-token"] == "Atza|token-1"
    assert first.headers["host"] == "sellingpartnerapi-fe.amazon.com"

    assert [o.order_id for o in orders] == [
        o["orderId"] for page in pages[:2] for o in page["orders"]
    ]
    jp = orders[0]
    assert jp.order_id == "250-1234567-8901234"
    assert jp.marketplace_id == "A1VC38T7YXB528"
    assert jp.fulfillment_status is FulfillmentStatus.SHIPPED
    assert jp.fulfilled_by == "AMAZON"
    assert jp.buyer_name == "John Smith"
    assert jp.created_time == datetime(2024, 12, 25, 2, 30, tzinfo=UTC)
    assert [(i.sku, i.quantity) for i in jp.items] == [
        ("ECHO-DOT-4-JP-CHARCOAL", 1),
        ("FIRE-TV-4K-MAX-JP", 2),
    ]
    assert jp.items[1].unit_price == Money(amount=Decimal("6980"), currency="JPY")
    # Items' value adds up to what Amazon reports as the order's grand total.
    assert jp.value == Money(amount=Decimal("19940"), currency="JPY")
    assert not jp.has_buyer_cancel_request


def test_every_order_in_amazons_examples_maps() -> None:
    orders_model = load_model("orders_2026-01-01")
    payloads: list[dict[str, Any]] = []
    for op_id in ("searchOrders", "getOrder"):
        responses = operation(orders_model, op_id)["responses"]["200"]
        answers = [case["response"] for case in responses["x-amzn-api-sandbox"]["static"]]
        answers.append(responses["examples"]["application/json"])
        for answer in answers:
            payloads.extend(answer.get("orders") or [answer["order"]])
    assert len(payloads) >= 7
    for payload in payloads:
        order = order_from_amazon(payload)
        assert order.order_id == payload["orderId"]
        assert order.marketplace_id == payload["salesChannel"]["marketplaceId"]
        assert [i.order_item_id for i in order.items] == [
            i["orderItemId"] for i in payload["orderItems"]
        ]


def test_a_buyers_cancel_request_in_amazons_example() -> None:
    example = operation(load_model("orders_2026-01-01"), "searchOrders")["responses"]["200"][
        "examples"
    ]["application/json"]
    order = order_from_amazon(example["orders"][0])
    item = order.items[0]
    assert item.cancel_requested_by_buyer
    assert item.buyer_cancel_reason == "Changed mind about purchase"
    assert item.cancelled_by == "MERCHANT"
    assert order.has_buyer_cancel_request
    assert order.buyer_cancel_reason == "Changed mind about purchase"


def test_what_the_buyer_paid_part_by_part_in_amazons_examples() -> None:
    example = operation(load_model("orders_2026-01-01"), "searchOrders")["responses"]["200"][
        "examples"
    ]["application/json"]
    item = order_from_amazon(example["orders"][0]).items[0]
    assert item.paid is not None
    assert (item.paid.currency, item.paid.item_price, item.paid.item_tax) == (
        "USD",
        Decimal("99.98"),
        Decimal("0.02"),
    )
    assert item.paid.shipping is None  # the example shows no SHIPPING: unknown, not 0
    assert item.paid.promotion_ids == ["PROMO-HOLIDAY-2024"]
    one = operation(load_model("orders_2026-01-01"), "getOrder")["responses"]["200"]["examples"]
    uk = next(
        i
        for i in order_from_amazon(one["application/json"]["order"]).items
        if i.paid and i.paid.currency == "GBP"
    )
    assert uk.paid is not None
    assert (uk.paid.item_price, uk.paid.shipping, uk.paid.item_tax, uk.paid.shipping_tax) == (
        Decimal("89.97"),
        Decimal("10.00"),
        Decimal("3.00"),
        Decimal("1.00"),
    )


def test_a_discount_is_kept_apart_on_the_part_it_lowered() -> None:
    from tests.support import order_json

    payload = order_json(
        "113-0000099-0000099", price="40.00", shipping="5.99", promotion=("P-1", "8.00", "5.99")
    )
    payload["fulfillment"] = {"fulfillmentStatus": "SHIPPED"}
    (item,) = order_from_amazon(payload).items
    assert item.paid is not None
    assert (item.paid.item_price, item.paid.shipping) == (Decimal("40.00"), Decimal("5.99"))
    assert (item.paid.item_discount, item.paid.shipping_discount) == (
        Decimal("8.00"),
        Decimal("5.99"),
    )
    assert item.paid.promotion_ids == ["P-1"]


def test_packages_and_the_buyers_relay_address_in_amazons_examples() -> None:
    example = operation(load_model("orders_2026-01-01"), "searchOrders")["responses"]["200"][
        "examples"
    ]["application/json"]
    order = order_from_amazon(example["orders"][0])
    (package,) = order.packages
    assert (package.package_reference_id, package.status, package.detailed_status) == (
        "PKG-2024-001",
        "DELIVERED",
        "DELIVERED",
    )
    assert (package.carrier, package.tracking_number) == ("UPS", "1Z999AA1234567890")
    assert package.ship_time == datetime(2024, 12, 25, 14, 0, tzinfo=UTC)
    with_buyer = sandbox("orders_2026-01-01", "getOrder")[0]["response"]["order"]
    assert order_from_amazon(with_buyer).buyer_email == "buyer-email@marketplace.amazon.com.br"


def test_get_order_reads_each_of_amazons_examples(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    for case in sandbox("orders_2026-01-01", "getOrder"):
        order_id = case["request"]["parameters"]["orderId"]["value"]
        included = case["request"]["parameters"]["includedData"]["value"]
        amazon.on("GET", rf"^/orders/2026-01-01/orders/{re.escape(order_id)}$", case["response"])
        order = adapter.get_order(order_id, included, marketplace_id="ATVPDKIKX0DER")
        assert order.order_id == order_id
        assert (
            order.fulfillment_status.value
            == (case["response"]["order"]["fulfillment"]["fulfillmentStatus"])
        )
        sent = amazon.sent(order_id)[-1]
        assert query(sent) == {"includedData": ",".join(included)}  # no stray marketplace keys


@pytest.mark.parametrize(
    ("model", "operation_id", "call"),
    [
        (
            "orders_2026-01-01",
            "searchOrders",
            lambda a: list(
                a.search_orders(["ATVPDKIKX0DER"], last_updated_after=datetime.now(UTC))
            ),
        ),
        ("orders_2026-01-01", "getOrder", lambda a: a.get_order("TEST_CASE_400")),
        ("feeds_2021-06-30", "getFeed", lambda a: a.get_feed("badFeedId1")),
    ],
    ids=["searchOrders", "getOrder", "getFeed"],
)
def test_amazons_400_examples_are_rejections_not_retried(
    amazon: FakeAmazon,
    adapter: AmazonAdapter,
    model: str,
    operation_id: str,
    call: Callable[[AmazonAdapter], object],
) -> None:
    answer = sandbox(model, operation_id, "400")[0]["response"]
    amazon.on("GET", r"^/(orders|feeds)/", httpx.Response(400, json=answer))
    with pytest.raises(AmazonRequestRejected) as raised:
        call(adapter)
    assert raised.value.status == 400
    assert raised.value.code == answer["errors"][0]["code"]
    assert answer["errors"][0]["message"] in str(raised.value)
    assert len([r for r in amazon.requests if r.url.path != "/auth/o2/token"]) == 1


def test_submit_feed_with_amazons_examples(amazon: FakeAmazon, adapter: AmazonAdapter) -> None:
    document_answer = sandbox("feeds_2021-06-30", "createFeedDocument", "201")[0]["response"]
    feed_answer = sandbox("feeds_2021-06-30", "createFeed", "202")[0]["response"]
    amazon.on("POST", r"^/feeds/2021-06-30/documents$", httpx.Response(201, json=document_answer))
    amazon.on("PUT", re.escape(urlpath(document_answer["url"])), httpx.Response(200))
    amazon.on("POST", r"^/feeds/2021-06-30/feeds$", httpx.Response(202, json=feed_answer))
    document = order_acknowledgement_feed(
        "A1SELLER", [(1, CancelOrder(order_id="302-1", order_item_ids=["30201"]))]
    )

    feed_id = adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, "A1PA6795UKMFR9", document)

    assert feed_id == feed_answer["feedId"]
    create_document, upload, create_feed = [
        r for r in amazon.requests if r.url.path != "/auth/o2/token"
    ]
    assert create_document.url.host == "sellingpartnerapi-eu.amazon.com"
    assert json.loads(create_document.content)["contentType"] == "text/xml; charset=UTF-8"
    assert str(upload.url) == document_answer["url"]
    assert upload.headers["content-type"] == "text/xml; charset=UTF-8"
    assert upload.content.decode("utf-8") == document
    body = json.loads(create_feed.content)
    assert body["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"
    assert body["marketplaceIds"] == ["A1PA6795UKMFR9"]
    assert body["inputFeedDocumentId"] == document_answer["feedDocumentId"]


def urlpath(url: str) -> str:
    return httpx.URL(url).path


def test_get_feed_reads_amazons_example(amazon: FakeAmazon, adapter: AmazonAdapter) -> None:
    answer = sandbox("feeds_2021-06-30", "getFeed")[0]["response"]
    amazon.on("GET", r"^/feeds/2021-06-30/feeds/feedId1$", answer)
    status = adapter.get_feed("feedId1")
    assert status.feed_id == answer["feedId"]
    assert status.processing_status is FeedProcessingStatus.CANCELLED
    assert status.finished
    assert status.created_time == datetime(2024, 3, 11, 13, 16, 24, 630000, tzinfo=UTC)
    assert status.processing_end_time is not None
    assert status.result_feed_document_id is None


def test_list_feeds_reads_amazons_example_and_pages_with_the_token_alone(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    first_page = sandbox("feeds_2021-06-30", "getFeeds")[0]["response"]
    last_page = {
        "feeds": [
            {
                **first_page["feeds"][0],
                "feedId": "FeedId2",
                "processingStatus": "DONE",
                "resultFeedDocumentId": "doc-2",
            }
        ]
    }
    amazon.on("GET", r"^/feeds/2021-06-30/feeds$", first_page, last_page)
    since = datetime(2024, 3, 1, tzinfo=UTC)
    feeds = adapter.list_feeds(["POST_PRODUCT_DATA"], since, ["ATVPDKIKX0DER"])
    assert [(f.feed_id, f.processing_status) for f in feeds] == [
        ("FeedId1", FeedProcessingStatus.CANCELLED),
        ("FeedId2", FeedProcessingStatus.DONE),
    ]
    assert feeds[1].result_feed_document_id == "doc-2"
    first, second = amazon.sent("/feeds/2021-06-30/feeds")
    assert query(first) == {
        "feedTypes": "POST_PRODUCT_DATA",
        "createdSince": "2024-03-01T00:00:00Z",
        "pageSize": "100",
        "marketplaceIds": "ATVPDKIKX0DER",
    }
    assert query(second) == {"nextToken": first_page["nextToken"]}


REPORT = (
    '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><MessageType>ProcessingReport'
    "</MessageType><Message><MessageID>1</MessageID><ProcessingReport><StatusCode>Complete"
    "</StatusCode><ProcessingSummary><MessagesProcessed>1</MessagesProcessed>"
    "<MessagesSuccessful>1</MessagesSuccessful><MessagesWithError>0</MessagesWithError>"
    "<MessagesWithWarning>0</MessagesWithWarning></ProcessingSummary></ProcessingReport>"
    "</Message></AmazonEnvelope>"
)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_get_feed_report_reads_amazons_example(
    amazon: FakeAmazon, adapter: AmazonAdapter, compressed: bool
) -> None:
    answer = dict(sandbox("feeds_2021-06-30", "getFeedDocument")[0]["response"])
    content = REPORT.encode("utf-8")
    if compressed:
        answer["compressionAlgorithm"] = "GZIP"
        content = gzip.compress(content)
    amazon.on("GET", rf"^/feeds/2021-06-30/documents/{answer['feedDocumentId']}$", answer)
    amazon.on("GET", re.escape(urlpath(answer["url"])), httpx.Response(200, content=content))
    text = adapter.get_feed_report(answer["feedDocumentId"])
    assert text == REPORT
    assert parse_processing_report(text).outcome(1).ok


# --- failures, retries, quotas -----------------------------------------------------------------


def order_answer(order_id: str = "113-1234567-1234567", **changes: Any) -> dict[str, Any]:
    order = {
        "orderId": order_id,
        "createdTime": "2026-11-20T10:00:00Z",
        "lastUpdatedTime": "2026-11-20T11:00:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "orderItems": [
            {"orderItemId": "11301", "quantityOrdered": 1, "product": {"sellerSku": "MUG"}}
        ],
    }
    order.update(changes)
    return {"order": order}


ORDER_PATH = r"^/orders/2026-01-01/orders/113-"


def test_5xx_is_retried_with_growing_jittered_backoff(
    amazon: FakeAmazon, adapter: AmazonAdapter, fake_time: FakeTime
) -> None:
    amazon.on(
        "GET",
        ORDER_PATH,
        httpx.Response(503, json={"errors": [{"code": "ServiceUnavailable", "message": "busy"}]}),
        httpx.Response(500, text="<html>oops</html>"),
        order_answer(),
    )
    assert adapter.get_order("113-1234567-1234567").order_id == "113-1234567-1234567"
    assert len(amazon.sent(ORDER_PATH)) == 3
    first, second = fake_time.slept
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


def test_persistent_5xx_ends_as_unavailable_after_bounded_attempts(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on("GET", ORDER_PATH, httpx.Response(500, text="no body"))
    with pytest.raises(AmazonUnavailable) as raised:
        adapter.get_order("113-1234567-1234567")
    assert len(amazon.sent(ORDER_PATH)) == RetryPolicy().max_attempts
    assert not raised.value.may_have_applied
    assert raised.value.status == 500


def test_timeouts_and_connection_errors_are_retried_for_reads(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "GET",
        ORDER_PATH,
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        order_answer(),
    )
    assert adapter.get_order("113-1234567-1234567").items[0].sku == "MUG"


def test_429_waits_for_the_bucket_to_refill_then_succeeds(
    amazon: FakeAmazon, adapter: AmazonAdapter, fake_time: FakeTime
) -> None:
    amazon.on("GET", ORDER_PATH, httpx.Response(429), order_answer())  # even without an errors body
    adapter.get_order("113-1234567-1234567")
    # getOrder refills 0.5 tokens a second: the retry waited about 2 s in all.
    assert 1.99 <= sum(fake_time.slept) <= 2.5


def test_a_throttled_create_feed_reports_when_to_come_back(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "POST",
        r"/feeds$",
        httpx.Response(429, json={"errors": [{"code": "QuotaExceeded", "message": "slow down"}]}),
    )
    with pytest.raises(AmazonThrottled) as raised:
        adapter.create_feed(FeedType.ORDER_ACKNOWLEDGEMENT, "ATVPDKIKX0DER", "doc-1")
    # createFeed refills one request per ~120 s: longer than the adapter waits, so it hands back.
    assert 110 <= raised.value.retry_after_s <= 125
    assert len(amazon.sent(r"/feeds$")) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("lost"),
        httpx.Response(500, json={"errors": [{"code": "InternalFailure"}]}),
    ],
    ids=["timeout", "500"],
)
def test_create_feed_is_never_retried_blindly(
    amazon: FakeAmazon, adapter: AmazonAdapter, failure: Answer
) -> None:
    amazon.on("POST", r"/feeds$", failure, httpx.Response(202, json={"feedId": "1"}))
    with pytest.raises(AmazonUnavailable) as raised:
        adapter.create_feed(FeedType.ORDER_ACKNOWLEDGEMENT, "ATVPDKIKX0DER", "doc-1")
    assert raised.value.may_have_applied
    assert len(amazon.sent(r"/feeds$")) == 1


def test_create_feed_is_retried_when_the_request_never_left(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "POST", r"/feeds$", httpx.ConnectError("refused"), httpx.Response(202, json={"feedId": "9"})
    )
    assert adapter.create_feed(FeedType.ORDER_ACKNOWLEDGEMENT, "ATVPDKIKX0DER", "doc-1") == "9"


def test_a_body_that_is_not_json_is_retried_then_a_payload_error(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on("GET", ORDER_PATH, httpx.Response(200, text="{not json"))
    with pytest.raises(AmazonPayloadError) as raised:
        adapter.get_order("113-1234567-1234567")
    assert raised.value.payload == "{not json"


def test_refused_credentials_are_a_clear_error_without_the_secret(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.token_answers.append(
        httpx.Response(
            401,
            json={"error": "invalid_client", "error_description": "Client authentication failed"},
        )
    )
    with pytest.raises(AmazonAuthError) as raised:
        adapter.get_order("113-1234567-1234567", marketplace_id="ATVPDKIKX0DER")
    message = str(raised.value)
    assert "invalid_client" in message and "LWA_CLIENT_SECRET" in message
    assert adapter.region_auth == {"NA": "refused"}
    assert SECRET not in message
    assert not amazon.sent(ORDER_PATH)


def test_an_access_token_amazon_no_longer_accepts_is_renewed_once(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    denied = httpx.Response(
        403,
        json={
            "errors": [
                {"code": "Unauthorized", "message": "Access to requested resource is denied."}
            ]
        },
    )
    amazon.on("GET", ORDER_PATH, denied, order_answer())
    adapter.get_order("113-1234567-1234567", marketplace_id="ATVPDKIKX0DER")
    first, second = amazon.sent(ORDER_PATH)
    assert first.headers["x-amz-access-token"] == "Atza|token-1"
    assert second.headers["x-amz-access-token"] == "Atza|token-2"

    amazon.on("GET", r"^/orders/2026-01-01/orders/114-", denied)
    with pytest.raises(AmazonAuthError):
        adapter.get_order("114-1", marketplace_id="ATVPDKIKX0DER")
    assert len(amazon.sent("/orders/2026-01-01/orders/114-")) == 2  # one renewal, then the answer


def test_tokens_are_cached_per_credentials(amazon: FakeAmazon, fake_time: FakeTime) -> None:
    amazon.on("GET", ORDER_PATH, order_answer())
    transport = httpx.MockTransport(amazon.handle)
    with AmazonAdapter(real_settings(), http_transport=transport, clock=fake_time.clock) as one:
        one.get_order("113-1")
        one.get_order("113-2")
    assert amazon.tokens_issued == 1
    other = {
        "lwa_app_id": "other-app",
        "lwa_client_secret": "x",
        "refresh_token": "Atzr|seller-refresh-token",
    }
    with AmazonAdapter(real_settings(), credentials=other, http_transport=transport) as two:
        two.get_order("113-3")
    assert amazon.tokens_issued == 2  # the library alone would have reused the first app's token


def test_an_order_is_asked_for_in_the_region_it_was_seen_in_while_it_is_among_the_newest(
    amazon: FakeAmazon, adapter: AmazonAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where each order was seen is remembered for the newest `ORDERS_REMEMBERED` orders only
    (the adapter lives as long as its process): an older one is looked up region by region."""
    monkeypatch.setattr(client_module, "ORDERS_REMEMBERED", 2)
    japan = "A1VC38T7YXB528"

    def only_in_the_far_east(request: httpx.Request) -> httpx.Response:
        if request.url.host != "sellingpartnerapi-fe.amazon.com":
            return httpx.Response(404, json={"errors": [{"code": "NotFound", "message": "no"}]})
        order_id = request.url.path.rsplit("/", 1)[1]
        channel = {"channelName": "AMAZON", "marketplaceId": japan}
        return httpx.Response(200, json=order_answer(order_id, salesChannel=channel))

    path = r"^/orders/2026-01-01/orders/503-"
    amazon.on("GET", path, only_in_the_far_east)
    for order_id in ("503-1", "503-2", "503-3"):
        adapter.get_order(order_id, marketplace_id=japan)

    def regions_asked(order_id: str) -> list[str]:
        before = len(amazon.sent(path))
        assert adapter.get_order(order_id).marketplace_id == japan
        return [r.url.host.split("-")[1].split(".")[0] for r in amazon.sent(path)[before:]]

    assert regions_asked("503-3") == ["fe"]
    assert regions_asked("503-1") == ["na", "eu", "fe"]  # forgotten: the third one pushed it out
    assert regions_asked("503-1") == ["fe"]  # seen again just now
    assert len(adapter._order_marketplaces) == 2


def test_the_default_marketplace_variable_cannot_redirect_requests(
    amazon: FakeAmazon, adapter: AmazonAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SP_API_DEFAULT_MARKETPLACE", "UK")
    amazon.on("GET", ORDER_PATH, order_answer())
    adapter.get_order("113-1234567-1234567", marketplace_id="A1VC38T7YXB528")
    assert amazon.sent(ORDER_PATH)[0].url.host == "sellingpartnerapi-fe.amazon.com"


def test_a_search_over_regions_asks_each_regional_endpoint(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on("GET", r"^/orders/2026-01-01/orders$", {"orders": []})
    since = datetime.now(UTC) - timedelta(days=1)
    ids = ["ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A1VC38T7YXB528"]
    assert list(adapter.search_orders(ids, last_updated_after=since)) == []
    asked = {
        r.url.host: query(r)["marketplaceIds"] for r in amazon.sent("/orders/2026-01-01/orders")
    }
    assert asked == {
        "sellingpartnerapi-na.amazon.com": "ATVPDKIKX0DER",
        "sellingpartnerapi-eu.amazon.com": "A1F83G8C2ARO7P,A1PA6795UKMFR9",
        "sellingpartnerapi-fe.amazon.com": "A1VC38T7YXB528",
    }


def test_search_window_must_end_two_minutes_ago(adapter: AmazonAdapter) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="two minutes"):
        list(
            adapter.search_orders(
                ["ATVPDKIKX0DER"],
                last_updated_after=now - timedelta(hours=1),
                last_updated_before=now,
            )
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        list(adapter.search_orders(["ATVPDKIKX0DER"], last_updated_after=datetime(2026, 1, 1)))


def test_a_bad_order_is_reported_and_the_search_goes_on(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    good = order_answer()["order"]
    bad = {
        **order_answer("113-7")["order"],
        "orderItems": [{"orderItemId": "x", "quantityOrdered": "many", "product": {}}],
    }
    amazon.on("GET", r"^/orders/2026-01-01/orders$", {"orders": [bad, good]})
    since = datetime.now(UTC) - timedelta(days=1)
    problems: list[AmazonPayloadError] = []
    found = list(
        adapter.search_orders(
            ["ATVPDKIKX0DER"], last_updated_after=since, on_bad_order=problems.append
        )
    )
    assert [o.order_id for o in found] == [good["orderId"]]
    assert problems[0].payload == bad
    assert "113-7" in str(problems[0]) and "quantityOrdered" in str(problems[0])
    with pytest.raises(AmazonPayloadError):
        list(adapter.search_orders(["ATVPDKIKX0DER"], last_updated_after=since))


def test_an_order_without_fulfillment_data_says_what_to_ask_for() -> None:
    payload = order_answer()["order"]
    del payload["fulfillment"]
    with pytest.raises(AmazonPayloadError, match="includedData FULFILLMENT") as raised:
        order_from_amazon(payload)
    assert raised.value.payload is payload


def test_the_accounts_rate_from_amazons_header_is_adopted(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "GET",
        ORDER_PATH,
        httpx.Response(200, json=order_answer(), headers={"x-amzn-RateLimit-Limit": "5.0"}),
    )
    adapter.get_order("113-1")
    bucket = adapter.limiter._buckets[("https://sellingpartnerapi-na.amazon.com", "getOrder")]
    assert bucket.rate == 5.0


# --- the rate limiter on its own -----------------------------------------------------------------


def test_bucket_gives_the_burst_then_paces_at_the_rate() -> None:
    time = FakeTime()
    limiter = RateLimiter({"op": Quota(rate=0.5, burst=3)}, clock=time.clock, sleep=time.sleep)
    waits = [limiter.acquire("op") for _ in range(5)]
    assert waits == [0, 0, 0, 2.0, 2.0]
    assert limiter.time_until_available("op") == pytest.approx(2.0)
    time.now += 100
    assert limiter.time_until_available("op", tokens=3) == 0


def test_bucket_refuses_a_wait_longer_than_allowed_without_spending() -> None:
    time = FakeTime()
    limiter = RateLimiter({"op": Quota(rate=0.01, burst=1)}, clock=time.clock, sleep=time.sleep)
    limiter.acquire("op")
    with pytest.raises(QuotaExhausted) as raised:
        limiter.acquire("op", max_wait_s=60)
    assert raised.value.wait_s == pytest.approx(100)
    assert limiter.time_until_available("op") == pytest.approx(100)  # nothing reserved


def test_buckets_are_per_endpoint_and_scale_with_a_faster_clock() -> None:
    time = FakeTime()
    limiter = RateLimiter(
        {"op": Quota(rate=1, burst=1)}, clock=time.clock, sleep=time.sleep, scale=10
    )
    limiter.acquire("op", "eu")
    assert limiter.acquire("op", "na") == 0
    assert limiter.acquire("op", "eu") == pytest.approx(0.1)


def test_bucket_is_thread_safe() -> None:
    lock = threading.Lock()
    time = FakeTime()

    def sleep(seconds: float) -> None:
        with lock:
            time.slept.append(seconds)

    limiter = RateLimiter({"op": Quota(rate=1, burst=10)}, clock=time.clock, sleep=sleep)
    threads = [
        threading.Thread(target=lambda: [limiter.acquire("op") for _ in range(10)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 80 requests, burst 10: 70 had to wait, each for its own later slot (1 s, 2 s, ... 70 s).
    assert sorted(time.slept) == [float(n) for n in range(1, 71)]


# --- against the SP-API emulator, over HTTP ---------------------------------------------------


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    server_module = pytest.importorskip(
        "emulator.server", reason="the SP-API emulator (emulator/server.py) is not available"
    )
    with server_module.EmulatorServer(port=0) as server:
        yield server.url


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as control:
        control.post("/_emulator/reset").raise_for_status()
        yield control


def emulated_order(
    order_id: str,
    *,
    marketplace_id: str = "ATVPDKIKX0DER",
    status: str = "UNSHIPPED",
    updated: datetime | None = None,
    buyer_reason: str | None = "Ordered by mistake",
) -> dict[str, Any]:
    """A merchant-fulfilled order in the Orders API 2026-01-01 shape."""
    when = (updated or datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    item: dict[str, Any] = {
        "orderItemId": f"{order_id[-7:]}01",
        "quantityOrdered": 2,
        "product": {
            "asin": "B0HENPIN01",
            "title": "Teapot",
            "sellerSku": "TEAPOT-1",
            "price": {"unitPrice": {"amount": "12.50", "currencyCode": "USD"}},
        },
    }
    if buyer_reason:
        item["cancellation"] = {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": buyer_reason}
        }
    return {
        "orderId": order_id,
        "createdTime": when,
        "lastUpdatedTime": when,
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id},
        "buyer": {"buyerName": "Jane Doe"},
        "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
        "orderItems": [item],
    }


def demo_adapter(url: str, time: FakeTime | None = None, **kwargs: Any) -> AmazonAdapter:
    time = time or FakeTime()
    return AmazonAdapter(
        Settings(_env_file=None, emulator_url=url),  # type: ignore[call-arg]
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(3),
        **kwargs,
    )


def calls(control: httpx.Client, operation_id: str) -> list[dict[str, Any]]:
    return [c for c in control.get("/_emulator/calls").json() if c["operation"] == operation_id]


@pytest.mark.e2e
def test_emulator_search_pages_through_all_orders(
    emulator: httpx.Client, emulator_url: str
) -> None:
    orders = [
        emulated_order(f"113-0000000-000000{n}", buyer_reason=None if n % 2 else "Too slow")
        for n in range(7)
    ]
    emulator.post("/_emulator/orders", json=orders).raise_for_status()
    with demo_adapter(emulator_url) as adapter:
        found = list(
            adapter.search_orders(
                ["ATVPDKIKX0DER"],
                last_updated_after=datetime.now(UTC) - timedelta(days=1),
                page_size=3,
            )
        )
    assert sorted(o.order_id for o in found) == sorted(o["orderId"] for o in orders)
    assert len(calls(emulator, "searchOrders")) == 3
    asked = {o.order_id for o in found if o.has_buyer_cancel_request}
    assert asked == {o["orderId"] for n, o in enumerate(orders) if n % 2 == 0}
    assert all(o.value == Money(amount=Decimal("25.00"), currency="USD") for o in found)


@pytest.mark.e2e
def test_emulator_get_order(emulator: httpx.Client, emulator_url: str) -> None:
    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-1111111-1111111")]
    ).raise_for_status()
    with demo_adapter(emulator_url) as adapter:
        order = adapter.get_order("113-1111111-1111111")
        assert order.buyer_name == "Jane Doe"
        assert order.fulfillment_status is FulfillmentStatus.UNSHIPPED
        assert order.buyer_cancel_reason == "Ordered by mistake"
        with pytest.raises(AmazonRequestRejected) as raised:
            adapter.get_order("113-9999999-9999999")
        assert raised.value.status == 404


@pytest.mark.e2e
def test_emulator_feed_is_submitted_processed_and_reported(
    emulator: httpx.Client, emulator_url: str
) -> None:
    emulator.post(
        "/_emulator/orders",
        json=[
            emulated_order("113-2222222-2222222"),
            emulated_order("113-3333333-3333333", status="SHIPPED"),
        ],
    ).raise_for_status()
    document = order_acknowledgement_feed(
        "A1HENPINDEMONA",  # the demo seller's merchant token in NA
        [
            (1, CancelOrder(order_id="113-2222222-2222222", order_item_ids=["222222201"])),
            (2, CancelOrder(order_id="113-3333333-3333333", order_item_ids=["333333301"])),
        ],
    )
    with demo_adapter(emulator_url) as adapter:
        feed_id = adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, "ATVPDKIKX0DER", document)
        assert adapter.get_feed(feed_id).processing_status is FeedProcessingStatus.IN_QUEUE
        emulator.post("/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        status = adapter.get_feed(feed_id)
        assert status.processing_status is FeedProcessingStatus.DONE
        assert status.result_feed_document_id
        listed = adapter.list_feeds(
            [FeedType.ORDER_ACKNOWLEDGEMENT],
            datetime.now(UTC) - timedelta(hours=1),
            ["ATVPDKIKX0DER"],
        )
        assert [f.feed_id for f in listed] == [feed_id]
        report = parse_processing_report(adapter.get_feed_report(status.result_feed_document_id))
        cancelled = adapter.get_order("113-2222222-2222222")
    assert report.outcome(1).ok
    assert not report.outcome(2).ok and report.outcome(2).code == "18028"
    assert cancelled.fulfillment_status is FulfillmentStatus.CANCELLED
    assert cancelled.items[0].cancelled_by == "MERCHANT"
    (received,) = emulator.get("/_emulator/feeds").json()
    assert received["document"] == document


@pytest.mark.e2e
def test_emulator_429_is_absorbed_by_waiting_for_a_refill(
    emulator: httpx.Client, emulator_url: str
) -> None:
    """Our own quota set far above the emulator's, so the emulator's bucket (getOrder: burst 30,
    0.5/s) runs dry; the adapter then waits (moving the emulator's clock) and succeeds."""
    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-4444444-4444444")]
    ).raise_for_status()
    time = FakeTime(
        on_sleep=lambda s: emulator.post(
            "/_emulator/clock/advance", json={"seconds": s}
        ).raise_for_status()
    )
    generous = RateLimiter(
        {**OPERATION_QUOTAS, "getOrder": Quota(rate=1000, burst=1000)},
        clock=time.clock,
        sleep=time.sleep,
    )
    with demo_adapter(emulator_url, time, limiter=generous) as adapter:
        for _ in range(31):
            adapter.get_order("113-4444444-4444444")
    statuses = [c["status"] for c in calls(emulator, "getOrder")]
    assert statuses.count(429) == 1 and statuses[-1] == 200 and len(statuses) == 32
    assert 1.9 <= sum(time.slept) <= 3.0  # about one refill: 1 / 0.5 per second


@pytest.mark.e2e
def test_emulator_refuses_bad_credentials_clearly(
    emulator: httpx.Client, emulator_url: str
) -> None:
    wrong = {
        "lwa_app_id": EMULATOR_CLIENT_ID,
        "lwa_client_secret": "not-the-demo-secret",
        "refresh_token": EMULATOR_REFRESH_TOKEN,
    }
    with (
        demo_adapter(emulator_url, credentials=wrong) as adapter,
        pytest.raises(AmazonAuthError) as raised,
    ):
        adapter.get_order("113-1111111-1111111")
    assert "invalid_client" in str(raised.value)
    assert "not-the-demo-secret" not in str(raised.value)
    # The right credentials still work afterwards (no token cached for the wrong ones).
    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-1111111-1111111")]
    ).raise_for_status()
    with demo_adapter(emulator_url) as adapter:
        assert adapter.get_order("113-1111111-1111111").order_id == "113-1111111-1111111"
    assert EMULATOR_CLIENT_SECRET  # the demo secret is the emulator's public one
