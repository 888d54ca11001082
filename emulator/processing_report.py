"""Amazon's feed processing report: the XML ``ProcessingReport`` a finished feed's result document holds.

Like Amazon, the report counts every message but lists a ``Result`` only for messages with an
error or a warning. Result codes follow those seen in Amazon's reports: ``5000`` the document is
not well-formed XML (the feed ends FATAL), ``5001`` a message does not follow the feed's schema
(missing element, value outside its enumeration), ``18028`` the data does not fit Amazon's records
(unknown order or item, an order that can no longer be cancelled, a refund above what was paid),
``90000`` an internal error injected by the fault modes (nothing applied; resubmit).
Clients should act on ``ResultCode`` and re-read the order, not on the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from emulator.state import FeedResult

MERCHANT_IDENTIFIER = "A1HENPINDEMO00"
XML_NOT_WELL_FORMED = "5000"
MESSAGE_NOT_VALID = "5001"
DATA_NOT_ACCEPTED = "18028"
#: The emulator's number for an injected internal error (fault modes); resubmitting is the fix.
INTERNAL_ERROR = "90000"
INTERNAL_ERROR_DESCRIPTION = (
    "An internal error occurred while processing this data. Nothing was applied; resubmit it."
)


def _add(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def processing_report(transaction_id: str, results: Sequence[FeedResult]) -> str:
    """The report of a feed whose messages were each processed (feed status DONE)."""
    errors = sum(1 for r in results if r.result_code == "Error")
    warnings = sum(1 for r in results if r.result_code == "Warning")
    return _envelope(
        transaction_id,
        processed=len(results),
        successful=len(results) - errors,
        errors=errors,
        warnings=warnings,
        listed=[r for r in results if r.result_code != "Success"],
    )


def fatal_report(transaction_id: str, code: str, description: str) -> str:
    """The report of a feed Amazon could not read at all (feed status FATAL)."""
    problem = FeedResult(0, None, "Error", code, description)
    return _envelope(
        transaction_id, processed=0, successful=0, errors=1, warnings=0, listed=[problem]
    )


def _envelope(
    transaction_id: str,
    *,
    processed: int,
    successful: int,
    errors: int,
    warnings: int,
    listed: Sequence[FeedResult],
) -> str:
    envelope = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = _add(envelope, "Header")
    _add(header, "DocumentVersion", "1.02")
    _add(header, "MerchantIdentifier", MERCHANT_IDENTIFIER)
    _add(envelope, "MessageType", "ProcessingReport")
    message = _add(envelope, "Message")
    _add(message, "MessageID", 1)
    report = _add(message, "ProcessingReport")
    _add(report, "DocumentTransactionID", transaction_id)
    _add(report, "StatusCode", "Complete")
    summary = _add(report, "ProcessingSummary")
    _add(summary, "MessagesProcessed", processed)
    _add(summary, "MessagesSuccessful", successful)
    _add(summary, "MessagesWithError", errors)
    _add(summary, "MessagesWithWarning", warnings)
    for result in listed:
        element = _add(report, "Result")
        _add(element, "MessageID", result.message_id)
        _add(element, "ResultCode", result.result_code)
        _add(element, "ResultMessageCode", result.code)
        _add(element, "ResultDescription", result.description)
        if result.order_id:
            info = _add(element, "AdditionalInfo")
            _add(info, "AmazonOrderID", result.order_id)
    ET.indent(envelope)
    body = ET.tostring(envelope, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
