"""The returns reports Amazon generates for merchant-fulfilled orders, rendered from return records.

``GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE``: tab-separated, one header line, then one line per
returned item, with the 32 columns Amazon documents (developer docs, "Returns reports attributes")
in their order. Dates are Amazon's ``10-Jul-2025`` spelling (UTC here), flags ``Y``/``N``, money
plain decimals in the order's currency, empty cells empty. There is **no column for the buyer's
comment** in this report, nor in the XML one: Amazon shows it in Seller Central (Manage Returns)
only, so the emulator keeps ``customerComments`` on the control API and leaves it out here. The
report has no order item id either: the item is identified by ``ASIN`` and ``Merchant SKU``.

``GET_XML_RETURNS_DATA_BY_RETURN_DATE``: an ``AmazonEnvelope`` whose one ``Message`` holds a
``return_details`` per RMA id, each with an ``item_details`` per item, ISO times.

Each request is shown as it stood when the report was generated (``return_lifecycle.view``): its
``Return request status`` (``Pending``, ``Authorized``, ``Closed``, or a status set by hand), ``In
policy`` and ``Return delivery date``. The request and delivery dates are days in the
marketplace's local time (``LOCAL_TIME_ZONES``, every marketplace: emulator/marketplaces.py): the
day the buyer asked and the day the seller received the item, from which Amazon's 24 hours to
answer and two business days to refund are counted in that marketplace.

``Refunded Amount`` / ``refund_amount`` is the sum of every refund of the order item posted by the
time the report is generated, from the store the Finances API serves: the seller's (payment
adjustment feeds) and Amazon's own (refund at first scan, missed refund window, A-to-z claims,
``emulator.amazon_refunds``), net of deductions such as a return label kept from the buyer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from emulator.clock import iso, parse_time
from emulator.marketplaces import TIME_ZONE_OF
from emulator.return_lifecycle import view

FLAT_FILE = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
XML = "GET_XML_RETURNS_DATA_BY_RETURN_DATE"
REPORT_TYPES = (FLAT_FILE, XML)
CONTENT_TYPES = {FLAT_FILE: "text/tab-separated-values", XML: "text/xml"}
FLAT_FILE_COLUMNS = (
    "Order ID",
    "Order date",
    "Return request date",
    "Return request status",
    "Amazon RMA ID",
    "Merchant RMA ID",
    "Label type",
    "Label cost",
    "Currency code",
    "Return carrier",
    "Tracking ID",
    "Label to be paid by",
    "A-to-Z Claim",
    "Is prime",
    "ASIN",
    "Merchant SKU",
    "Item Name",
    "Return quantity",
    "Return Reason",
    "In policy",
    "Return type",
    "Resolution",
    "Invoice number",
    "Return delivery date",
    "Order Amount",
    "Order quantity",
    "SafeT Action reason",
    "SafeT claim id",
    "SafeT claim state",
    "SafeT claim creation time",
    "SafeT claim reimbursement amount",
    "Refunded Amount",
)
#: Local time of each storefront (all 23), whose calendar dates its returns (emulator/marketplaces.py).
LOCAL_TIME_ZONES = TIME_ZONE_OF
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def report_date(moment: datetime) -> str:
    """Amazon's date spelling in the flat file, e.g. ``10-Jul-2025`` (English months always)."""
    return f"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year}"


def returns_in_window(
    returns: Iterable[dict[str, Any]], start: datetime, end: datetime, marketplace_ids: list[str]
) -> list[dict[str, Any]]:
    """Return records requested in [start, end] in the report's marketplaces, oldest first."""
    found = [
        r
        for r in returns
        if r["marketplaceId"] in marketplace_ids
        and start <= parse_time(r["returnRequestDate"]) <= end
    ]
    return sorted(found, key=lambda r: (r["returnRequestDate"], r["amazonRmaId"], r["orderItemId"]))


def render(
    report_type: str,
    returns: list[dict[str, Any]],
    orders: dict[str, dict[str, Any]],
    refunds: list[dict[str, Any]],
    at: datetime | None = None,
) -> str:
    """The report document's text, with each request as it stood at ``at`` (as stored if None)."""
    shown = [view(r, at) for r in returns] if at is not None else returns
    if at is not None:  # refunds posted after the report was generated are not in it
        refunds = [r for r in refunds if parse_time(r["time"]) <= at]
    lines = [_Line(r, orders[r["orderId"]], refunds) for r in shown if r["orderId"] in orders]
    return flat_file(lines) if report_type == FLAT_FILE else xml_report(lines)


class _Line:
    """One returned item with what the report shows of its order and refunds."""

    def __init__(
        self, record: dict[str, Any], order: dict[str, Any], refunds: list[dict[str, Any]]
    ) -> None:
        self.record = record
        self.order = order
        self.item = next(
            i for i in order["orderItems"] if i["orderItemId"] == record["orderItemId"]
        )
        product = self.item.get("product", {})
        price = product.get("price", {}).get("unitPrice", {})
        self.asin = product.get("asin", "")
        self.sku = product.get("sellerSku", "")
        self.title = product.get("title", "")
        self.currency = price.get("currencyCode", "")
        self.quantity_ordered = int(self.item.get("quantityOrdered", 1))
        self.order_amount = (
            format(Decimal(price["amount"]) * self.quantity_ordered, "f") if price else ""
        )
        refunded = [
            Decimal(c["amount"])
            for refund in refunds
            if refund["orderId"] == record["orderId"]
            and refund["orderItemId"] == record["orderItemId"]
            for c in refund["components"]
        ]
        self.refunded = format(sum(refunded, Decimal(0)), "f") if refunded else ""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    # A tab or line break inside a value would shift the columns.
    return " ".join(str(value).split()) if any(c in str(value) for c in "\t\r\n") else str(value)


def _date(text: str | None) -> str:
    return report_date(parse_time(text)) if text else ""


def _local_date(text: str | None, marketplace_id: str) -> str:
    """The day in the marketplace's local time."""
    if not text:
        return ""
    zone = ZoneInfo(LOCAL_TIME_ZONES.get(marketplace_id, "UTC"))
    return report_date(parse_time(text).astimezone(zone))


def flat_file(lines: list[_Line]) -> str:
    """The tab-separated report: header line, then one line per returned item."""
    rows = ["\t".join(FLAT_FILE_COLUMNS)]
    for line in lines:
        r = line.record
        cells = [
            r["orderId"],
            _date(line.order["createdTime"]),
            _local_date(r["returnRequestDate"], r["marketplaceId"]),
            r["status"],
            r["amazonRmaId"],
            r["merchantRmaId"],
            r["labelType"],
            r["labelCost"],
            line.currency,
            r["returnCarrier"],
            r["trackingId"],
            r["labelToBePaidBy"],
            r["aToZClaim"],
            r["isPrime"],
            line.asin,
            line.sku,
            line.title,
            r["quantity"],
            r["returnReason"],
            r["inPolicy"],
            r["returnType"],
            r["resolution"],
            r["invoiceNumber"],
            _local_date(r["returnDeliveryDate"], r["marketplaceId"]),
            line.order_amount,
            line.quantity_ordered,
            None,
            None,
            None,
            None,
            None,
            line.refunded,
        ]
        rows.append("\t".join(_cell(c) for c in cells))
    return "\n".join(rows) + "\n"


def _add(parent: ET.Element, tag: str, value: Any) -> None:
    if value is None or value == "":
        return
    ET.SubElement(parent, tag).text = _cell(value)


def xml_report(lines: list[_Line]) -> str:
    """The XML report: one ``return_details`` per RMA id, its items as ``item_details``."""
    envelope = ET.Element(
        "AmazonEnvelope",
        {
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd",
        },
    )
    header = ET.SubElement(envelope, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.00"
    ET.SubElement(envelope, "MessageType").text = "Returns-Report"
    message = ET.SubElement(envelope, "Message")
    groups: dict[tuple[str, str], list[_Line]] = {}
    for line in lines:
        groups.setdefault((line.record["orderId"], line.record["amazonRmaId"]), []).append(line)
    for group in groups.values():
        first, r = group[0], group[0].record
        details = ET.SubElement(message, "return_details")
        for line in group:
            item = ET.SubElement(details, "item_details")
            _add(item, "item_name", line.title)
            _add(item, "asin", line.asin)
            _add(item, "return_reason_code", line.record["returnReason"])
            _add(item, "merchant_sku", line.sku)
            _add(item, "in_policy", line.record["inPolicy"])
            _add(item, "return_quantity", line.record["quantity"])
            _add(item, "resolution", line.record["resolution"])
            _add(item, "refund_amount", line.refunded)
        _add(details, "order_id", r["orderId"])
        _add(details, "order_date", iso(parse_time(first.order["createdTime"])))
        _add(details, "amazon_rma_id", r["amazonRmaId"])
        _add(details, "return_request_date", r["returnRequestDate"])
        _add(details, "return_request_status", r["status"])
        ET.SubElement(details, "a_to_z_claim").text = "true" if r["aToZClaim"] else "false"
        _add(details, "is_prime", r["isPrime"])
        label = ET.SubElement(details, "label_details")
        _add(label, "tracking_id", r["trackingId"])
        _add(label, "return_carrier", r["returnCarrier"])
        _add(label, "currency_code", first.currency)
        _add(label, "label_cost", r["labelCost"])
        _add(label, "label_type", r["labelType"])
        _add(details, "label_to_be_paid_by", r["labelToBePaidBy"])
        _add(details, "return_type", r["returnType"])
        _add(details, "order_amount", first.order_amount)
        _add(details, "order_quantity", first.quantity_ordered)
    ET.indent(envelope)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(envelope, "unicode") + "\n"
