"""Amazon feed XML: the one place Henpin writes feed documents and reads processing reports.

Two feeds carry Henpin's actions, both in Amazon's XML envelope (`AmazonEnvelope`, Header with
DocumentVersion 1.01 and the seller's MerchantIdentifier, one `Message` per action):

- `POST_ORDER_ACKNOWLEDGEMENT_DATA`: cancel an unshipped order. `StatusCode` Failure and, per
  item, `AmazonOrderItemCode` + `CancelReason`. Amazon's XSD (OrderAcknowledgement.xsd) makes
  `AmazonOrderItemCode` mandatory inside `Item`, and `CancelReason` only exists inside `Item`:
  so a reasoned cancellation (e.g. BuyerCanceled, which does not count against the seller's
  cancellation rate) must list the order's items. A `CancelOrder` without items is refused.
- `POST_PAYMENT_ADJUSTMENT_DATA`: refund fully or partly (`OrderAdjustment`, `ActionType`,
  one `AdjustedItem` per item with `AdjustmentReason` and `ItemPriceAdjustments/Component`).
  It also cancels part of a multi-item order, as Amazon documents it: once the other items are
  shipped, a refund of the items that cannot be fulfilled with `QuantityCancelled` and reason
  `CustomerCancel` or `NoInventory` (Seller Central help 200198080, "Cancel an item, order, or
  multiple orders"; help G200387280: "To cancel an entire order, you must use the Order
  Acknowledgement feed"). Elements follow the XSD sequences (checked against the emulator's
  `XSD_SEQUENCES` in tests). Where the buyer had a promotion, `PromotionAdjustments/Component` with the promotion's share
  as a negative amount (Type Principal or Shipping, the XSD's PromotionApplicationType).
  Amazon's schema: images-na.ssl-images-amazon.com/images/G/01/rainier/help/xsd/release_4_1/
  OrderAdjustment.xsd (AdjustedItem: AmazonOrderItemCode, MerchantOrderItemID,
  MerchantAdjustmentItemID, AdjustmentReason, ItemPriceAdjustments, PromotionAdjustments*,
  DirectPaymentAdjustments, QuantityCancelled; PromotionAdjustments: PromotionClaimCode?,
  MerchantPromotionID?, Component+). The components and promotions add up to the refund.

Amazon answers each feed with a processing report (`ProcessingReport`: a summary and one
`Result` per message that had an error or a warning); `parse_processing_report` turns it into
one `ActionResult` per MessageID. A message without an Error result was applied.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal

from pydantic import BaseModel, Field, ValidationError

from henpin.domain import (
    ActionResult,
    AdjustmentReason,
    CancelOrder,
    CancelReason,
    FeedType,
    PromotionComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.domain import PriceComponent as PriceComponent  # re-exported: callers import it here
from henpin.money import excess_decimals

DOCUMENT_VERSION = "1.01"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
XSI = "http://www.w3.org/2001/XMLSchema-instance"

MESSAGE_TYPES: dict[FeedType, str] = {
    FeedType.ORDER_ACKNOWLEDGEMENT: "OrderAcknowledgement",
    FeedType.PAYMENT_ADJUSTMENT: "OrderAdjustment",
}

# Characters XML 1.0 cannot carry at all, even escaped.
_ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class FeedBuildError(ValueError):
    """An action cannot be written as a valid feed message (a bug or bad input, not Amazon)."""


class ProcessingReportError(ValueError):
    """Amazon's processing report could not be read; the raw text is kept for a person."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


# --- Refund payload ---------------------------------------------------------------------------


FeedPayload = CancelOrder | Refund

PAYLOAD_MODELS: dict[FeedType, type[CancelOrder] | type[Refund]] = {
    FeedType.ORDER_ACKNOWLEDGEMENT: CancelOrder,
    FeedType.PAYMENT_ADJUSTMENT: Refund,
}


# --- Building feeds ---------------------------------------------------------------------------


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    if _ILLEGAL_XML_CHARS.search(value):
        raise FeedBuildError(f"<{tag}> value {value!r} contains characters XML cannot carry")
    element = ET.SubElement(parent, tag)
    element.text = value
    return element


def _envelope(seller_id: str, feed_type: FeedType) -> ET.Element:
    if not seller_id.strip():
        raise FeedBuildError("a feed needs the seller's MerchantIdentifier (seller id)")
    root = ET.Element(
        "AmazonEnvelope",
        {"xmlns:xsi": XSI, "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd"},
    )
    header = ET.SubElement(root, "Header")
    _text(header, "DocumentVersion", DOCUMENT_VERSION)
    _text(header, "MerchantIdentifier", seller_id)
    _text(root, "MessageType", MESSAGE_TYPES[feed_type])
    return root


def _serialize(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def _check_message_ids(message_ids: list[int]) -> None:
    if not message_ids:
        raise FeedBuildError("a feed needs at least one message")
    if any(m < 1 for m in message_ids):
        raise FeedBuildError(f"MessageIDs must be positive, got {message_ids}")
    if len(set(message_ids)) != len(message_ids):
        raise FeedBuildError(f"MessageIDs must be unique within a feed, got {message_ids}")


def _cancel_message(parent: ET.Element, message_id: int, cancel: CancelOrder) -> None:
    if not cancel.order_item_ids:
        raise FeedBuildError(
            f"cancelling order {cancel.order_id}: list its order item ids. Amazon's "
            "OrderAcknowledgement schema only accepts a CancelReason per AmazonOrderItemCode, "
            "and a cancellation without a reason counts against the seller."
        )
    message = ET.SubElement(parent, "Message")
    _text(message, "MessageID", str(message_id))
    ack = ET.SubElement(message, "OrderAcknowledgement")
    _text(ack, "AmazonOrderID", cancel.order_id)
    _text(ack, "StatusCode", "Failure")
    for item_id in cancel.order_item_ids:
        item = ET.SubElement(ack, "Item")
        _text(item, "AmazonOrderItemCode", item_id)
        _text(item, "CancelReason", cancel.reason.value)


def _refund_message(parent: ET.Element, message_id: int, refund: Refund) -> None:
    message = ET.SubElement(parent, "Message")
    _text(message, "MessageID", str(message_id))
    adjustment = ET.SubElement(message, "OrderAdjustment")
    _text(adjustment, "AmazonOrderID", refund.order_id)
    _text(adjustment, "ActionType", refund.action_type)
    for refund_item in refund.items:
        item = ET.SubElement(adjustment, "AdjustedItem")
        _text(item, "AmazonOrderItemCode", refund_item.order_item_id)
        _text(item, "AdjustmentReason", refund_item.reason.value)
        prices = ET.SubElement(item, "ItemPriceAdjustments")
        for component in refund_item.components:
            _component(prices, component, refund.order_id)
        # The promotion's share, after ItemPriceAdjustments (OrderAdjustment.xsd's order:
        # ItemPriceAdjustments, PromotionAdjustments, DirectPaymentAdjustments, ...); its
        # PromotionClaimCode and MerchantPromotionID are optional and not written.
        if refund_item.promotions:
            promotions = ET.SubElement(item, "PromotionAdjustments")
            for promotion in refund_item.promotions:
                _component(promotions, promotion, refund.order_id)
        if refund_item.quantity_cancelled is not None:  # last in AdjustedItem's XSD sequence
            _text(item, "QuantityCancelled", str(refund_item.quantity_cancelled))


def _component(
    parent: ET.Element, component: RefundComponent | PromotionComponent, order_id: str
) -> None:
    element = ET.SubElement(parent, "Component")
    _text(element, "Type", component.type.value)
    _text(element, "Amount", format(_exact(component, order_id), "f")).set(
        "currency", component.currency
    )


def _exact(component: RefundComponent | PromotionComponent, order_id: str) -> Decimal:
    """The amount as written, after checking it is at the currency's minor unit (defence in
    depth: every edge already refuses 12.345 USD; Amazon refuses it too)."""
    problem = excess_decimals(component.amount, component.currency)
    if problem:
        raise FeedBuildError(f"order {order_id}, {component.type.value}: {problem}")
    return component.amount


def order_acknowledgement_feed(seller_id: str, messages: list[tuple[int, CancelOrder]]) -> str:
    """A `POST_ORDER_ACKNOWLEDGEMENT_DATA` document cancelling each order, one message each."""
    _check_message_ids([m for m, _ in messages])
    root = _envelope(seller_id, FeedType.ORDER_ACKNOWLEDGEMENT)
    for message_id, cancel in messages:
        _cancel_message(root, message_id, cancel)
    return _serialize(root)


def payment_adjustment_feed(seller_id: str, messages: list[tuple[int, Refund]]) -> str:
    """A `POST_PAYMENT_ADJUSTMENT_DATA` document refunding each order, one message each."""
    _check_message_ids([m for m, _ in messages])
    root = _envelope(seller_id, FeedType.PAYMENT_ADJUSTMENT)
    for message_id, refund in messages:
        _refund_message(root, message_id, refund)
    return _serialize(root)


def parse_payload(feed_type: FeedType, data: dict[str, object]) -> FeedPayload:
    """A stored action payload (JSON) back as its typed model; a bad one is a FeedBuildError."""
    try:
        return PAYLOAD_MODELS[feed_type].model_validate(data)
    except ValidationError as exc:
        raise FeedBuildError(f"stored {feed_type.value} payload is invalid: {exc}") from exc


def build_feed(feed_type: FeedType, seller_id: str, messages: list[tuple[int, FeedPayload]]) -> str:
    """The feed document of `feed_type` for these (MessageID, payload) pairs."""
    if feed_type is FeedType.ORDER_ACKNOWLEDGEMENT:
        cancels = [(m, p) for m, p in messages if isinstance(p, CancelOrder)]
        if len(cancels) != len(messages):
            raise FeedBuildError("an order acknowledgement feed carries only CancelOrder actions")
        return order_acknowledgement_feed(seller_id, cancels)
    refunds = [(m, p) for m, p in messages if isinstance(p, Refund)]
    if len(refunds) != len(messages):
        raise FeedBuildError("a payment adjustment feed carries only Refund actions")
    return payment_adjustment_feed(seller_id, refunds)


# --- Reading XML ------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _child_text(element: ET.Element, name: str) -> str | None:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _parse_xml(xml: str, what: str) -> ET.Element:
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise ProcessingReportError(f"{what} declares a DTD or entities; refused", xml)
    try:
        root = ET.fromstring(xml.strip())
    except ET.ParseError as exc:
        raise ProcessingReportError(f"{what} is not well-formed XML: {exc}", xml) from exc
    if _local(root.tag) != "AmazonEnvelope":
        raise ProcessingReportError(f"{what} is not an AmazonEnvelope (<{root.tag}>)", xml)
    return root


def read_feed(xml: str) -> tuple[FeedType, list[tuple[int, FeedPayload]]]:
    """Read one of Henpin's own feed documents back (diagnostics, tests, reconciliation)."""
    root = _parse_xml(xml, "feed document")
    message_type = _child_text(root, "MessageType")
    types = {v: k for k, v in MESSAGE_TYPES.items()}
    if message_type not in types:
        raise ProcessingReportError(f"unknown MessageType {message_type!r}", xml)
    feed_type = types[message_type]
    messages: list[tuple[int, FeedPayload]] = []
    try:
        for message in _children(root, "Message"):
            message_id = int(_child_text(message, "MessageID") or "0")
            body = _child(message, message_type)
            if body is None:
                raise ProcessingReportError(f"message {message_id} has no <{message_type}>", xml)
            messages.append((message_id, _read_payload(feed_type, body)))
    except (ValueError, ValidationError) as exc:
        if isinstance(exc, ProcessingReportError):
            raise
        raise ProcessingReportError(f"feed document does not fit its schema: {exc}", xml) from exc
    return feed_type, messages


def _read_payload(feed_type: FeedType, body: ET.Element) -> FeedPayload:
    order_id = _child_text(body, "AmazonOrderID") or ""
    if feed_type is FeedType.ORDER_ACKNOWLEDGEMENT:
        items = _children(body, "Item")
        reasons = {_child_text(i, "CancelReason") for i in items}
        if len(reasons) != 1:
            raise ValueError(f"order {order_id}: expected one CancelReason, got {reasons}")
        return CancelOrder(
            order_id=order_id,
            reason=CancelReason(reasons.pop() or ""),
            order_item_ids=[_child_text(i, "AmazonOrderItemCode") or "" for i in items],
        )
    return Refund.model_validate(
        {
            "order_id": order_id,
            "action_type": _child_text(body, "ActionType") or "Refund",
            "items": [_refund_item(item) for item in _children(body, "AdjustedItem")],
        }
    )


def _refund_item(item: ET.Element) -> RefundItem:
    prices = _child(item, "ItemPriceAdjustments")
    cancelled = _child_text(item, "QuantityCancelled")
    components = [
        RefundComponent.model_validate(_type_and_amount(component))
        for component in (_children(prices, "Component") if prices is not None else [])
    ]
    promotions = [
        PromotionComponent.model_validate(_type_and_amount(component))
        for block in _children(item, "PromotionAdjustments")
        for component in _children(block, "Component")
    ]
    return RefundItem(
        order_item_id=_child_text(item, "AmazonOrderItemCode") or "",
        reason=AdjustmentReason(_child_text(item, "AdjustmentReason") or ""),
        components=components,
        quantity_cancelled=int(cancelled) if cancelled else None,
        promotions=promotions,
    )


def _type_and_amount(component: ET.Element) -> dict[str, object]:
    amount = _child(component, "Amount")
    return {
        "type": _child_text(component, "Type") or "",
        "amount": Decimal((amount.text or "").strip()) if amount is not None else Decimal(0),
        "currency": amount.get("currency", "") if amount is not None else "",
    }


# --- Processing reports -----------------------------------------------------------------------


class ProcessingReport(BaseModel):
    """Amazon's answer to one feed: counts, and the result of each message that had one."""

    document_transaction_id: str | None = None
    status_code: str | None = None
    messages_processed: int = 0
    messages_successful: int = 0
    messages_with_error: int = 0
    messages_with_warning: int = 0
    has_summary: bool = True  # the ProcessingSummary and its MessagesProcessed were there
    warned: list[int] = Field(default_factory=list)  # MessageIDs with a Warning result
    results: dict[int, ActionResult] = Field(default_factory=dict)
    document_errors: list[ActionResult] = Field(default_factory=list)

    def outcome(self, message_id: int) -> ActionResult:
        """What happened to one message.

        A message with its own Error result failed; with only a Warning it was applied. An
        error about the whole document (MessageID 0 or none) fails every message when Amazon
        applied none of them; otherwise a message without its own error was applied.
        """
        if message_id in self.results:
            return self.results[message_id]
        if self.document_errors and self.messages_successful == 0:
            first = self.document_errors[0]
            return ActionResult(ok=False, code=first.code, description=first.description)
        return ActionResult(ok=True)


def _int(summary: ET.Element | None, name: str, raw: str) -> int:
    if summary is None:
        return 0
    text = _child_text(summary, name)
    if text is None:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ProcessingReportError(
            f"ProcessingSummary/{name} is not a number: {text!r}", raw
        ) from None


def _merge(previous: ActionResult | None, result: ActionResult) -> ActionResult:
    """Two results for one message: it failed if either is an error; keep both descriptions."""
    if previous is None:
        return result
    worst = result if previous.ok and not result.ok else previous
    descriptions = [d for d in (previous.description, result.description) if d]
    return ActionResult(
        ok=previous.ok and result.ok, code=worst.code, description="; ".join(descriptions) or None
    )


def parse_processing_report(xml: str) -> ProcessingReport:
    """Read a feed's processing report; raise `ProcessingReportError` when it is not one."""
    root = _parse_xml(xml, "processing report")
    message = _child(root, "Message")
    report = _child(message, "ProcessingReport") if message is not None else None
    if report is None:
        raise ProcessingReportError("no Message/ProcessingReport in the document", xml)
    summary = _child(report, "ProcessingSummary")
    results: dict[int, ActionResult] = {}
    document_errors: list[ActionResult] = []
    warned: set[int] = set()
    for result in _children(report, "Result"):
        result_code = _child_text(result, "ResultCode") or ""
        if result_code not in ("Error", "Warning"):
            raise ProcessingReportError(f"unknown ResultCode {result_code!r}", xml)
        action_result = ActionResult(
            ok=result_code == "Warning",
            code=_child_text(result, "ResultMessageCode") or result_code,
            description=_child_text(result, "ResultDescription"),
        )
        message_id_text = _child_text(result, "MessageID")
        try:
            message_id = int(message_id_text) if message_id_text else 0
        except ValueError:
            raise ProcessingReportError(
                f"Result/MessageID {message_id_text!r} is not a number", xml
            ) from None
        if message_id <= 0:
            if not action_result.ok:
                document_errors.append(action_result)
            continue
        if action_result.ok:
            warned.add(message_id)
        results[message_id] = _merge(results.get(message_id), action_result)
    return ProcessingReport(
        document_transaction_id=_child_text(report, "DocumentTransactionID"),
        status_code=_child_text(report, "StatusCode"),
        messages_processed=_int(summary, "MessagesProcessed", xml),
        messages_successful=_int(summary, "MessagesSuccessful", xml),
        messages_with_error=_int(summary, "MessagesWithError", xml),
        messages_with_warning=_int(summary, "MessagesWithWarning", xml),
        has_summary=summary is not None and _child(summary, "MessagesProcessed") is not None,
        warned=sorted(warned),
        results=results,
        document_errors=document_errors,
    )
