"""Amazon's feed processing report: the XML ``ProcessingReport`` a finished feed's result document holds.

Like Amazon, the report counts every message but lists a ``Result`` only for messages with an
error or a warning. Result codes: ``5000`` the document is not well-formed XML (the feed ends
FATAL; as in Amazon reports quoted by sellers), ``5001`` a message does not follow the feed's
schema (missing element, value outside its enumeration): the emulator's own number, no Amazon
source was found for it; ``18028`` the data does not fit Amazon's records (unknown order or item,
an order that can no longer be cancelled, a refund above what was paid; as in an Amazon order
adjustment report quoted by a seller), ``5002`` an internal error (injected by the fault modes;
nothing applied), which Amazon documents as "An internal error occurred. Please resubmit your
data." (Amazon's "Marketplace Feeds - Error Codes"). Each code's source: Henpin's
henpin/amazon/result_codes.py.
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
#: Amazon's internal error (fault modes); its documented fix is to resubmit the data.
INTERNAL_ERROR = "5002"
INTERNAL_ERROR_DESCRIPTION = "An internal error occurred. Please resubmit your data."


def _add(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def processing_report(
    transaction_id: str,
    results: Sequence[FeedResult],
    *,
    summary: bool = True,
    unlisted: frozenset[int] = frozenset(),
    uncounted: frozenset[int] = frozenset(),
) -> str:
    """The report of a feed whose messages were each processed (feed status DONE).

    The fault modes make reports that do not add up: ``summary=False`` leaves the
    ProcessingSummary out; messages in ``unlisted`` are counted but their Result is left out;
    messages in ``uncounted`` are neither counted nor listed."""
    counted = [r for r in results if r.message_id not in uncounted]
    errors = sum(1 for r in counted if r.result_code == "Error")
    warnings = sum(1 for r in counted if r.result_code == "Warning")
    return _envelope(
        transaction_id,
        processed=len(counted),
        successful=len(counted) - errors,
        errors=errors,
        warnings=warnings,
        listed=[r for r in counted if r.result_code != "Success" and r.message_id not in unlisted],
        summary=summary,
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
    summary: bool = True,
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
    if summary:
        counts = _add(report, "ProcessingSummary")
        _add(counts, "MessagesProcessed", processed)
        _add(counts, "MessagesSuccessful", successful)
        _add(counts, "MessagesWithError", errors)
        _add(counts, "MessagesWithWarning", warnings)
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
