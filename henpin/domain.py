"""Henpin's own types: what a case, an order and an Amazon action are, in business words.

The SP-API adapter translates Amazon's camelCase payloads into these; nothing else in Henpin
sees python-amazon-sp-api or raw JSON.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator


class CaseType(StrEnum):
    CANCEL_REQUEST = "cancel-request"
    RETURN_REQUEST = "return-request"
    CANCEL_BY_MESSAGE = "cancel-by-message"
    REFUSED_DELIVERY = "refused-delivery"
    ADDRESS_ERROR = "address-error"


class CaseState(StrEnum):
    """Where a case stands. `waiting` means waiting for a person (or the buyer)."""

    OPEN = "open"
    WAITING = "waiting"
    ACTING = "acting"
    CLOSED = "closed"


class Outcome(StrEnum):
    """How a case ended. Stored on the case and shown to operators."""

    NOTHING_TO_DO_PENDING = "nothing-to-do-pending"  # buyer cancelled within the pending window
    CANCELLED_BUYER_CANCELED = "cancelled-buyer-canceled"
    #: The items a buyer asked to cancel of a multi-item order, cancelled by an order adjustment
    #: (QuantityCancelled, CustomerCancel) once the other items shipped.
    PART_CANCELLED = "part-cancelled"
    KEPT_ORDER = "kept-order"  # operator decided to ship after all
    ALREADY_CANCELLED = "already-cancelled"
    ORDER_CHANGED = "order-changed"  # the order shipped or changed before Henpin acted
    AMAZON_REJECTED = "amazon-rejected"  # Amazon's processing report refused the action
    ESCALATED = "escalated"  # deadline passed; handed to the owner outside Henpin
    # Return requests (Return Center)
    RETURN_DECLINED = "return-declined"
    REFUNDED_IN_FULL = "refunded-in-full"
    REFUNDED_PARTLY = "refunded-partly"
    NO_REFUND_DUE = "no-refund-due"  # the condition table gives nothing back
    RETURN_NOT_RECEIVED = "return-not-received"  # the item never came back; escalated
    KEEP_ITEM_REFUNDED = (
        "keep-item-refunded"  # cheap item: buyer keeps or refuses it, price refunded
    )
    # Cancel asked by message
    HANDED_TO_CANCEL_REQUEST = "handed-to-cancel-request"
    CANCELLED_BY_SELLER = "cancelled-by-seller"  # counts against the cancellation rate
    SHIPPED_AS_ORDERED = "shipped-as-ordered"
    # Refused or unclaimed delivery, address error
    NO_REFUND_REQUESTED = "no-refund-requested"
    RESHIPPED = "reshipped"
    CANCELLED_FOR_REORDER = "cancelled-for-reorder"
    # A refused/unclaimed parcel later reported as an address problem: the address-error case
    # (linked) takes it over before anything was refunded.
    HANDED_TO_ADDRESS_ERROR = "handed-to-address-error"
    # Never refund twice (any case type that refunds)
    REFUNDED_BY_AMAZON = "refunded-by-amazon"  # Amazon refunded on the seller's behalf first
    #: The returns report shows the request Closed with no refund on the item: declined in Seller
    #: Central, or closed by Amazon (completed, or 50 days without action: help WQ95DQ9UW4EF49F).
    RETURN_CLOSED_AT_AMAZON = "return-closed-at-amazon"
    ALREADY_REFUNDED = "already-refunded"  # another case of the order refunded it first


class FulfillmentStatus(StrEnum):
    PENDING_AVAILABILITY = "PENDING_AVAILABILITY"
    PENDING = "PENDING"
    UNSHIPPED = "UNSHIPPED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
    UNFULFILLABLE = "UNFULFILLABLE"


class CancelReason(StrEnum):
    """`CancelReason` values of the order acknowledgement feed."""

    BUYER_CANCELED = "BuyerCanceled"
    NO_INVENTORY = "NoInventory"
    SHIPPING_ADDRESS_UNDELIVERABLE = "ShippingAddressUndeliverable"
    CUSTOMER_EXCHANGE = "CustomerExchange"
    GENERAL_ADJUSTMENT = "GeneralAdjustment"


class Money(BaseModel):
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount:,} {self.currency}"


class PaidAmounts(BaseModel):
    """What the buyer paid for an order item, all units, as Amazon's proceeds break it down
    (Orders API 2026-01-01, `includedData` PROCEEDS: `orderItems[].proceeds.breakdowns`).

    Prices are before discounts (the ITEM subtotal is unit price x quantity, as the model's
    example shows); a promotion's discount is kept apart, as a positive amount, on the part it
    lowered (the DISCOUNT breakdown's `detailedBreakdowns` subtype ITEM or SHIPPING). Taxes are
    kept where Amazon shows them (the TAX breakdown's subtypes). A part Amazon does not show is
    None: unknown, never taken as zero.
    """

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    item_price: Decimal | None = None
    shipping: Decimal | None = None
    gift_wrap: Decimal | None = None
    item_discount: Decimal = Decimal(0)  # promotions on the item's price
    shipping_discount: Decimal = Decimal(0)  # promotions on its shipping
    item_tax: Decimal | None = None
    shipping_tax: Decimal | None = None
    gift_wrap_tax: Decimal | None = None
    #: The promotions Amazon names for the item (`includedData` PROMOTION: promotionId).
    promotion_ids: list[str] = Field(default_factory=list)

    @property
    def has_promotion(self) -> bool:
        return self.item_discount > 0 or self.shipping_discount > 0


class OrderItem(BaseModel):
    order_item_id: str
    sku: str | None = None
    asin: str | None = None
    title: str | None = None
    quantity: int = 1
    unit_price: Money | None = None
    #: Amazon's proceeds for the item's price, all units (`includedData` PROCEEDS): its value
    #: when Amazon gives no unit price (`product.price.unitPrice` is optional).
    proceeds: Money | None = None
    #: What the buyer paid, part by part (price, shipping, gift wrap, promotions, taxes); None
    #: when Amazon's answer had no proceeds breakdown.
    paid: PaidAmounts | None = None
    cancel_requested_by_buyer: bool = False
    buyer_cancel_reason: str | None = None
    cancelled_by: str | None = None  # BUYER, MERCHANT or AMAZON once cancelled
    #: Units not shipped yet (`fulfillment.quantityUnfulfilled`); None when Amazon does not say.
    quantity_unshipped: int | None = None

    @property
    def value(self) -> Money | None:
        """Unit price × quantity; else Amazon's proceeds for the item; None when neither is
        known (never 0: an unknown value is not a small one)."""
        if self.unit_price is None:
            return self.proceeds
        return Money(
            amount=self.unit_price.amount * self.quantity, currency=self.unit_price.currency
        )


class Package(BaseModel):
    """A parcel of a merchant-fulfilled order and where it stands (`includedData=PACKAGES`)."""

    package_reference_id: str
    status: str | None = None  # PENDING, IN_TRANSIT, SHIPPED, DELIVERED, CANCELLED, UNDELIVERABLE
    detailed_status: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    ship_time: datetime | None = None


class Order(BaseModel):
    """An order as Henpin needs it: status, items, money, and any buyer cancel request."""

    order_id: str
    marketplace_id: str
    created_time: datetime
    last_updated_time: datetime
    fulfillment_status: FulfillmentStatus
    fulfilled_by: str | None = None
    items: list[OrderItem] = Field(default_factory=list)
    buyer_name: str | None = None
    buyer_email: str | None = None  # Amazon's anonymised relay address (merchant-fulfilled)
    packages: list[Package] = Field(default_factory=list)

    @property
    def has_buyer_cancel_request(self) -> bool:
        return any(i.cancel_requested_by_buyer for i in self.items)

    @property
    def buyer_cancel_reason(self) -> str | None:
        return next((i.buyer_cancel_reason for i in self.items if i.buyer_cancel_reason), None)

    @property
    def value(self) -> Money | None:
        """Sum of item values; None when prices are unknown or currencies are mixed."""
        values = [i.value for i in self.items]
        if not values or any(v is None for v in values):
            return None
        currencies = {v.currency for v in values if v}
        if len(currencies) != 1:
            return None
        return Money(
            amount=sum((v.amount for v in values if v), Decimal(0)), currency=currencies.pop()
        )

    @property
    def value_unknown_because(self) -> str | None:
        """Why `value` is None, in words for the operator; None when the value is known."""
        if not self.items:
            return "the order has no items"
        missing = [i.order_item_id for i in self.items if i.value is None]
        if missing:
            return f"Amazon gave neither a unit price nor proceeds for item(s) {', '.join(missing)}"
        if self.value is None:
            return "the items are priced in different currencies"
        return None

    @property
    def skus(self) -> list[str]:
        return [i.sku for i in self.items if i.sku]


class ActionKind(StrEnum):
    CANCEL_ORDER = "cancel-order"
    REFUND = "refund"
    SEND_MESSAGE = "send-message"  # Amazon Messaging API (e.g. confirmDeliveryDetails)
    SEND_EMAIL = "send-email"  # a reply to the buyer's e-mail, through Amazon's relay


class ActionStatus(StrEnum):
    """An outbox action's life: stored → put in a feed → Amazon's answer recorded."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    DONE = "done"
    FAILED = "failed"


class ClosesCase(BaseModel):
    """How a case ends when Amazon confirms one of its actions, declared by the case's flow when
    it queues the action (every flow ends so once Amazon confirmed). The outbox closes the case
    in the transaction that records Amazon's result, so a finished feed closes its cases at once
    however busy Prefect is; the flow, resumed after, finds its case closed with this outcome
    and ends its run. `{feed}` in the message stands for Amazon's feed id."""

    outcome: Outcome
    message: str

    def said(self, amazon_feed_id: str | None) -> str:
        return self.message.replace("{feed}", amazon_feed_id or "unknown")


class FeedType(StrEnum):
    ORDER_ACKNOWLEDGEMENT = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
    PAYMENT_ADJUSTMENT = "POST_PAYMENT_ADJUSTMENT_DATA"


class CancelOrder(BaseModel):
    """Outbox payload: cancel these items (all when empty) of an order for a reason."""

    order_id: str
    reason: CancelReason = CancelReason.BUYER_CANCELED
    order_item_ids: list[str] = Field(default_factory=list)


class AdjustmentReason(StrEnum):
    """`AdjustmentReason` values of the payment adjustment feed."""

    NO_INVENTORY = "NoInventory"
    CUSTOMER_RETURN = "CustomerReturn"
    GENERAL_ADJUSTMENT = "GeneralAdjustment"
    COULD_NOT_SHIP = "CouldNotShip"
    DIFFERENT_ITEM = "DifferentItem"
    ABANDONED = "Abandoned"
    CUSTOMER_CANCEL = "CustomerCancel"
    PRICE_ERROR = "PriceError"
    PRODUCT_OUT_OF_STOCK = "ProductOutofStock"
    CUSTOMER_ADDRESS_INCORRECT = "CustomerAddressIncorrect"
    EXCHANGE = "Exchange"
    OTHER = "Other"
    CARRIER_CREDIT_DECISION = "CarrierCreditDecision"
    RISK_ASSESSMENT_INFORMATION_NOT_VALID = "RiskAssessmentInformationNotValid"
    CARRIER_COVERAGE_FAILURE = "CarrierCoverageFailure"
    TRANSACTION_RECORD = "TransactionRecord"
    UNDELIVERABLE = "Undeliverable"
    REFUSED_DELIVERY = "RefusedDelivery"


class PriceComponent(StrEnum):
    """`ItemPriceAdjustments/Component/Type`: which part of the price is given back."""

    PRINCIPAL = "Principal"
    SHIPPING = "Shipping"
    TAX = "Tax"
    SHIPPING_TAX = "ShippingTax"
    RESTOCKING_FEE = "RestockingFee"  # negative: kept from the buyer
    RETURN_SHIPPING = "ReturnShipping"  # negative: the prepaid return label charged
    GOODWILL = "Goodwill"
    GIFT_WRAP = "GiftWrap"
    GIFT_WRAP_TAX = "GiftWrapTax"
    OTHER = "Other"


class RefundComponent(BaseModel):
    """One amount of a refunded item, e.g. Principal 12.50 EUR."""

    type: PriceComponent
    amount: Decimal
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, amount: Decimal) -> Decimal:
        if amount == 0 or not amount.is_finite():
            raise ValueError("a refund component needs a non-zero finite amount")
        return amount


class PromotionPart(StrEnum):
    """`PromotionAdjustments/Component/Type` (the XSD's PromotionApplicationType): which part
    of the price a promotion lowered."""

    PRINCIPAL = "Principal"
    SHIPPING = "Shipping"


class PromotionComponent(BaseModel):
    """The promotion's share of a refunded item: the discount the buyer had, kept out of the
    refund (negative), e.g. Principal -5.00 EUR next to an item price of 25.00 EUR."""

    type: PromotionPart
    amount: Decimal
    currency: str = Field(pattern=r"^[A-Z]{3}$")

    @field_validator("amount")
    @classmethod
    def _negative(cls, amount: Decimal) -> Decimal:
        if not amount.is_finite() or amount >= 0:
            raise ValueError("a promotion adjustment is a negative finite amount (the discount)")
        return amount

    @property
    def ledger_key(self) -> str:
        """How the refund ledger names it, apart from the price component it lowers."""
        return f"Promotion{self.type.value}"


class RefundItem(BaseModel):
    """The refund of one order item: why, how much of each price component (`ItemPriceAdjust
    ments`), and the discounts the buyer had on them (`PromotionAdjustments`). The buyer gets
    the sum of both."""

    order_item_id: str = Field(min_length=1)
    reason: AdjustmentReason
    components: list[RefundComponent] = Field(min_length=1)
    #: Units of the item that were never shipped and are cancelled by this refund
    #: (`AdjustedItem/QuantityCancelled`): Amazon's documented way to cancel part of a
    #: multi-item order, once the other items shipped (Seller Central help 200198080).
    quantity_cancelled: int | None = Field(default=None, ge=1)
    promotions: list[PromotionComponent] = Field(default_factory=list)

    @property
    def total(self) -> Decimal:
        """What the buyer gets back for the item: components plus (negative) promotions."""
        return sum((c.amount for c in self.components), Decimal(0)) + sum(
            (p.amount for p in self.promotions), Decimal(0)
        )


class Refund(BaseModel):
    """Outbox payload: refund (all or part of) these items of an order. A smaller amount is a
    partial refund. Unshipped units are cancelled by a refund whose items carry
    `quantity_cancelled` (Amazon: "submit a refund for the order items that you cannot
    fulfill", help 200198080); Henpin sends those with ActionType Refund, the one a seller
    reports Amazon processed (ActionType Cancel was refused, 18028:
    https://c-reactjs.developreference.com/article/18085900/)."""

    order_id: str = Field(min_length=1)
    action_type: Literal["Refund", "Cancel"] = "Refund"
    items: list[RefundItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_currency(self) -> Refund:
        currencies = {c.currency for i in self.items for c in i.components} | {
            p.currency for i in self.items for p in i.promotions
        }
        if len(currencies) > 1:
            raise ValueError(f"a refund is paid in one currency, got {sorted(currencies)}")
        return self


class ActionResult(BaseModel):
    """Amazon's processing result for one message of a feed."""

    ok: bool
    code: str | None = None
    description: str | None = None


class AuthorizationStatus(StrEnum):
    """Where a return request stands on Amazon's side, read from the report's status."""

    PENDING = "pending"  # waits for the seller's answer in Manage Returns (within 24 hours)
    AUTHORIZED = "authorized"  # Amazon authorized it (by itself, or the seller in Seller Central)
    CLOSED = "closed"  # closed, declined or completed: nothing to authorize
    UNKNOWN = "unknown"  # no status, or one Henpin does not know: handled as pending


#: Words of the report's `Return request status`, lower case, by what they mean. Amazon's
#: "Returns reports attributes" page names the column, not its values. Sourced: Seller Central
#: help 201725690 ("Process return requests": Manage Returns' Pending Authorization, Pending
#: Refund (authorized, not refunded yet), Completed, Closed; "authorize request") and the
#: emulator's short forms of them (Pending, Authorized, Closed).
_SELLER_CENTRAL_WORDS: dict[AuthorizationStatus, tuple[str, ...]] = {
    AuthorizationStatus.PENDING: ("pending", "pending authorization"),
    AuthorizationStatus.AUTHORIZED: ("authorized", "pending refund"),
    AuthorizationStatus.CLOSED: ("closed", "completed"),
}
#: Not from any Amazon source: Henpin's own tolerance for variants a report might spell
#: differently (British spelling, synonyms). A status in neither table is UNKNOWN (handled as
#: pending: a person answers).
_TOLERATED_VARIANTS: dict[AuthorizationStatus, tuple[str, ...]] = {
    AuthorizationStatus.PENDING: ("requested",),
    AuthorizationStatus.AUTHORIZED: (
        "authorised",
        "approved",
        "auto-authorized",
        "auto authorized",
    ),
    AuthorizationStatus.CLOSED: ("declined", "rejected", "cancelled"),
}
_AUTHORIZATION_WORDS: dict[AuthorizationStatus, tuple[str, ...]] = {
    meaning: _SELLER_CENTRAL_WORDS[meaning] + _TOLERATED_VARIANTS[meaning]
    for meaning in _SELLER_CENTRAL_WORDS
}


def authorization_status_of(status: str | None) -> AuthorizationStatus:
    """What a `Return request status` text means for the seller."""
    said = " ".join((status or "").lower().split())
    for meaning, words in _AUTHORIZATION_WORDS.items():
        if said in words:
            return meaning
    return AuthorizationStatus.UNKNOWN


class ReturnRequest(BaseModel):
    """A buyer's return request, as Amazon's returns report lists it."""

    order_id: str
    marketplace_id: str | None = None
    rma_id: str | None = None
    requested_at: datetime | None = None
    order_item_id: str | None = None
    sku: str | None = None
    asin: str | None = None
    title: str | None = None
    quantity: int = 1
    reason_code: str | None = None
    buyer_comment: str | None = None
    in_policy: bool | None = None
    status: str | None = None
    #: When the returned item reached the seller (the report's `Return delivery date`).
    return_delivery_date: datetime | None = None
    #: Everything refunded for the item so far, the seller's and Amazon's (the report's `Refunded
    #: Amount`); None when the report shows no refund.
    refunded_amount: Money | None = None

    @property
    def authorization_status(self) -> AuthorizationStatus:
        return authorization_status_of(self.status)


class BuyerMessage(BaseModel):
    """Outbox payload: a message to the buyer through Amazon's Messaging API."""

    order_id: str
    action: Literal["confirmDeliveryDetails", "unexpectedProblem", "confirmOrderDetails"]
    text: str = Field(min_length=1, max_length=2000)


class EmailMessage(BaseModel):
    """Outbox payload: an e-mail to the buyer (their Amazon relay address)."""

    to: str = Field(min_length=3)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)


# --- What has been refunded already (Finances API) ------------------------------------------


class RefundedLine(BaseModel):
    """One refunded amount of an order item as Amazon's financial events show it: positive is
    money given back to the buyer (a restocking fee kept is negative)."""

    order_item_id: str
    component: PriceComponent | str  # Henpin's name when it has one, else Amazon's ChargeType
    amount: Decimal
    currency: str
    posted_at: datetime | None = None
    event: str = "refund"  # refund, guarantee-claim (A-to-z) or chargeback


class AlreadyRefunded(BaseModel):
    """Everything Amazon shows as refunded for an order (the seller's refunds and its own)."""

    order_id: str
    lines: list[RefundedLine] = Field(default_factory=list)

    def amount(self, order_item_id: str, component: PriceComponent | str) -> Decimal:
        """Total refunded of one component of one order item."""
        return sum(
            (
                line.amount
                for line in self.lines
                if line.order_item_id == order_item_id and line.component == component
            ),
            Decimal(0),
        )
