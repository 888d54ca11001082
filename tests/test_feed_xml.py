"""Feed XML: Henpin's documents are what Amazon's schemas ask for, and reports read right."""

from __future__ import annotations

from decimal import Decimal

import pytest

from henpin.amazon.feed_xml import (
    AdjustmentReason,
    FeedBuildError,
    ProcessingReportError,
    Refund,
    RefundComponent,
    RefundItem,
    build_feed,
    order_acknowledgement_feed,
    parse_processing_report,
    payment_adjustment_feed,
    read_feed,
)
from henpin.domain import (
    ActionResult,
    CancelOrder,
    CancelReason,
    FeedType,
    PriceComponent,
    PromotionComponent,
    PromotionPart,
)

CANCEL_GOLDEN = """\
<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">
  <Header>
    <DocumentVersion>1.01</DocumentVersion>
    <MerchantIdentifier>A1SELLER</MerchantIdentifier>
  </Header>
  <MessageType>OrderAcknowledgement</MessageType>
  <Message>
    <MessageID>1</MessageID>
    <OrderAcknowledgement>
      <AmazonOrderID>113-1234567-1234567</AmazonOrderID>
      <StatusCode>Failure</StatusCode>
      <Item>
        <AmazonOrderItemCode>12345678901234</AmazonOrderItemCode>
        <CancelReason>BuyerCanceled</CancelReason>
      </Item>
      <Item>
        <AmazonOrderItemCode>12345678901235</AmazonOrderItemCode>
        <CancelReason>BuyerCanceled</CancelReason>
      </Item>
    </OrderAcknowledgement>
  </Message>
  <Message>
    <MessageID>2</MessageID>
    <OrderAcknowledgement>
      <AmazonOrderID>113-7654321-7654321</AmazonOrderID>
      <StatusCode>Failure</StatusCode>
      <Item>
        <AmazonOrderItemCode>76543210987654</AmazonOrderItemCode>
        <CancelReason>NoInventory</CancelReason>
      </Item>
    </OrderAcknowledgement>
  </Message>
</AmazonEnvelope>
"""

REFUND_GOLDEN_MESSAGE = """\
  <Message>
    <MessageID>7</MessageID>
    <OrderAdjustment>
      <AmazonOrderID>302-1234567-1234567</AmazonOrderID>
      <ActionType>Refund</ActionType>
      <AdjustedItem>
        <AmazonOrderItemCode>30212345678901</AmazonOrderItemCode>
        <AdjustmentReason>CustomerReturn</AdjustmentReason>
        <ItemPriceAdjustments>
          <Component>
            <Type>Principal</Type>
            <Amount currency="EUR">19.99</Amount>
          </Component>
          <Component>
            <Type>RestockingFee</Type>
            <Amount currency="EUR">-2.00</Amount>
          </Component>
        </ItemPriceAdjustments>
      </AdjustedItem>
    </OrderAdjustment>
  </Message>
"""


def _refund() -> Refund:
    return Refund(
        order_id="302-1234567-1234567",
        items=[
            RefundItem(
                order_item_id="30212345678901",
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal("19.99"), currency="EUR"
                    ),
                    RefundComponent(
                        type=PriceComponent.RESTOCKING_FEE, amount=Decimal("-2.00"), currency="EUR"
                    ),
                ],
            )
        ],
    )


def test_cancellation_feed_matches_the_golden_document() -> None:
    document = order_acknowledgement_feed(
        "A1SELLER",
        [
            (
                1,
                CancelOrder(
                    order_id="113-1234567-1234567",
                    order_item_ids=["12345678901234", "12345678901235"],
                ),
            ),
            (
                2,
                CancelOrder(
                    order_id="113-7654321-7654321",
                    reason=CancelReason.NO_INVENTORY,
                    order_item_ids=["76543210987654"],
                ),
            ),
        ],
    )
    assert document == CANCEL_GOLDEN


def test_refund_feed_carries_each_component_with_its_currency() -> None:
    document = payment_adjustment_feed("A1SELLER", [(7, _refund())])
    assert "<MessageType>OrderAdjustment</MessageType>" in document
    assert REFUND_GOLDEN_MESSAGE in document


def test_yen_amounts_have_no_decimals_and_exponents_are_written_out() -> None:
    refund = Refund(
        order_id="250-1234567-8901234",
        items=[
            RefundItem(
                order_item_id="25012345678901",
                reason=AdjustmentReason.CUSTOMER_CANCEL,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal("5980"), currency="JPY"
                    ),
                    RefundComponent(
                        type=PriceComponent.SHIPPING, amount=Decimal("1E+3"), currency="JPY"
                    ),
                ],
            )
        ],
    )
    document = payment_adjustment_feed("A1SELLER", [(1, refund)])
    assert '<Amount currency="JPY">5980</Amount>' in document
    assert '<Amount currency="JPY">1000</Amount>' in document


@pytest.mark.parametrize(
    "payloads",
    [
        [
            (1, CancelOrder(order_id="113-1", order_item_ids=["a", "b"])),
            (
                2,
                CancelOrder(
                    order_id="113-2", reason=CancelReason.GENERAL_ADJUSTMENT, order_item_ids=["c"]
                ),
            ),
        ],
        [(3, _refund()), (9, _refund().model_copy(update={"action_type": "Cancel"}))],
    ],
    ids=["cancel", "refund"],
)
def test_round_trip(payloads: list[tuple[int, CancelOrder | Refund]]) -> None:
    feed_type = (
        FeedType.ORDER_ACKNOWLEDGEMENT
        if isinstance(payloads[0][1], CancelOrder)
        else FeedType.PAYMENT_ADJUSTMENT
    )
    document = build_feed(feed_type, "A1SELLER", list(payloads))
    assert read_feed(document) == (feed_type, payloads)


def test_markup_and_non_ascii_are_escaped_and_survive() -> None:
    nasty = 'A&B <"Shop"> ünï ショップ'
    cancel = CancelOrder(order_id="<113>&'1'", order_item_ids=["x&y"])
    document = order_acknowledgement_feed(nasty, [(1, cancel)])
    assert 'A&amp;B &lt;"Shop"&gt; ünï ショップ' in document
    assert "<AmazonOrderID>&lt;113&gt;&amp;'1'</AmazonOrderID>" in document
    assert read_feed(document) == (FeedType.ORDER_ACKNOWLEDGEMENT, [(1, cancel)])


def test_characters_xml_cannot_carry_are_refused() -> None:
    with pytest.raises(FeedBuildError, match="cannot carry"):
        order_acknowledgement_feed("A1", [(1, CancelOrder(order_id="1\x00", order_item_ids=["a"]))])


def test_a_cancellation_without_items_is_refused_with_the_reason() -> None:
    with pytest.raises(FeedBuildError, match="order item ids"):
        order_acknowledgement_feed("A1", [(1, CancelOrder(order_id="113-1"))])


@pytest.mark.parametrize("ids", [[], [0], [1, 1]], ids=["none", "zero", "twice"])
def test_message_ids_must_be_positive_and_unique(ids: list[int]) -> None:
    with pytest.raises(FeedBuildError):
        order_acknowledgement_feed(
            "A1", [(i, CancelOrder(order_id="1", order_item_ids=["a"])) for i in ids]
        )


def test_a_feed_carries_only_its_own_kind_of_action() -> None:
    with pytest.raises(FeedBuildError):
        build_feed(FeedType.PAYMENT_ADJUSTMENT, "A1", [(1, CancelOrder(order_id="1"))])


def test_refund_rules() -> None:
    with pytest.raises(ValueError, match="one currency"):
        Refund(
            order_id="1",
            items=[
                RefundItem(
                    order_item_id="a",
                    reason=AdjustmentReason.OTHER,
                    components=[
                        RefundComponent(
                            type=PriceComponent.PRINCIPAL, amount=Decimal(1), currency="EUR"
                        ),
                        RefundComponent(type=PriceComponent.TAX, amount=Decimal(1), currency="USD"),
                    ],
                )
            ],
        )
    with pytest.raises(ValueError):
        RefundComponent(type=PriceComponent.PRINCIPAL, amount=Decimal(0), currency="EUR")
    with pytest.raises(ValueError):
        RefundComponent(type=PriceComponent.PRINCIPAL, amount=Decimal(1), currency="euro")
    with pytest.raises(ValueError):
        Refund(order_id="1", items=[])


# --- processing reports ------------------------------------------------------------------------

# As Amazon documents it: a summary, and a Result only for messages with an error or a warning.
AMAZON_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:noNamespaceSchemaLocation="amzn-envelope.xsd">
  <Header>
    <DocumentVersion>1.02</DocumentVersion>
    <MerchantIdentifier>A1SELLER</MerchantIdentifier>
  </Header>
  <MessageType>ProcessingReport</MessageType>
  <Message>
    <MessageID>1</MessageID>
    <ProcessingReport>
      <DocumentTransactionID>50042018533</DocumentTransactionID>
      <StatusCode>Complete</StatusCode>
      <ProcessingSummary>
        <MessagesProcessed>3</MessagesProcessed>
        <MessagesSuccessful>2</MessagesSuccessful>
        <MessagesWithError>1</MessagesWithError>
        <MessagesWithWarning>1</MessagesWithWarning>
      </ProcessingSummary>
      <Result>
        <MessageID>2</MessageID>
        <ResultCode>Error</ResultCode>
        <ResultMessageCode>18028</ResultMessageCode>
        <ResultDescription>The order 113-2 can no longer be cancelled &amp; was shipped.</ResultDescription>
        <AdditionalInfo><AmazonOrderID>113-2</AmazonOrderID></AdditionalInfo>
      </Result>
      <Result>
        <MessageID>3</MessageID>
        <ResultCode>Warning</ResultCode>
        <ResultMessageCode>5002</ResultMessageCode>
        <ResultDescription>MerchantOrderID ignored.</ResultDescription>
      </Result>
    </ProcessingReport>
  </Message>
</AmazonEnvelope>
"""


def test_report_gives_each_message_its_result() -> None:
    report = parse_processing_report(AMAZON_REPORT)
    assert (report.messages_processed, report.messages_successful) == (3, 2)
    assert (report.messages_with_error, report.messages_with_warning) == (1, 1)
    assert report.document_transaction_id == "50042018533"
    assert report.outcome(1) == ActionResult(ok=True)
    assert report.outcome(2) == ActionResult(
        ok=False,
        code="18028",
        description="The order 113-2 can no longer be cancelled & was shipped.",
    )
    assert report.outcome(3).ok and report.outcome(3).code == "5002"


def test_an_error_beats_a_warning_for_the_same_message() -> None:
    report = parse_processing_report(
        AMAZON_REPORT.replace("<MessageID>3</MessageID>", "<MessageID>2</MessageID>")
    )
    outcome = report.outcome(2)
    assert not outcome.ok and outcome.code == "18028"
    assert outcome.description and "ignored" in outcome.description


def test_a_document_error_fails_every_message_when_nothing_was_applied() -> None:
    fatal = """<AmazonEnvelope><MessageType>ProcessingReport</MessageType><Message>
      <MessageID>1</MessageID><ProcessingReport><StatusCode>Complete</StatusCode>
      <ProcessingSummary><MessagesProcessed>0</MessagesProcessed>
      <MessagesSuccessful>0</MessagesSuccessful><MessagesWithError>1</MessagesWithError>
      <MessagesWithWarning>0</MessagesWithWarning></ProcessingSummary>
      <Result><MessageID>0</MessageID><ResultCode>Error</ResultCode>
      <ResultMessageCode>5000</ResultMessageCode>
      <ResultDescription>XML Parsing Error at Line 1.</ResultDescription></Result>
      </ProcessingReport></Message></AmazonEnvelope>"""
    report = parse_processing_report(fatal)
    assert report.outcome(1) == ActionResult(
        ok=False, code="5000", description="XML Parsing Error at Line 1."
    )


def test_the_emulators_report_reads_the_same_way() -> None:
    from emulator.processing_report import processing_report
    from emulator.state import FeedResult

    text = processing_report(
        "42",
        [
            FeedResult(1, "113-1", "Success", None, "Cancelled 1 item(s)."),
            FeedResult(2, "113-2", "Error", "18028", "Order 113-2 is SHIPPED."),
        ],
    )
    report = parse_processing_report(text)
    assert report.outcome(1).ok
    assert report.outcome(2) == ActionResult(
        ok=False, code="18028", description="Order 113-2 is SHIPPED."
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not well-formed"),
        ("<AmazonEnvelope><Message>", "not well-formed"),
        ("<html><body>Service Unavailable</body></html>", "not an AmazonEnvelope"),
        (
            "<AmazonEnvelope><Message><MessageID>1</MessageID></Message></AmazonEnvelope>",
            "no Message/ProcessingReport",
        ),
        (AMAZON_REPORT.replace("<MessagesProcessed>3", "<MessagesProcessed>three"), "not a number"),
        (AMAZON_REPORT.replace("<ResultCode>Warning", "<ResultCode>Maybe"), "unknown ResultCode"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><AmazonEnvelope/>', "DTD"),
    ],
    ids=["empty", "truncated", "html", "no-report", "bad-count", "bad-code", "dtd"],
)
def test_a_malformed_report_is_a_clear_error_keeping_the_text(text: str, problem: str) -> None:
    with pytest.raises(ProcessingReportError, match=problem) as raised:
        parse_processing_report(text)
    assert raised.value.raw == text


def _every_refund_shape() -> list[Refund]:
    """Refunds with every component type, both action types, several items, yen and a
    restocking fee: each child element Henpin's writer can produce."""
    euro = [
        RefundComponent(type=kind, amount=Decimal("1.00"), currency="EUR")
        for kind in PriceComponent
    ]
    yen = [RefundComponent(type=PriceComponent.PRINCIPAL, amount=Decimal("1500"), currency="JPY")]
    items = [
        RefundItem(
            order_item_id="a",
            reason=AdjustmentReason.CUSTOMER_RETURN,
            components=euro,
            promotions=[
                PromotionComponent(type=part, amount=Decimal("-0.50"), currency="EUR")
                for part in PromotionPart
            ],
        ),
        RefundItem(order_item_id="b", reason=AdjustmentReason.NO_INVENTORY, components=euro[:1]),
    ]
    return [
        Refund(order_id="302-1", items=items),
        Refund(order_id="302-2", action_type="Cancel", items=items[1:]),
        Refund(
            order_id="503-1",
            items=[RefundItem(order_item_id="c", reason=AdjustmentReason.OTHER, components=yen)],
        ),
        Refund(  # part of an order cancelled after the rest shipped
            order_id="503-2",
            items=[
                RefundItem(
                    order_item_id="d",
                    reason=AdjustmentReason.CUSTOMER_CANCEL,
                    components=yen,
                    promotions=[
                        PromotionComponent(
                            type=PromotionPart.PRINCIPAL, amount=Decimal("-100"), currency="JPY"
                        )
                    ],
                    quantity_cancelled=2,
                )
            ],
        ),
    ]


@pytest.mark.parametrize("feed_type", list(FeedType))
def test_every_feed_henpin_writes_has_its_elements_in_amazons_xsd_order(
    feed_type: FeedType,
) -> None:
    """Checked by the emulator's own order rules (Amazon's XSD sequences): the envelope, the
    header and every message of both feeds."""
    import xml.etree.ElementTree as ET

    from emulator.feed_xml import XSD_SEQUENCES, FeedMessage, check_element_order, parse_envelope

    payloads: list[tuple[int, CancelOrder | Refund]]
    if feed_type is FeedType.ORDER_ACKNOWLEDGEMENT:
        payloads = [
            (n, CancelOrder(order_id=f"113-{n}", reason=reason, order_item_ids=["a", "b"]))
            for n, reason in enumerate(CancelReason, start=1)
        ]
    else:
        payloads = list(enumerate(_every_refund_shape(), start=1))
    document = build_feed(feed_type, "A1SELLER", payloads)
    root = ET.fromstring(document)
    check_element_order(root, document)  # raises FeedRejected when out of order
    messages = parse_envelope(document, root.findtext("MessageType") or "")
    assert [m.message_id if isinstance(m, FeedMessage) else m for m in messages] == [
        n for n, _ in payloads
    ]
    for element in root.iter():
        if element.tag in XSD_SEQUENCES:
            known = {n for names in XSD_SEQUENCES[element.tag] for n in names.split("|")}
            assert {child.tag for child in element} <= known, element.tag


def test_a_partial_cancellation_writes_quantity_cancelled_last_and_reads_back() -> None:
    [*_, partial] = _every_refund_shape()
    document = payment_adjustment_feed("A1SELLER", [(4, partial)])
    assert (
        "<AdjustmentReason>CustomerCancel</AdjustmentReason>" in document
        and "</PromotionAdjustments>\n        <QuantityCancelled>2</QuantityCancelled>\n"
        "      </AdjustedItem>"
        in document
    )
    assert read_feed(document) == (FeedType.PAYMENT_ADJUSTMENT, [(4, partial)])


def test_a_promotions_share_follows_the_item_price_and_survives_reading() -> None:
    refund = Refund(
        order_id="113-1234567-1234567",
        items=[
            RefundItem(
                order_item_id="11111111111111",
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal("40.00"), currency="USD"
                    ),
                    RefundComponent(
                        type=PriceComponent.SHIPPING, amount=Decimal("5.99"), currency="USD"
                    ),
                ],
                promotions=[
                    PromotionComponent(
                        type=PromotionPart.PRINCIPAL, amount=Decimal("-8.00"), currency="USD"
                    )
                ],
            )
        ],
    )
    document = payment_adjustment_feed("A1SELLER", [(1, refund)])
    assert document.index("</ItemPriceAdjustments>") < document.index("<PromotionAdjustments>")
    assert (
        "<PromotionAdjustments><Component><Type>Principal</Type>"
        '<Amount currency="USD">-8.00</Amount></Component></PromotionAdjustments></AdjustedItem>'
    ) in "".join(line.strip() for line in document.splitlines())
    assert read_feed(document) == (FeedType.PAYMENT_ADJUSTMENT, [(1, refund)])
    assert refund.items[0].total == Decimal("37.99")
    with pytest.raises(ValueError, match="negative"):
        PromotionComponent(type=PromotionPart.SHIPPING, amount=Decimal("1.00"), currency="USD")
