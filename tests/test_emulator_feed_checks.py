"""The emulator's feed processing as strict as Amazon's: the upload's Content-Type must be the one
given to createFeedDocument (S3's 403 SignatureDoesNotMatch), the envelope's DocumentVersion must
be 1.01, some result documents come GZIP-compressed, and the fault modes make processing reports
that do not add up. Over HTTP, with python-amazon-sp-api where a client would use it."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sp_api.auth import access_token_client as token_cache

from emulator.server import EmulatorServer
from tests.test_emulator import (
    US,
    US_PENDING,
    US_UNSHIPPED_HIGH,
    US_UNSHIPPED_LOW,
    advance,
    cancel_message,
    control_order,
    envelope,
    feeds_api,
    finished_report,
    http,
    refund_message,
    submit,
)
from tests.test_emulator import status_of as order_status
from tests.test_emulator_faults import access_token, set_faults

ACK = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
XML = "text/xml; charset=UTF-8"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def url(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()
    http.post(f"{server.url}/_emulator/seed-demo").raise_for_status()
    return server.url


def status_of(url: str, order_id: str) -> str:
    return order_status(control_order(url, order_id))


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"x-amz-access-token": access_token(url)}, timeout=30)


def cancel_doc(*order_ids: str) -> str:
    return envelope(
        "OrderAcknowledgement",
        [
            cancel_message(n, order_id, [])  # no items: the whole order
            for n, order_id in enumerate(order_ids, start=1)
        ],
    )


@pytest.mark.e2e
def test_an_upload_with_another_content_type_is_refused_like_s3_and_stores_nothing(
    url: str,
) -> None:
    with api(url) as client:
        created = client.post("/feeds/2021-06-30/documents", json={"contentType": XML}).json()
        document = cancel_doc(US_PENDING).encode()
        for sent in ({"Content-Type": "application/xml"}, {}, {"Content-Type": "text/xml"}):
            refused = http.put(created["url"], content=document, headers=sent)
            assert refused.status_code == 403
            assert ET.fromstring(refused.text).findtext("Code") == "SignatureDoesNotMatch"
        feed = client.post(
            "/feeds/2021-06-30/feeds",
            json={
                "feedType": ACK,
                "marketplaceIds": [US],
                "inputFeedDocumentId": created["feedDocumentId"],
            },
        )
        assert feed.status_code == 400  # nothing was stored: "upload it first"
        assert "no content" in feed.text
        accepted = http.put(created["url"], content=document, headers={"Content-Type": XML})
        assert accepted.status_code == 200


@pytest.mark.e2e
def test_a_document_version_other_than_1_01_fails_the_whole_feed(url: str) -> None:
    document = cancel_doc(US_PENDING).replace(
        "<DocumentVersion>1.01</DocumentVersion>", "<DocumentVersion>1.02</DocumentVersion>"
    )
    feed, report = finished_report(url, submit(url, ACK, document))
    assert feed["processingStatus"] == "FATAL"
    assert report.findtext(".//ResultMessageCode") == "5000"
    assert "DocumentVersion" in (report.findtext(".//ResultDescription") or "")
    assert status_of(url, US_PENDING) == "PENDING"  # nothing applied


def result_document(url: str, feed_id: str) -> tuple[dict[str, Any], bytes]:
    """getFeedDocument's answer for a feed's result, and the bytes its URL serves."""
    with api(url) as client:
        feed = client.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
        info = client.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}").json()
    return info, http.get(info["url"]).content


@pytest.mark.e2e
def test_large_result_documents_come_gzip_compressed_and_the_library_reads_them(
    url: str,
) -> None:
    unknown = [f"113-7770000-{n:07d}" for n in range(1, 25)]  # 24 error results: over 4 KB
    big = submit(url, ACK, cancel_doc(*unknown))
    small = submit(url, ACK, cancel_doc(US_UNSHIPPED_LOW))
    advance(url, 61)
    info, raw = result_document(url, big)
    assert info["compressionAlgorithm"] == "GZIP"
    assert raw[:2] == b"\x1f\x8b"
    assert b"<ProcessingReport>" in gzip.decompress(raw)
    assert "compressionAlgorithm" not in result_document(url, small)[0]
    # python-amazon-sp-api unzips it as it would Amazon's.
    report = ET.fromstring(feeds_api(url).get_feed_document(info["feedDocumentId"]))
    assert report.findtext(".//MessagesWithError") == "24"
    # The fault settings can compress the small ones too.
    set_faults(url, {"feeds": {"gzipRate": 1}})
    assert result_document(url, small)[0]["compressionAlgorithm"] == "GZIP"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("fault", "processed", "errors", "listed", "applied_first"),
    [
        ("underCount", "1", "0", 0, False),
        ("noSummary", None, None, 0, True),
        ("omitResult", "2", "1", 0, False),
    ],
)
def test_fault_modes_make_reports_that_do_not_add_up(
    url: str,
    fault: str,
    processed: str | None,
    errors: str | None,
    listed: int,
    applied_first: bool,
) -> None:
    settings = set_faults(url, {"seed": 3, "feeds": {f"{fault}Rate": 1}})
    assert settings["faults"]["feeds"][f"{fault}Rate"] == 1
    feed_id = submit(url, ACK, cancel_doc(US_UNSHIPPED_LOW, US_UNSHIPPED_HIGH))
    feed, report = finished_report(url, feed_id)
    assert feed["processingStatus"] == "DONE"
    assert report.findtext(".//MessagesProcessed") == processed
    assert report.findtext(".//MessagesWithError") == errors
    assert len(report.findall(".//Result")) == listed
    assert (status_of(url, US_UNSHIPPED_LOW) == "CANCELLED") is applied_first
    assert status_of(url, US_UNSHIPPED_HIGH) == "CANCELLED"
    [shown] = [f for f in http.get(f"{url}/_emulator/feeds").json() if f["feedId"] == feed_id]
    assert shown["fault"] == fault
    injected = http.get(f"{url}/_emulator/faults").json()["injected"]
    assert injected == {f"report{fault[0].upper()}{fault[1:]}": 1}


PAY = "POST_PAYMENT_ADJUSTMENT_DATA"


def _swap(document: str, first: str, second: str) -> str:
    """The document with two adjacent elements (given as their full XML) in the other order."""
    assert first + second in document
    return document.replace(first + second, second + first)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("feed_type", "first", "second"),
    [
        (
            ACK,
            "<DocumentVersion>1.01</DocumentVersion>",
            "<MerchantIdentifier>DEMO</MerchantIdentifier>",
        ),
        (
            ACK,
            "<Header><DocumentVersion>1.01</DocumentVersion>"
            "<MerchantIdentifier>DEMO</MerchantIdentifier></Header>",
            "<MessageType>OrderAcknowledgement</MessageType>",
        ),
        (ACK, "<AmazonOrderID>{order}</AmazonOrderID>", "<StatusCode>Failure</StatusCode>"),
        (
            ACK,
            "<AmazonOrderItemCode>{item}</AmazonOrderItemCode>",
            "<CancelReason>BuyerCanceled</CancelReason>",
        ),
        (PAY, "<AmazonOrderID>{order}</AmazonOrderID>", "<ActionType>Refund</ActionType>"),
        (
            PAY,
            "<AmazonOrderItemCode>{item}</AmazonOrderItemCode>",
            "<AdjustmentReason>CustomerReturn</AdjustmentReason>",
        ),
        (PAY, "<Type>Principal</Type>", '<Amount currency="USD">1.00</Amount>'),
    ],
)
def test_children_out_of_the_xsd_order_fail_the_whole_feed_as_a_schema_error(
    url: str, feed_type: str, first: str, second: str
) -> None:
    item = control_order(url, US_UNSHIPPED_LOW)["orderItems"][0]["orderItemId"]
    if feed_type == ACK:
        body = cancel_message(1, US_UNSHIPPED_LOW, [(item, "BuyerCanceled")])
        document = envelope("OrderAcknowledgement", [body])
    else:
        body = refund_message(1, US_UNSHIPPED_LOW, item, "1.00", "USD")
        document = envelope("OrderAdjustment", [body])
    first, second = (p.format(order=US_UNSHIPPED_LOW, item=item) for p in (first, second))
    found = first[1 : first.index(">")].split()[0]  # the element that now comes too late
    assert check_element_order_passes(document)
    swapped = _swap(document, first, second)

    feed, report = finished_report(url, submit(url, feed_type, swapped))
    assert feed["processingStatus"] == "FATAL"
    assert report.findtext(".//ResultMessageCode") == "5000"
    description = report.findtext(".//ResultDescription") or ""
    assert description.startswith("XML Parsing Error at Line 1, Column ")
    assert (
        f"cvc-complex-type.2.4.a: Invalid content was found starting with element '{found}'"
        in description
    )
    assert status_of(url, US_UNSHIPPED_LOW) == "UNSHIPPED"  # nothing applied
    refunds = http.get(f"{url}/_emulator/orders/{US_UNSHIPPED_LOW}/refunds").json()
    assert refunds == []


def check_element_order_passes(document: str) -> bool:
    from emulator.feed_xml import check_element_order, parse_envelope

    root = ET.fromstring(document.encode())
    check_element_order(root, document)
    parse_envelope(document, root.findtext("MessageType") or "")
    return True


def test_the_line_and_column_point_at_the_element_out_of_place() -> None:
    from emulator.feed_xml import FeedRejected, parse_envelope

    document = envelope(
        "OrderAcknowledgement",
        [cancel_message(1, US_UNSHIPPED_LOW, [("item-1", "BuyerCanceled")])],
    ).replace("><", ">\n<")
    swapped = _swap(
        document,
        "<AmazonOrderID>113</AmazonOrderID>\n".replace("113", US_UNSHIPPED_LOW),
        "<StatusCode>Failure</StatusCode>\n",
    )
    # AmazonOrderID now comes after StatusCode: it is the element out of place
    line = swapped.splitlines().index(f"<AmazonOrderID>{US_UNSHIPPED_LOW}</AmazonOrderID>") + 1
    with pytest.raises(FeedRejected) as refused:
        parse_envelope(swapped, "OrderAcknowledgement")
    assert refused.value.code == "5000"
    assert refused.value.description.startswith(f"XML Parsing Error at Line {line}, Column 1:")
    assert "element 'AmazonOrderID'. One of '{StatusCode, Item}' is expected." in (
        refused.value.description
    )


def two_item_order(order_id: str, status: str, shipped_first: bool) -> dict[str, Any]:
    """A merchant-fulfilled order of a mug and two spoons; the buyer asked to cancel the
    spoons. `shipped_first`: the mug has shipped."""
    from tests.support import order_json

    order = order_json(order_id, status=status, cancel_reason=None)
    mug = order["orderItems"][0]
    mug["fulfillment"] = {
        "quantityFulfilled": 1 if shipped_first else 0,
        "quantityUnfulfilled": 0 if shipped_first else 1,
    }
    spoons = {
        "orderItemId": f"{order_id[-7:]}02",
        "quantityOrdered": 2,
        "product": {
            "asin": "B0HENPIN02",
            "sellerSku": "SPOON-2",
            "price": {"unitPrice": {"amount": "4.00", "currencyCode": "USD"}},
        },
        "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": 2},
        "cancellation": {
            "cancellationRequest": {"requester": "BUYER", "cancelReason": "No longer needed"}
        },
    }
    order["orderItems"].append(spoons)
    return order


def partial_cancel_doc(order_id: str, quantity: int, principal: str = "8.00") -> str:
    spoons = f"{order_id[-7:]}02"
    return envelope(
        "OrderAdjustment",
        [
            f"<Message><MessageID>1</MessageID><OrderAdjustment>"
            f"<AmazonOrderID>{order_id}</AmazonOrderID><ActionType>Refund</ActionType>"
            f"<AdjustedItem><AmazonOrderItemCode>{spoons}</AmazonOrderItemCode>"
            "<AdjustmentReason>CustomerCancel</AdjustmentReason><ItemPriceAdjustments>"
            f'<Component><Type>Principal</Type><Amount currency="USD">{principal}</Amount>'
            "</Component></ItemPriceAdjustments>"
            f"<QuantityCancelled>{quantity}</QuantityCancelled></AdjustedItem>"
            "</OrderAdjustment></Message>"
        ],
    )


@pytest.mark.e2e
def test_part_of_an_order_is_cancelled_by_an_adjustment_once_the_rest_shipped(url: str) -> None:
    """Amazon's documented route (help 200198080): ship what can be fulfilled, then an order
    adjustment with QuantityCancelled for the rest. Before anything shipped it is refused."""
    early, late = "113-5550001-5550001", "113-5550002-5550002"
    http.post(
        f"{url}/_emulator/orders",
        json=[
            two_item_order(early, "UNSHIPPED", shipped_first=False),
            two_item_order(late, "PARTIALLY_SHIPPED", shipped_first=True),
        ],
    ).raise_for_status()

    _, refused = finished_report(url, submit(url, PAY, partial_cancel_doc(early, 2)))
    assert refused.findtext(".//ResultMessageCode") == "18028"
    assert "The data you submitted with this item is incomplete or invalid." in (
        refused.findtext(".//ResultDescription") or ""
    )
    assert status_of(url, early) == "UNSHIPPED"
    assert http.get(f"{url}/_emulator/orders/{early}/refunds").json() == []

    _, too_many = finished_report(url, submit(url, PAY, partial_cancel_doc(late, 3)))
    assert too_many.findtext(".//ResultMessageCode") == "18028"
    assert "has 2 unit(s) not shipped" in (too_many.findtext(".//ResultDescription") or "")

    _, report = finished_report(url, submit(url, PAY, partial_cancel_doc(late, 2)))
    assert report.findtext(".//ProcessingSummary/MessagesSuccessful") == "1"
    order = control_order(url, late)
    assert order_status(order) == "SHIPPED"  # nothing left to ship
    spoons = order["orderItems"][1]
    assert spoons["fulfillment"]["quantityUnfulfilled"] == 0
    assert spoons["cancellation"]["cancellationExecution"] == {"cancelledBy": "MERCHANT"}
    assert "cancellationExecution" not in order["orderItems"][0].get("cancellation", {})
    [refund] = http.get(f"{url}/_emulator/orders/{late}/refunds").json()
    assert refund["components"] == [{"type": "Principal", "amount": "8.00", "currencyCode": "USD"}]
