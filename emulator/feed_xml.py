"""Reading an XML feed document: the ``AmazonEnvelope`` and its messages.

A document that is not well-formed XML, is not an AmazonEnvelope, carries another message type
than its feed type, or holds no message at all cannot be processed: the feed ends FATAL and
nothing is applied. A message that breaks the schema only fails that message.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET

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
