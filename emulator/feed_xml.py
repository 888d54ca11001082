"""Reading an XML feed document: the ``AmazonEnvelope`` and its messages.

A document that is not well-formed XML, is not an AmazonEnvelope, has an element whose children
break the order of Amazon's XSD sequence, carries another message type than its feed type, or
holds no message at all cannot be processed: the feed ends FATAL and nothing is applied. A message that breaks the schema only fails that message.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET
from xml.parsers import expat

from emulator.processing_report import MESSAGE_NOT_VALID, XML_NOT_WELL_FORMED


class FeedRejected(Exception):
    """The whole document is unusable; the feed ends FATAL."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class MessageInvalid(Exception):
    """One message breaks the feed's schema or Amazon's rules; that message gets an error result."""

    def __init__(self, description: str, code: str = MESSAGE_NOT_VALID) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass(frozen=True)
class FeedMessage:
    """One ``<Message>`` of an envelope, with its MessageID checked."""

    message_id: int
    element: ET.Element


def _strip_namespaces(root: ET.Element) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]


def parse_envelope(document: str, message_type: str) -> list[FeedMessage | MessageInvalid]:
    """The envelope's messages, in order; a message without a usable MessageID is a MessageInvalid."""
    try:
        root = ET.fromstring(document.encode("utf-8"))
    except ET.ParseError as error:
        line, column = error.position
        raise FeedRejected(
            XML_NOT_WELL_FORMED,
            f"XML Parsing Error at Line {line}, Column {column}: {str(error).split(':')[0]}.",
        ) from None
    _strip_namespaces(root)
    if root.tag != "AmazonEnvelope":
        raise FeedRejected(
            XML_NOT_WELL_FORMED, f"The root element is <{root.tag}>; expected <AmazonEnvelope>."
        )
    check_element_order(root, document)
    check_document_version(root)
    found_type = (root.findtext("MessageType") or "").strip()
    if found_type != message_type:
        raise FeedRejected(
            XML_NOT_WELL_FORMED,
            f"MessageType is {found_type or 'missing'!r}; this feed type expects {message_type!r}.",
        )
    elements = root.findall("Message")
    if not elements:
        raise FeedRejected(XML_NOT_WELL_FORMED, "The envelope contains no <Message> element.")
    messages: list[FeedMessage | MessageInvalid] = []
    seen: set[int] = set()
    for element in elements:
        raw_id = (element.findtext("MessageID") or "").strip()
        if not raw_id.isdigit() or int(raw_id) < 1:
            messages.append(MessageInvalid(f"MessageID {raw_id!r} is not a positive integer."))
            continue
        if int(raw_id) in seen:
            messages.append(MessageInvalid(f"MessageID {raw_id} is used twice in this feed."))
            continue
        seen.add(int(raw_id))
        messages.append(FeedMessage(int(raw_id), element))
    return messages


#: The children of each element of Henpin's two feeds, in the order of the `xsd:sequence` of
#: Amazon's XSDs (an `xsd:choice` inside a sequence takes one place). Sources:
#: amzn-envelope.xsd (AmazonEnvelope, Message) and amzn-header.xsd (Header) as generated into
#: classes from Amazon's schemas (JAXB propOrder, as in public code: com.elcuk.jaxb.AmazonEnvelope
#: and Header); OrderAcknowledgement.xsd (release_1_9, the schema text quoted in full with its
#: images-na.ssl-images-amazon.com address in public code); OrderAdjustment.xsd
#: (https://images-na.ssl-images-amazon.com/images/G/01/rainier/help/xsd/release_1_9/
#: OrderAdjustment.xsd, its AdjustedItem sequence as generated into com.elcuk.jaxb.OrderAdjustment;
#: `ActionType` after the order id, as in the feeds sellers send and Amazon's answer quoted at
#: https://c-reactjs.developreference.com/article/18085900/). Component is Type then Amount in
#: both ItemPriceAdjustments and PromotionAdjustments.
XSD_SEQUENCES: dict[str, tuple[str, ...]] = {
    "AmazonEnvelope": (
        "Header",
        "MessageType",
        "MarketplaceName",
        "PurgeAndReplace",
        "EffectiveDate",
        "Message",
    ),
    "Header": ("DocumentVersion", "MerchantIdentifier", "OverrideReleaseId"),
    "Message": ("MessageID", "OperationType", "OrderAcknowledgement|OrderAdjustment"),  # a choice
    "OrderAcknowledgement": ("AmazonOrderID", "MerchantOrderID", "StatusCode", "Item"),
    "Item": ("AmazonOrderItemCode", "MerchantOrderItemID", "CancelReason"),
    "OrderAdjustment": ("AmazonOrderID", "MerchantOrderID", "ActionType", "AdjustedItem"),
    "AdjustedItem": (
        "AmazonOrderItemCode",
        "MerchantOrderItemID",
        "MerchantAdjustmentItemID",
        "AdjustmentReason",
        "ItemPriceAdjustments",
        "PromotionAdjustments",
        "DirectPaymentAdjustments",
        "QuantityCancelled",
    ),
    "ItemPriceAdjustments": ("Component",),
    "PromotionAdjustments": ("PromotionClaimCode", "MerchantPromotionID", "Component"),
    "Component": ("Type", "Amount"),
}


def _place(sequence: tuple[str, ...], tag: str) -> int | None:
    for index, names in enumerate(sequence):
        if tag in names.split("|"):
            return index
    return None


def _start_positions(document: str) -> list[tuple[int, int]]:
    """Line and column (1-based) of each start tag, in document order (ElementTree's `iter`
    order), as a schema validator reports them."""
    positions: list[tuple[int, int]] = []
    parser = expat.ParserCreate()

    def started(_name: str, _attributes: dict[str, str]) -> None:
        positions.append((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))

    parser.StartElementHandler = started
    parser.Parse(document.encode("utf-8"), True)
    return positions


def check_element_order(root: ET.Element, document: str) -> None:
    """Every element's children in its XSD sequence order (`XSD_SEQUENCES`), or the feed ends
    FATAL: Amazon validates the document against its XSDs and reports a schema violation as
    result code 5000, "XML Parsing Error at Line …, Column …:" followed by the schema validator's
    (Xerces') words (reports quoted at http://forum.nitrosell.com/t/amazon-504-amazon-error-
    messages-and-what-they-mean/80). For an element out of order the validator says
    "cvc-complex-type.2.4.a: Invalid content was found starting with element 'X'. One of '{…}'
    is expected."; here the list names the elements the sequence still allows at that point.
    Children the sequence does not know are left to the message checks (`only_children`)."""
    where: dict[int, tuple[int, int]] | None = None
    for element in root.iter():
        sequence = XSD_SEQUENCES.get(element.tag)
        if sequence is None:
            continue
        reached = 0
        for child in element:
            place = _place(sequence, child.tag)
            if place is None:
                continue
            if place >= reached:
                reached = place
                continue
            if where is None:
                where = dict(zip(map(id, root.iter()), _start_positions(document), strict=False))
            line, column = where.get(id(child), (0, 0))
            expected = ", ".join(name for names in sequence[reached:] for name in names.split("|"))
            raise FeedRejected(
                XML_NOT_WELL_FORMED,
                f"XML Parsing Error at Line {line}, Column {column}: cvc-complex-type.2.4.a:"
                f" Invalid content was found starting with element '{child.tag}'. One of"
                f" '{{{expected}}}' is expected.",
            )


#: The envelope header's DocumentVersion: 1.01 in Amazon's Guide to XML (header schema and every
#: example; e.g. https://studylib.net/doc/8191101/selling-on-amazon-guide-to-xml) and in the
#: order feeds sellers send (a POST_PAYMENT_ADJUSTMENT_DATA example quoted with Amazon's own
#: answer at https://c-reactjs.developreference.com/article/18085900/). Anything else breaks the
#: header schema, which Amazon reports as an XML error (5000) for the whole document.
DOCUMENT_VERSION = "1.01"


def check_document_version(root: ET.Element) -> None:
    """The envelope's Header must carry DocumentVersion 1.01, or the feed ends FATAL."""
    found = (root.findtext("Header/DocumentVersion") or "").strip()
    if found != DOCUMENT_VERSION:
        raise FeedRejected(
            XML_NOT_WELL_FORMED,
            f"Header/DocumentVersion is {found or 'missing'!r}; the envelope's header schema "
            f"expects {DOCUMENT_VERSION!r}.",
        )


def only_children(element: ET.Element, allowed: set[str]) -> None:
    """Reject an element that holds a child the schema does not allow there."""
    for child in element:
        if child.tag not in allowed:
            raise MessageInvalid(
                f"<{child.tag}> is not allowed in <{element.tag}>; allowed: {', '.join(sorted(allowed))}."
            )


def required_text(element: ET.Element, tag: str) -> str:
    """The text of a required child element."""
    text = (element.findtext(tag) or "").strip()
    if not text:
        raise MessageInvalid(f"<{element.tag}> has no <{tag}>.")
    return text


def optional_text(element: ET.Element, tag: str) -> str | None:
    """The text of an optional child element, None when absent or empty."""
    text = (element.findtext(tag) or "").strip()
    return text or None


def one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    """Check an enumerated value as the XSD would."""
    if value not in allowed:
        raise MessageInvalid(f"{what} {value!r} is not one of: {', '.join(allowed)}.")
    return value
