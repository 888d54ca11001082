"""Finances API v0: what Amazon's financial events say was refunded."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sp_api.api.finances.finances_v0 import FinancesV0

from henpin.amazon.errors import AmazonPayloadError
from henpin.amazon.transport import _host_header
from henpin.domain import (
    PriceComponent,
    RefundedLine,
)


class _Finances(FinancesV0):
    @property
    def headers(self) -> dict[str, str]:
        return _host_header(self)


#: Financial event lists that give money back to the buyer, and what Henpin calls each.
REFUND_EVENT_LISTS = {
    "RefundEventList": "refund",
    "GuaranteeClaimEventList": "guarantee-claim",
    "ChargebackEventList": "chargeback",
}
#: Amazon's ChargeType names where they differ from the feed's component names.
CHARGE_COMPONENTS: dict[str, PriceComponent] = {
    "Principal": PriceComponent.PRINCIPAL,
    "ShippingCharge": PriceComponent.SHIPPING,
    "Tax": PriceComponent.TAX,
    "ShippingTax": PriceComponent.SHIPPING_TAX,
    "RestockingFee": PriceComponent.RESTOCKING_FEE,
    "ReturnShipping": PriceComponent.RETURN_SHIPPING,
    "Goodwill": PriceComponent.GOODWILL,
    "Giftwrap": PriceComponent.GIFT_WRAP,
    "GiftwrapTax": PriceComponent.GIFT_WRAP_TAX,
}


def refunded_lines(events: Mapping[str, Any], order_id: str) -> list[RefundedLine]:
    """The refunded amounts in one page of FinancialEvents. Amazon books a refund against the
    seller (Principal -25.00): the sign is turned so that a refund to the buyer is positive."""
    lines: list[RefundedLine] = []
    for list_name, kind in REFUND_EVENT_LISTS.items():
        for event in events.get(list_name) or []:
            if not isinstance(event, dict) or event.get("AmazonOrderId", order_id) != order_id:
                continue
            posted = _posted(event.get("PostedDate"))
            for item in event.get("ShipmentItemAdjustmentList") or []:
                item_id = item.get("OrderItemId") if isinstance(item, dict) else None
                if not isinstance(item_id, str):
                    continue
                for charge in item.get("ItemChargeAdjustmentList") or []:
                    line = _refunded_line(charge, item_id, posted, kind)
                    if line is not None:
                        lines.append(line)
    return lines


def _refunded_line(
    charge: Any, item_id: str, posted: datetime | None, kind: str
) -> RefundedLine | None:
    money = charge.get("ChargeAmount") if isinstance(charge, dict) else None
    if not isinstance(money, dict) or money.get("CurrencyAmount") is None:
        return None
    try:
        amount = -Decimal(str(money["CurrencyAmount"]))
    except ArithmeticError as exc:
        raise AmazonPayloadError(
            f"Amazon's refund amount {money.get('CurrencyAmount')!r} is not a number",
            payload=charge,
            operation="listFinancialEventsByOrderId",
        ) from exc
    if amount == 0:
        return None
    charge_type = str(charge.get("ChargeType") or "Other")
    return RefundedLine(
        order_item_id=item_id,
        component=CHARGE_COMPONENTS.get(charge_type, charge_type),
        amount=amount,
        currency=str(money.get("CurrencyCode") or ""),
        posted_at=posted,
        event=kind,
    )


def _posted(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return None
