"""The adapter's returns (Reports API) and buyer messages (Messaging API): Amazon faked at the
transport for the exact requests and the rare answers, then the emulator over HTTP.

Time is a fake clock: the adapter's waits for a report move it (and the emulator's clock)."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from henpin.amazon import (
    REPORT_REUSE,
    RETURNS_REPORT,
    AmazonAdapter,
    AmazonAuthError,
    AmazonPayloadError,
    AmazonRequestRejected,
    AmazonUnavailable,
)
from henpin.amazon.returns_report import ReturnsReportError, match_order_item, parse_returns_report
from henpin.domain import Money, Order, OrderItem
from henpin.settings import Settings
from tests.test_amazon_adapter import FakeAmazon, FakeTime, real_settings, sandbox

US, UK, DE = "ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9"
SINCE = datetime(2026, 11, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

# Amazon's flat-file header (Returns reports attributes), two lines in their shapes.
HEADER = (
    "Order ID\tOrder date\tReturn request date\tReturn request status\tAmazon RMA ID\t"
    "Merchant RMA ID\tLabel type\tLabel cost\tCurrency code\tReturn carrier\tTracking ID\t"
    "Label to be paid by\tA-to-Z Claim\tIs prime\tASIN\tMerchant SKU\tItem Name\t"
    "Return quantity\tReturn Reason\tIn policy\tReturn type\tResolution\tInvoice number\t"
    "Return delivery date\tOrder Amount\tOrder quantity\tSafeT Action reason\tSafeT claim id\t"
    "SafeT claim state\tSafeT claim creation time\tSafeT claim reimbursement amount\t"
    "Refunded Amount"
)


def line(order_id: str, sku: str, reason: str, *, date: str = "26-Nov-2026", **cells: str) -> str:
    values = dict.fromkeys(HEADER.split("\t"), "")
    values.update(
        {
            "Order ID": order_id,
            "Return request date": date,
            "Return request status": "Pending",
            "Amazon RMA ID": f"D{order_id[-4:]}RMA",
            "ASIN": "B0HENPIN01",
            "Merchant SKU": sku,
            "Item Name": "Teapot – grün",
            "Return quantity": "1",
            "Return Reason": reason,
            "In policy": "Y",
        }
    )
    values.update(cells)
    return "\t".join(values.values())


REPORT = "\n".join(
    [
        HEADER,
        line("113-1111111-1111111", "TEAPOT-1", "CR-DEFECTIVE"),
        line("113-2222222-2222222", "MUG-2", "CR-UNWANTED_ITEM", **{"In policy": "N"}),
    ]
)


# --- reading the report ------------------------------------------------------------------------


def test_report_lines_become_return_requests() -> None:
    first, second = parse_returns_report(REPORT + "\n", US)
    assert first.order_id == "113-1111111-1111111"
    assert first.marketplace_id == US
    assert first.rma_id == "D1111RMA"
    # A day alone: its start in the marketplace's time zone (Los Angeles), not UTC midnight.
    assert first.requested_at == datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert (first.sku, first.asin, first.title) == ("TEAPOT-1", "B0HENPIN01", "Teapot – grün")
    assert (first.quantity, first.reason_code, first.status) == (1, "CR-DEFECTIVE", "Pending")
    assert first.in_policy is True and second.in_policy is False
    assert first.buyer_comment is None and first.order_item_id is None  # not in this report


def test_columns_are_found_by_name_whatever_their_order_and_spelling() -> None:
    text = (
        "return-reason\tmerchant_sku\tamazon-order-id\tcustomer-comments\n"
        "CR-DEFECTIVE\tTEAPOT-1\t113-1111111-1111111\tSpout broken\n"
    )
    (request,) = parse_returns_report(text, UK)
    assert (request.order_id, request.sku, request.reason_code) == (
        "113-1111111-1111111",
        "TEAPOT-1",
        "CR-DEFECTIVE",
    )
    assert request.buyer_comment == "Spout broken"


def test_a_bad_line_is_reported_and_the_others_are_read() -> None:
    bad = line("113-3333333-3333333", "X", "CR-DEFECTIVE", **{"Return quantity": "many"})
    problems: list[ReturnsReportError] = []
    found = parse_returns_report(f"{REPORT}\n{bad}\n", US, on_bad_line=problems.append)
    assert len(found) == 2
    (problem,) = problems
    assert "line 4" in str(problem) and "many" in problem.raw
    with pytest.raises(ReturnsReportError):
        parse_returns_report(f"{REPORT}\n{bad}\n", US)
    with pytest.raises(ReturnsReportError, match="no 'Order ID' column"):
        parse_returns_report("<html>Service Unavailable</html>\n", US)


def test_the_returned_item_is_found_on_the_order_by_sku() -> None:
    (request, _) = parse_returns_report(REPORT, US)
    order = Order(
        order_id=request.order_id,
        marketplace_id=US,
        created_time=NOW,
        last_updated_time=NOW,
        fulfillment_status="SHIPPED",
        items=[
            OrderItem(order_item_id="11111111101", sku="TEAPOT-1"),
            OrderItem(order_item_id="11111111102", sku="CUP-1"),
        ],
    )
    assert match_order_item(request, order).order_item_id == "11111111101"
    assert match_order_item(request.model_copy(update={"sku": "NONE"}), order).order_item_id is None


# --- the Reports API dance, Amazon faked at the transport ---------------------------------------


class Clock:
    """Wall time for the adapter's `now`, moved by hand or by the fake sleep."""

    def __init__(self, time: FakeTime) -> None:
        self.at = NOW
        self.base = time.now
        self.time = time

    def now(self) -> datetime:
        return self.at + timedelta(seconds=self.time.now - self.base)


def report(report_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "reportId": report_id,
        "reportType": RETURNS_REPORT,
        "marketplaceIds": [US],
        "dataStartTime": "2026-11-20T00:00:00+00:00",
        "dataEndTime": "2026-11-27T12:00:00+00:00",
        "createdTime": "2026-11-27T12:00:00+00:00",
        "processingStatus": status,
        **fields,
    }


@pytest.fixture
def amazon() -> FakeAmazon:
    fake = FakeAmazon()
    fake.on("GET", r"^/reports/2021-06-30/reports$", {"reports": []})
    fake.on("POST", r"^/reports/2021-06-30/reports$", httpx.Response(202, json={"reportId": "R1"}))
    return fake


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def clock(time: FakeTime) -> Clock:
    return Clock(time)


@pytest.fixture
def adapter(amazon: FakeAmazon, time: FakeTime, clock: Clock) -> Iterator[AmazonAdapter]:
    with AmazonAdapter(
        real_settings(),
        clock=time.clock,
        sleep=time.sleep,
        now=clock.now,
        rng=random.Random(5),
        http_transport=httpx.MockTransport(amazon.handle),
    ) as built:
        yield built


def serve_document(amazon: FakeAmazon, content: bytes, *, gzipped: bool = False) -> None:
    info: dict[str, Any] = {"reportDocumentId": "DOC-1", "url": "https://docs.example/r1"}
    if gzipped:
        info["compressionAlgorithm"] = "GZIP"
        content = gzip.compress(content)
    amazon.on("GET", r"^/reports/2021-06-30/documents/DOC-1$", info)
    amazon.on("GET", r"^/r1$", httpx.Response(200, content=content))


def test_returns_are_asked_for_waited_for_downloaded_and_read(
    amazon: FakeAmazon, adapter: AmazonAdapter, time: FakeTime
) -> None:
    amazon.on(
        "GET",
        r"^/reports/2021-06-30/reports/R1$",
        report("R1", "IN_QUEUE"),
        report("R1", "IN_PROGRESS"),
        report("R1", "DONE", reportDocumentId="DOC-1"),
    )
    serve_document(amazon, REPORT.encode("cp1252"), gzipped=True)  # old flat files: Windows-1252

    found = adapter.returns_since([US], SINCE)

    assert [r.order_id for r in found] == ["113-1111111-1111111", "113-2222222-2222222"]
    assert found[0].title == "Teapot – grün"
    (look,) = amazon.sent(r"^/reports/2021-06-30/reports$")[:1]
    assert look.method == "GET" and look.url.params["reportTypes"] == RETURNS_REPORT
    (create,) = [r for r in amazon.sent(r"^/reports/2021-06-30/reports$") if r.method == "POST"]
    assert json.loads(create.content) == {
        "reportType": RETURNS_REPORT,
        "marketplaceIds": [US],
        "dataStartTime": "2026-11-20T00:00:00Z",
    }
    assert len(amazon.sent(r"/reports/R1$")) == 3
    assert time.slept == [5.0, 10.0, 20.0]  # polled with growing pauses, never really slept


def test_a_cancelled_returns_report_means_no_returns(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on("GET", r"^/reports/2021-06-30/reports/R1$", report("R1", "CANCELLED"))
    assert adapter.returns_since([US], SINCE) == []
    assert not amazon.sent(r"/documents/")


def test_a_fatal_report_is_a_transient_failure_and_is_asked_for_anew(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "GET",
        r"^/reports/2021-06-30/reports/R1$",
        report("R1", "FATAL"),
        report("R1", "CANCELLED"),
    )
    with pytest.raises(AmazonUnavailable, match="could not make the returns report"):
        adapter.returns_since([US], SINCE)
    assert adapter.returns_since([US], SINCE) == []
    assert len([r for r in amazon.sent(r"/reports$") if r.method == "POST"]) == 2


def test_a_slow_report_is_waited_for_boundedly_then_picked_up_again(
    amazon: FakeAmazon, adapter: AmazonAdapter, time: FakeTime
) -> None:
    amazon.on(
        "GET",
        r"^/reports/2021-06-30/reports/R1$",
        report("R1", "IN_PROGRESS"),
        report("R1", "IN_PROGRESS"),
        report("R1", "DONE", reportDocumentId="DOC-1"),
    )
    serve_document(amazon, REPORT.encode())
    with pytest.raises(AmazonUnavailable, match=r"not finished .* report R1 IN_PROGRESS"):
        adapter.returns_since([US], SINCE, max_wait_s=12)
    assert sum(time.slept) <= 12
    assert len(adapter.returns_since([US], SINCE)) == 2  # the same report, not a new one
    assert len([r for r in amazon.sent(r"/reports$") if r.method == "POST"]) == 1


def test_a_finished_report_is_used_again_within_its_window_only(
    amazon: FakeAmazon, adapter: AmazonAdapter, clock: Clock
) -> None:
    amazon.on(
        "GET",
        r"^/reports/2021-06-30/reports/R1$",
        report("R1", "DONE", reportDocumentId="DOC-1"),
    )
    serve_document(amazon, REPORT.encode())
    assert len(adapter.returns_since([US], SINCE)) == 2
    assert len(adapter.returns_since([US], SINCE + timedelta(days=1))) == 2  # same report
    assert len(adapter.returns_since([US], SINCE + timedelta(days=6, hours=12))) == 2
    creates = [r for r in amazon.sent(r"/reports$") if r.method == "POST"]
    assert len(creates) == 1 and len(amazon.sent(r"^/r1$")) == 1  # downloaded once
    assert adapter.returns_since([US], SINCE - timedelta(days=1)) is not None  # earlier: new one
    clock.at += REPORT_REUSE + timedelta(seconds=1)  # too old for the overlap: new one
    adapter.returns_since([US], SINCE)
    assert len([r for r in amazon.sent(r"/reports$") if r.method == "POST"]) == 3


def test_after_a_restart_the_report_amazon_is_making_is_found_not_asked_twice(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.routes.clear()
    amazon.on("GET", r"^/reports/2021-06-30/reports$", {"reports": [report("R0", "IN_PROGRESS")]})
    amazon.on(
        "GET", r"^/reports/2021-06-30/reports/R0$", report("R0", "DONE", reportDocumentId="DOC-1")
    )
    serve_document(amazon, REPORT.encode())
    assert len(adapter.returns_since([US], SINCE)) == 2
    assert not [r for r in amazon.sent(r"/reports$") if r.method == "POST"]


def test_a_report_asked_for_early_is_the_one_read_later_without_waiting_then(
    amazon: FakeAmazon, adapter: AmazonAdapter, time: FakeTime, clock: Clock
) -> None:
    """Ingestion asks for a region's report at the start of its pass and reads it after the
    orders: the ask creates it and does not wait; the read, later (whatever the report's age:
    it is this pass's), asks for no other one and finds it made."""
    amazon.on(
        "GET", r"^/reports/2021-06-30/reports/R1$", report("R1", "DONE", reportDocumentId="DOC-1")
    )
    serve_document(amazon, REPORT.encode())

    asked = adapter.ask_for_returns_reports([US, US], SINCE)
    assert asked == {US: "R1"}
    assert time.slept == [] and not amazon.sent(r"/reports/R1$")  # asked, not waited for
    clock.at += REPORT_REUSE + timedelta(minutes=1)  # a long pass: older than reuse allows
    assert len(adapter.returns_since([US], SINCE, asked=asked)) == 2
    creates = [r for r in amazon.sent(r"/reports$") if r.method == "POST"]
    assert len(creates) == 1 and json.loads(creates[0].content)["marketplaceIds"] == [US]
    assert time.slept == []  # made while the orders were read: no pause before reading it


def test_an_unreadable_report_keeps_what_amazon_sent(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on(
        "GET", r"^/reports/2021-06-30/reports/R1$", report("R1", "DONE", reportDocumentId="DOC-1")
    )
    serve_document(amazon, b"<html>Service Unavailable</html>")
    with pytest.raises(AmazonPayloadError) as raised:
        adapter.returns_since([US], SINCE)
    assert raised.value.payload == "<html>Service Unavailable</html>"


def test_amazons_report_examples_read() -> None:
    from henpin.amazon import report_status_from_amazon

    answer = sandbox("reports_2021-06-30", "getReport")[0]["response"]
    status = report_status_from_amazon(answer)
    assert (status.report_id, status.processing_status.value) == ("ReportId1", "IN_PROGRESS")
    assert not status.finished


# --- Messaging, Amazon faked at the transport -------------------------------------------------

ORDER = "123-1234567-1234567"
ACTIONS_PATH = rf"^/messaging/v1/orders/{ORDER}$"
SEND_PATH = rf"^/messaging/v1/orders/{ORDER}/messages/confirmDeliveryDetails$"


@pytest.fixture
def messaging(amazon: FakeAmazon) -> FakeAmazon:
    amazon.on(
        "GET", ACTIONS_PATH, sandbox("messaging", "getMessagingActionsForOrder")[0]["response"]
    )
    return amazon


def test_the_messages_amazon_offers_from_its_example(
    messaging: FakeAmazon, adapter: AmazonAdapter
) -> None:
    offered = adapter.messaging_actions(ORDER, DE)
    assert {"confirmDeliveryDetails", "confirmOrderDetails"} <= set(offered)
    (asked,) = messaging.sent(ACTIONS_PATH)
    assert dict(asked.url.params) == {"marketplaceIds": DE}
    assert asked.url.host == "sellingpartnerapi-eu.amazon.com"


def test_a_message_is_checked_then_sent_with_its_text_only(
    messaging: FakeAmazon, adapter: AmazonAdapter
) -> None:
    messaging.on("POST", SEND_PATH, httpx.Response(201, json={}))
    adapter.send_message(ORDER, DE, "confirmDeliveryDetails", "Bitte bestätigen Sie die Adresse.")
    (sent,) = messaging.sent(SEND_PATH)
    assert json.loads(sent.content) == {"text": "Bitte bestätigen Sie die Adresse."}
    assert dict(sent.url.params) == {"marketplaceIds": DE}


def test_a_message_amazon_does_not_offer_is_refused_before_sending(
    amazon: FakeAmazon, adapter: AmazonAdapter
) -> None:
    amazon.on("GET", ACTIONS_PATH, {"_links": {"actions": [{"href": "x", "name": "attributes"}]}})
    assert adapter.messaging_actions(ORDER, US) == []
    with pytest.raises(AmazonRequestRejected, match="does not let the seller send") as raised:
        adapter.send_message(ORDER, US, "confirmDeliveryDetails", "Hello")
    assert raised.value.code == "MessageNotOffered"
    assert not amazon.sent(SEND_PATH)


def test_amazons_template_refusal_is_an_answer_not_a_login_problem(
    messaging: FakeAmazon, adapter: AmazonAdapter
) -> None:
    refusal = {
        "errors": [
            {"code": "Unauthorized", "message": "Invalid amazonOrderId and template combination."}
        ]
    }
    messaging.on("POST", SEND_PATH, httpx.Response(403, json=refusal))
    with pytest.raises(AmazonRequestRejected) as raised:
        adapter.send_message(ORDER, DE, "confirmDeliveryDetails", "Hello")
    assert not isinstance(raised.value, AmazonAuthError)
    assert "template combination" in str(raised.value)
    assert len(messaging.sent(SEND_PATH)) == 1 and messaging.tokens_issued == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("lost"), httpx.Response(500, json={"errors": [{"code": "Internal"}]})],
    ids=["timeout", "500"],
)
def test_a_message_whose_answer_is_lost_is_never_sent_again(
    messaging: FakeAmazon, adapter: AmazonAdapter, failure: Any
) -> None:
    messaging.on("POST", SEND_PATH, failure, httpx.Response(201, json={}))
    with pytest.raises(AmazonUnavailable) as raised:
        adapter.send_message(ORDER, DE, "confirmDeliveryDetails", "Hello")
    assert raised.value.may_have_applied
    assert len(messaging.sent(SEND_PATH)) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "1 to 2000"),
        ("x" * 2001, "1 to 2000"),
        ("<b>Hi</b>", "HTML"),
        ("a@b.example", "e-mail"),
    ],
)
def test_text_amazon_would_refuse_is_refused_before_any_call(
    amazon: FakeAmazon, adapter: AmazonAdapter, text: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        adapter.send_message(ORDER, US, "confirmDeliveryDetails", text)
    assert not amazon.requests


# --- against the emulator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server.url


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as control:
        control.post("/_emulator/reset").raise_for_status()
        control.post("/_emulator/seed-demo").raise_for_status()
        yield control


def demo_adapter(url: str, control: httpx.Client) -> AmazonAdapter:
    time = FakeTime(
        on_sleep=lambda s: control.post(
            "/_emulator/clock/advance", json={"seconds": s}
        ).raise_for_status()
    )
    return AmazonAdapter(
        Settings(_env_file=None, emulator_url=url),  # type: ignore[call-arg]
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(3),
    )


def calls(control: httpx.Client, operation_id: str) -> int:
    return sum(1 for c in control.get("/_emulator/calls").json() if c["operation"] == operation_id)


@pytest.mark.e2e
def test_emulator_returns_report_end_to_end(emulator: httpx.Client, emulator_url: str) -> None:
    demo_returns = {r["orderId"]: r for r in emulator.get("/_emulator/returns").json()}
    since = datetime.now(UTC) - timedelta(days=2)
    with demo_adapter(emulator_url, emulator) as adapter:
        found = adapter.returns_since([US, UK, DE], since)
        again = adapter.returns_since([US, UK, DE], since)
        speaker = adapter.get_order("113-9000015-0000015", marketplace_id=US)
    assert sorted(r.order_id for r in found) == sorted(demo_returns)
    assert again == found
    assert calls(emulator, "createReport") == 3 and calls(emulator, "getReportDocument") == 2
    statuses = {
        r["marketplaceIds"][0]: r["processingStatus"]
        for r in emulator.get("/_emulator/reports").json()
    }
    assert statuses == {US: "DONE", UK: "DONE", DE: "CANCELLED"}  # DE: no returns, no document
    returned = next(r for r in found if r.order_id == "113-9000015-0000015")
    stored = demo_returns["113-9000015-0000015"]
    assert (returned.rma_id, returned.reason_code, returned.marketplace_id) == (
        stored["amazonRmaId"],
        "CR-DEFECTIVE",
        US,
    )
    assert returned.in_policy is True and returned.quantity == 1
    assert returned.buyer_comment is None and stored["customerComments"]  # not in the report
    assert match_order_item(returned, speaker).order_item_id == stored["orderItemId"]


@pytest.mark.e2e
def test_emulator_packages_and_relay_address(emulator: httpx.Client, emulator_url: str) -> None:
    with demo_adapter(emulator_url, emulator) as adapter:
        order = adapter.get_order(
            "113-9000017-0000017", ("FULFILLMENT", "BUYER", "PACKAGES"), marketplace_id=US
        )
        without = adapter.get_order("113-9000017-0000017", ("FULFILLMENT",), marketplace_id=US)
    (package,) = order.packages
    assert (package.status, package.detailed_status) == ("UNDELIVERABLE", "REJECTED_BY_BUYER")
    assert package.tracking_number and package.ship_time is not None
    assert order.buyer_email and order.buyer_email.endswith(".invalid")
    assert without.packages == [] and without.buyer_email is None


@pytest.mark.e2e
def test_emulator_messaging(emulator: httpx.Client, emulator_url: str) -> None:
    kettle = "304-9000019-0000019"  # address error: Amazon offers confirmDeliveryDetails
    with demo_adapter(emulator_url, emulator) as adapter:
        assert adapter.messaging_actions(kettle, DE) == [
            "confirmDeliveryDetails",
            "unexpectedProblem",
        ]
        adapter.send_message(
            kettle, DE, "confirmDeliveryDetails", "Bitte bestätigen Sie Ihre Adresse."
        )
        with pytest.raises(AmazonRequestRejected, match="does not let the seller send"):
            adapter.send_message(kettle, DE, "confirmOrderDetails", "Ihre Bestellung")
        emulator.put(
            f"/_emulator/orders/{kettle}/messaging-actions",
            json={"actions": ["confirmOrderDetails"]},
        ).raise_for_status()
        adapter.send_message(kettle, DE, "confirmOrderDetails", "Ihre Bestellung")
    sent = emulator.get("/_emulator/messages", params={"orderId": kettle}).json()
    assert [(m["action"], m["text"]) for m in sent] == [
        ("confirmDeliveryDetails", "Bitte bestätigen Sie Ihre Adresse."),
        ("confirmOrderDetails", "Ihre Bestellung"),
    ]


def test_refunded_amount_is_read_in_the_reports_currency() -> None:
    text = "\n".join(
        [
            HEADER,
            line(
                "113-1111111-1111111",
                "TEAPOT-1",
                "CR-UNWANTED_ITEM",
                **{"Refunded Amount": "35.00", "Currency code": "USD"},
            ),
            line("113-2222222-2222222", "MUG-2", "CR-DEFECTIVE"),
        ]
    )
    refunded, nothing = parse_returns_report(text, US)
    assert refunded.refunded_amount == Money(amount=Decimal("35.00"), currency="USD")
    assert nothing.refunded_amount is None
    (de,) = parse_returns_report(
        "Order ID\tRefunded Amount\n302-1111111-1111111\t12.50\n", DE
    )  # no currency column: the marketplace's
    assert de.refunded_amount == Money(amount=Decimal("12.50"), currency="EUR")
    problems: list[ReturnsReportError] = []
    parse_returns_report(
        "Order ID\tRefunded Amount\n302-1111111-1111111\tlots\n", DE, on_bad_line=problems.append
    )
    assert len(problems) == 1 and "lots" in str(problems[0])
