"""Orders API 2026-01-01: Amazon's order JSON read into `henpin.domain.Order`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101

from henpin.amazon.errors import AmazonPayloadError
from henpin.amazon.transport import _host_header
from henpin.domain import (
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    Package,
    PaidAmounts,
)

DEFAULT_INCLUDED_DATA = ("CANCELLATION", "FULFILLMENT", "PROCEEDS", "PROMOTION", "BUYER")
# searchOrders: "lastUpdatedBefore ... at least two minutes before the time of the request".
SEARCH_SETTLE = timedelta(minutes=2)


class _Amazon(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Money(_Amazon):
    amount: Decimal
    currencyCode: str


class _Price(_Amazon):
    unitPrice: _Money | None = None


class _Product(_Amazon):
    asin: str | None = None
    title: str | None = None
    sellerSku: str | None = None
    price: _Price | None = None


class _CancellationRequest(_Amazon):
    requester: str | None = None
    cancelReason: str | None = None


class _CancellationExecution(_Amazon):
    cancelledBy: str | None = None
    cancelReason: str | None = None


class _Cancellation(_Amazon):
    cancellationRequest: _CancellationRequest | None = None
    cancellationExecution: _CancellationExecution | None = None


class _DetailedBreakdown(_Amazon):
    subtype: str | None = None
    value: _Money | None = None


class _ProceedsBreakdown(_Amazon):
    type: str
    subtotal: _Money
    detailedBreakdowns: list[_DetailedBreakdown] | None = None


class _ItemProceeds(_Amazon):
    proceedsTotal: _Money | None = None
    breakdowns: list[_ProceedsBreakdown] | None = None


class _ItemFulfillment(_Amazon):
    quantityFulfilled: int | None = None
    quantityUnfulfilled: int | None = Field(default=None, ge=0)


class _PromotionBreakdown(_Amazon):
    promotionId: str | None = None


class _ItemPromotion(_Amazon):
    breakdowns: list[_PromotionBreakdown] | None = None


class _OrderItem(_Amazon):
    orderItemId: str
    quantityOrdered: int = Field(ge=0)
    product: _Product
    proceeds: _ItemProceeds | None = None
    promotion: _ItemPromotion | None = None
    cancellation: _Cancellation | None = None
    fulfillment: _ItemFulfillment | None = None


class _SalesChannel(_Amazon):
    marketplaceId: str


class _Buyer(_Amazon):
    buyerName: str | None = None
    buyerEmail: str | None = None


class _PackageStatus(_Amazon):
    status: str
    detailedStatus: str | None = None


class _Package(_Amazon):
    packageReferenceId: str
    packageStatus: _PackageStatus | None = None
    carrier: str | None = None
    trackingNumber: str | None = None
    shipTime: AwareDatetime | None = None


class _Fulfillment(_Amazon):
    fulfillmentStatus: FulfillmentStatus
    fulfilledBy: str | None = None


class _Order(_Amazon):
    orderId: str
    createdTime: AwareDatetime
    lastUpdatedTime: AwareDatetime
    salesChannel: _SalesChannel
    fulfillment: _Fulfillment
    buyer: _Buyer | None = None
    orderItems: list[_OrderItem]
    packages: list[_Package] | None = None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(top)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def order_from_amazon(payload: dict[str, Any]) -> Order:
    """Amazon's Order (Orders API 2026-01-01) as Henpin's `Order`.

    Needs `includedData` FULFILLMENT (the status) and, for cancel requests, CANCELLATION;
    BUYER gives the buyer's name and relay e-mail address, PACKAGES the parcels.
    A payload that does not fit raises `AmazonPayloadError` carrying the raw payload.
    """
    order_id = payload.get("orderId") if isinstance(payload, dict) else None
    try:
        raw = _Order.model_validate(payload)
    except ValidationError as exc:
        hint = ""
        if isinstance(payload, dict) and "fulfillment" not in payload:
            hint = " (ask for includedData FULFILLMENT)"
        raise AmazonPayloadError(
            f"Amazon's order {order_id or '(no orderId)'} does not have the expected shape"
            f"{hint}: {_describe(exc)}",
            payload=payload,
        ) from exc
    return Order(
        order_id=raw.orderId,
        marketplace_id=raw.salesChannel.marketplaceId,
        created_time=raw.createdTime,
        last_updated_time=raw.lastUpdatedTime,
        fulfillment_status=raw.fulfillment.fulfillmentStatus,
        fulfilled_by=raw.fulfillment.fulfilledBy,
        buyer_name=raw.buyer.buyerName if raw.buyer else None,
        buyer_email=raw.buyer.buyerEmail if raw.buyer else None,
        items=[_item(i) for i in raw.orderItems],
        packages=[_package(p) for p in raw.packages or []],
    )


def _package(raw: _Package) -> Package:
    status = raw.packageStatus
    return Package(
        package_reference_id=raw.packageReferenceId,
        status=status.status if status else None,
        detailed_status=status.detailedStatus if status else None,
        carrier=raw.carrier,
        tracking_number=raw.trackingNumber,
        ship_time=raw.shipTime,
    )


def _item(raw: _OrderItem) -> OrderItem:
    price = raw.product.price.unitPrice if raw.product.price else None
    cancellation = raw.cancellation or _Cancellation()
    request = cancellation.cancellationRequest
    execution = cancellation.cancellationExecution
    return OrderItem(
        order_item_id=raw.orderItemId,
        sku=raw.product.sellerSku,
        asin=raw.product.asin,
        title=raw.product.title,
        quantity=raw.quantityOrdered,
        unit_price=Money(amount=price.amount, currency=price.currencyCode) if price else None,
        proceeds=_item_proceeds(raw.proceeds),
        paid=_paid_amounts(raw),
        cancel_requested_by_buyer=bool(request and request.requester == "BUYER"),
        buyer_cancel_reason=request.cancelReason if request else None,
        cancelled_by=execution.cancelledBy if execution else None,
        quantity_unshipped=raw.fulfillment.quantityUnfulfilled if raw.fulfillment else None,
    )


def _item_proceeds(raw: _ItemProceeds | None) -> Money | None:
    """What the item's price brought, all units: the proceeds' ITEM subtotal (before shipping,
    gift wrap, tax and discounts); the item's proceeds total when there is no breakdown."""
    if raw is None:
        return None
    item = next((b.subtotal for b in raw.breakdowns or [] if b.type == "ITEM"), None)
    total = item or raw.proceedsTotal
    return Money(amount=total.amount, currency=total.currencyCode) if total else None


#: Proceeds breakdown types (ItemProceedsBreakdown.type) and the PaidAmounts field each fills.
_PAID_PARTS = {"ITEM": "item_price", "SHIPPING": "shipping", "GIFT_WRAP": "gift_wrap"}
#: TAX and DISCOUNT detailed breakdown subtypes (ItemProceedsDetailedBreakdown.subtype).
_TAX_PARTS = {"ITEM": "item_tax", "SHIPPING": "shipping_tax", "GIFT_WRAP": "gift_wrap_tax"}
_DISCOUNT_PARTS = {"ITEM": "item_discount", "SHIPPING": "shipping_discount"}


def _paid_amounts(raw: _OrderItem) -> PaidAmounts | None:
    """What the buyer paid for the item, part by part, from its proceeds breakdown (Orders API
    2026-01-01, `ItemProceedsBreakdown`: ITEM, SHIPPING, GIFT_WRAP, TAX and DISCOUNT, the last
    two split by `detailedBreakdowns` subtype ITEM, SHIPPING, GIFT_WRAP). The model does not
    state the sign of a DISCOUNT; it lowers what was paid either way, so its size is kept. A
    DISCOUNT without subtypes is taken as on the item's price. Amounts in another currency
    than the ITEM's are left out. None when there is no breakdown."""
    proceeds = raw.proceeds
    if proceeds is None or not proceeds.breakdowns:
        return None
    item = next((b for b in proceeds.breakdowns if b.type == "ITEM"), None)
    currency = (item or proceeds.breakdowns[0]).subtotal.currencyCode
    parts: dict[str, Decimal] = {}

    def add(field: str, money: _Money | None, *, size: bool = False) -> None:
        if money is None or money.currencyCode != currency:
            return
        amount = abs(money.amount) if size else money.amount
        parts[field] = parts.get(field, Decimal(0)) + amount

    for line in proceeds.breakdowns:
        if line.type in _PAID_PARTS:
            add(_PAID_PARTS[line.type], line.subtotal)
        elif line.type in ("TAX", "DISCOUNT"):
            table = _TAX_PARTS if line.type == "TAX" else _DISCOUNT_PARTS
            details = [d for d in line.detailedBreakdowns or [] if d.subtype in table]
            if not details and line.type == "DISCOUNT":
                add("item_discount", line.subtotal, size=True)
            for detail in details:
                add(table[str(detail.subtype)], detail.value, size=line.type == "DISCOUNT")
    listed = (raw.promotion.breakdowns or []) if raw.promotion else []
    promotions = [b.promotionId for b in listed if b.promotionId]
    return PaidAmounts(currency=currency, promotion_ids=promotions, **parts)


class _Orders(OrdersV20260101):
    @property
    def headers(self) -> dict[str, str]:
        return _host_header(self)
