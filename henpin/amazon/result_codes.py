"""Amazon's result codes in a feed processing report (`ResultMessageCode`), and what each means
for an action of Henpin's two feeds (POST_ORDER_ACKNOWLEDGEMENT_DATA,
POST_PAYMENT_ADJUSTMENT_DATA): tell the operator, or send it again.

Only codes Amazon documents, or that its own reports are quoted with, are listed, each with where
it was found. Amazon documents one "temporary" code: 5002, an internal error after which Amazon
asks for the data to be sent again. Every other code, and any code not in this table, means
Amazon refused the message: the action fails with Amazon's words and its case is flagged for
the operator. A message the report does not account for at all is not a code: the outbox puts
its feed in `attention` (see henpin/outbox/).
"""

from __future__ import annotations

from enum import StrEnum


class CodeMeaning(StrEnum):
    REJECTED = "rejected"  # Amazon refused it: tell the operator
    TEMPORARY = "temporary"  # nothing was applied; Amazon asks for it again: send again


FEEDS_ERROR_CODES = (
    "Amazon, Selling on Amazon - Marketplace Feeds - Error Codes "
    "(images-na.ssl-images-amazon.com, copy at https://pdfslide.us/documents/"
    "marketplace-feeds-error-codes-y-co-s-selling-on-amazon-marketplace-feeds-.html)"
)

#: code: (meaning, Amazon's words, where it is documented)
RESULT_CODES: dict[str, tuple[CodeMeaning, str, str]] = {
    "5000": (
        CodeMeaning.REJECTED,
        "XML Parsing Error at Line …, Column …: the document is not well-formed or breaks the "
        "schema (the feed ends FATAL)",
        "processing reports quoted at http://forum.nitrosell.com/t/"
        "amazon-504-amazon-error-messages-and-what-they-mean/80",
    ),
    "5001": (
        CodeMeaning.REJECTED,
        "a message does not follow the feed's schema. Not found in Amazon's documents: the "
        "emulator's per-message schema error (Amazon's schema errors are quoted as 5000)",
        "emulator/processing_report.py (no Amazon source found)",
    ),
    "5002": (
        CodeMeaning.TEMPORARY,
        "An internal error occurred. Please resubmit your data.",
        FEEDS_ERROR_CODES,
    ),
    "5003": (
        CodeMeaning.REJECTED,
        "Too many errors were encountered. Processing was aborted.",
        FEEDS_ERROR_CODES,
    ),
    "5004": (
        CodeMeaning.REJECTED,
        "We are unable to process this item because of missing information.",
        FEEDS_ERROR_CODES,
    ),
    "5005": (
        CodeMeaning.REJECTED,
        "The MerchantIdentifier provided in the XML payload is not valid for your credentials. "
        "(the feed ends FATAL, nothing applied)",
        "the words: Seller Central help 23071; the number: a third-party list, "
        "godatafeed.com/disapproval/amazon-5005-merchant-mismatch (not in Amazon's code list)",
    ),
    "18028": (
        CodeMeaning.REJECTED,
        "The data you submitted with this item is incomplete or invalid.",
        "an order adjustment report quoted at https://c-reactjs.developreference.com/article/"
        "18085900/How+to+cancel+ONE+item+using+amazon+mws+order+adjustment+feed",
    ),
}

#: Codes after which Henpin sends the message again (in the next feed).
TEMPORARY_CODES = frozenset(
    code for code, (meaning, _, _) in RESULT_CODES.items() if meaning is CodeMeaning.TEMPORARY
)


def meaning(code: str | None) -> CodeMeaning:
    """What a ResultMessageCode means for the action; unknown codes are refusals."""
    entry = RESULT_CODES.get(code or "")
    return entry[0] if entry else CodeMeaning.REJECTED
