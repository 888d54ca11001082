"""Amazon's flat-file returns report (`GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE`), read into
Henpin's `ReturnRequest`s.

The report is tab-separated: one header line, then one line per returned item. Columns are found
by their header name (case, spaces, dashes and underscores do not matter), so a reordered or
extended header still reads. What the report does not carry, and what follows from it:

- no marketplace column: Henpin asks for one report per marketplace and stamps its id on each row;
- no order item id: the item is named by `Merchant SKU` and `ASIN`; `match_order_item` finds the
  order's item once the order has been read;
- no buyer comment: Amazon shows it only in Seller Central (a `Customer Comments` column, as
  the FBA returns report has, is read when present);
- the return request date is a day (`10-Jul-2025`), read as midnight UTC of that day;
- `Return request status` says whether Amazon already authorized the return
  (`ReturnRequest.authorization_status`); `Return delivery date`, once the item reached the
  seller, is read as the start of that day in the marketplace's local time (where Amazon counts
  the two business days to refund), or as the exact time when the cell has one;
- `Refunded Amount` is everything refunded for the item by then, the seller's refunds and
  Amazon's own (refund at first scan, a missed refund window), in the `Currency code` column's
  currency (else the marketplace's). Amazon's financial events may lag up to 48 hours; the
  report is the second witness Henpin's never-refund-twice check reads.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from henpin.domain import Money, Order, ReturnRequest
from henpin.marketplaces import MARKETPLACES

_DATE_FORMATS = ("%d-%b-%Y", "%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d")
_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}

# Our field → the header names Amazon has used for it (normalised: lower case, single spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("order id", "amazon order id"),
    "requested_at": ("return request date",),
    "status": ("return request status",),
    "rma_id": ("amazon rma id",),
    "asin": ("asin",),
    "sku": ("merchant sku", "sku", "seller sku"),
    "title": ("item name", "product name"),
    "quantity": ("return quantity", "quantity"),
    "reason_code": ("return reason", "reason"),
    "in_policy": ("in policy",),
    "buyer_comment": ("customer comments", "buyer comment", "buyer comments"),
    "return_delivery_date": ("return delivery date",),
    "refunded_amount": ("refunded amount", "refund amount"),
    "currency": ("currency code", "currency"),
}


class ReturnsReportError(ValueError):
    """The returns report (or one of its lines) cannot be read; `raw` keeps what was read."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


def _normalise(name: str) -> str:
    return " ".join(re.split(r"[\s_\-]+", name.strip().lstrip("\ufeff").lower())).strip()


def _positions(header: list[str], raw: str) -> dict[str, int]:
    names = [_normalise(h) for h in header]
    found: dict[str, int] = {}
    for field, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in names:
                found[field] = names.index(alias)
                break
    if "order_id" not in found:
        raise ReturnsReportError(
            "the returns report has no 'Order ID' column; its header reads: "
            + ", ".join(header[:12]),
            raw[:2000],
        )
    return found


def _date(text: str, zone: str = "UTC") -> datetime | None:
    """A report date: a day alone is the start of that day in `zone`."""
    text = text.strip()
    if not text:
        return None
    for pattern in _DATE_FORMATS:
        try:
            day = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return day.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"unreadable date {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flag(text: str) -> bool | None:
    value = text.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    if not value:
        return None
    raise ValueError(f"unreadable yes/no value {text!r}")


def _quantity(text: str) -> int:
    value = text.strip()
    if not value:
        return 1
    quantity = int(value)
    if quantity < 1:
        raise ValueError(f"return quantity must be at least 1, got {quantity}")
    return quantity


def _money(text: str, currency: str) -> Money | None:
    """A refunded amount; None for an empty cell or zero (nothing refunded)."""
    value = text.strip()
    if not value:
        return None
    try:
        amount = Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"unreadable amount {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"unreadable amount {text!r}")
    return Money(amount=amount, currency=currency) if amount > 0 else None


def parse_returns_report(
    text: str,
    marketplace_id: str,
    *,
    on_bad_line: Callable[[ReturnsReportError], None] | None = None,
) -> list[ReturnRequest]:
    """Every line of a flat-file returns report as a `ReturnRequest` of `marketplace_id`.

    A report without a usable header raises `ReturnsReportError`. A line that cannot be read
    goes to `on_bad_line` (with the line kept) and the others are still read; without
    `on_bad_line` it raises.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return []
    where = _positions(rows[0], text)
    known = MARKETPLACES.get(marketplace_id)
    local_zone = known.time_zone if known else "UTC"
    local_currency = known.currency if known else ""
    found: list[ReturnRequest] = []
    for number, row in enumerate(rows[1:], start=2):

        def cell(field: str, row: list[str] = row) -> str:
            position = where.get(field)
            return row[position].strip() if position is not None and position < len(row) else ""

        try:
            order_id = cell("order_id")
            if not order_id:
                raise ValueError("no order id")
            found.append(
                ReturnRequest(
                    order_id=order_id,
                    marketplace_id=marketplace_id,
                    rma_id=cell("rma_id") or None,
                    requested_at=_date(cell("requested_at"), local_zone),
                    sku=cell("sku") or None,
                    asin=cell("asin") or None,
                    title=cell("title") or None,
                    quantity=_quantity(cell("quantity")),
                    reason_code=cell("reason_code") or None,
                    buyer_comment=cell("buyer_comment") or None,
                    in_policy=_flag(cell("in_policy")),
                    status=cell("status") or None,
                    return_delivery_date=_date(cell("return_delivery_date"), local_zone),
                    refunded_amount=_money(
                        cell("refunded_amount"), cell("currency") or local_currency
                    ),
                )
            )
        except ValueError as exc:
            problem = ReturnsReportError(
                f"line {number} of the returns report cannot be read: {exc}", "\t".join(row)
            )
            if on_bad_line is None:
                raise problem from exc
            on_bad_line(problem)
    return found


def match_order_item(request: ReturnRequest, order: Order) -> ReturnRequest:
    """The return request with its order item id, found on the order by SKU (then ASIN).

    Unchanged when the order has no single item with that SKU or ASIN.
    """
    if request.order_item_id:
        return request
    for key in ("sku", "asin"):
        wanted = getattr(request, key)
        if not wanted:
            continue
        items = [i for i in order.items if getattr(i, key) == wanted]
        if len(items) == 1:
            return request.model_copy(update={"order_item_id": items[0].order_item_id})
    return request
