"""Every reachable outcome of every case type, from every answer and every deadline, end to end
on real parts (issue 12, part A, item 1): the session's Prefect server, the SP-API emulator over
HTTP through python-amazon-sp-api, a SQLite case store, the local mail catcher, and the case
flows run as the runner runs them (`drive_case_runs`).

One stack serves the whole table. Every row's order is put at Amazon up front and every case is
opened in one go; then the rows move in step, phase by phase: in each phase every row with a
step left takes it (an operator's answer in the inbox, an answer in the Prefect UI's Resume
form, a decision made while the Prefect server is down, an event at Amazon that ingestion
answers the question with, or the deadline), and Amazon's side is settled once for all of them.
A deadline is made due as the other tests do it, by the sweep's clock (`record_deadline_answers`
with a later `now`); a guard makes sure that at that moment every other waiting case has an
answer already, so the sweep answers exactly the rows whose step is the deadline. Each row then
asserts, from the shared results: the case's `Outcome`; what Amazon received (feeds with their
reasons and amounts, what Amazon applied, messages) or that nothing was sent; and the e-mails
the mail catcher caught for the order.

Also here: Amazon refusing a cancellation (the order shipped meanwhile) and a refund (every feed
FATAL, code 5002, until Henpin stops resending), a schema-valid but out-of-bounds answer in the
Prefect UI (asked again, one refund), an acting run resumed by hand (no second action), a
decision made while the Prefect server is down (resumed once by `resume_decided_cases` when it
is back) and a case whose run was never started (`start_unstarted_cases`).

Not driven here (they have tests of their own or need faults no row can share): a refund the
outbox's never-refund-twice check holds back three times (`check_again` / `escalate`), an
address message Amazon refuses, and the part-cancel paths where the order was cancelled or
nothing asked is left unshipped after "others shipped".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from henpin.domain import Outcome
from tests.support import (
    E2E_TIME_SCALE,
    drive_case_runs,
    forget_flow_runs,
    order_json,
    reset_process_caches,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent
US = "ATVPDKIKX0DER"
BUYER_EMAIL = "buyer-test@marketplace.amazon.com"
REFUSED = {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"}
UNCLAIMED = {"status": "UNDELIVERABLE", "detailedStatus": "RETURNING_TO_SELLER"}
ADDRESS = {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"}
#: The sweep's clock for a deadline step: later than any question's deadline.
LATER = timedelta(days=400)

Event = Callable[[Any, str], None]  # (the emulator, the order id): a change at Amazon


# --- the table's vocabulary ----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An answer to the waiting question.
    `door`: "inbox" (henpin.app.decide.decide) or "server-down" (decided in the inbox while the
    Prefect server is down). `before`: a change at Amazon first."""

    choice: str
    fields: dict[str, str] = field(default_factory=dict)
    note: str = ""
    door: str = "inbox"
    before: Event | None = None


@dataclass(frozen=True)
class Deadline:
    """Nobody answers: the deadline sweep takes the question's named timeout path."""

    before: Event | None = None


@dataclass(frozen=True)
class AmazonTells:
    """A change at Amazon that ingestion reads and answers the waiting question with."""

    before: Event


@dataclass(frozen=True)
class PrefectUI:
    """Answers given one after the other in the Prefect UI's Resume form (Prefect's resume API
    with this run input), each run to where the flow waits again before the next."""

    answers: tuple[dict[str, Any], ...]
    before: Event | None = None


Step = Answer | Deadline | AmazonTells | PrefectUI


def A(choice: str, note: str = "", *, before: Event | None = None, **fields: str) -> Answer:
    return Answer(choice, fields, note, before=before)


def UI(*answers: dict[str, Any]) -> PrefectUI:
    return PrefectUI(answers)


def DOWN(choice: str, note: str = "") -> Answer:
    return Answer(choice, {}, note, door="server-down")


def D(before: Event | None = None) -> Deadline:
    return Deadline(before)


@dataclass(frozen=True)
class Amazon:
    """Amazon's side for the row's order. `cancels`: the CancelReason of each order
    acknowledgement message sent; `refunds`: (AdjustmentReason, ItemPriceAdjustments) of each
    AdjustedItem sent; `applied`: the components of each seller refund Amazon applied;
    `messages`: Messaging API actions; `status`: the order's fulfilment status at the end.
    Left empty: nothing of that kind was sent."""

    cancels: tuple[str, ...] = ()
    refunds: tuple[tuple[str, dict[str, str]], ...] = ()
    applied: tuple[dict[str, str], ...] = ()
    messages: tuple[str, ...] = ()
    status: str | None = None


@dataclass(frozen=True)
class Row:
    id: str
    case_type: str
    outcome: Outcome
    steps: tuple[Step, ...] = ()
    amazon: Amazon = Amazon()
    #: Subjects (their start) of the e-mails caught for the order, in order.
    mails: tuple[str, ...] = ()
    #: The order at Amazon at the start, from its id; None for a row linked to another row.
    order: Callable[[str], dict[str, Any]] | None = None
    #: A return request the buyer made (POST /_emulator/returns fields but the order id).
    ret: dict[str, Any] | None = None
    #: "ingest" (Henpin sees it at Amazon), "message" (an operator opens it from the buyer's
    #: e-mail), "unstarted" (opened by a process that stopped before starting its run), or
    #: "linked" (opened by the `parent` row's case, in phase `first_phase - 1`).
    opened: str = "ingest"
    #: The row whose order this row's case shares (its order is the parent's).
    parent: str | None = None
    first_phase: int = 1
    #: Right after the cases' first runs, before Amazon's side is settled.
    after_open: Callable[[Any, str, Any], None] | None = None
    #: Every feed ends FATAL (code 5002) while this row's action is sent.
    fatal: bool = False


# --- orders and changes at Amazon ----------------------------------------------------------------


def unshipped(price: str = "25.00", *, email: bool = False, cancel: bool = True) -> Any:
    def make(order_id: str) -> dict[str, Any]:
        order = order_json(
            order_id, price=price, cancel_reason="Found a better price" if cancel else None
        )
        if email:
            order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": BUYER_EMAIL}
        return order

    return make


def pending(order_id: str) -> dict[str, Any]:
    return order_json(order_id, status="PENDING", created=datetime.now(UTC) - timedelta(minutes=10))


def with_status(status: str) -> Any:
    def make(order_id: str) -> dict[str, Any]:
        order = order_json(order_id, status=status, cancel_reason=None)
        order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": BUYER_EMAIL}
        return order

    return make


def two_items(order_id: str) -> dict[str, Any]:
    from tests.test_emulator_feed_checks import two_item_order

    return two_item_order(order_id, "UNSHIPPED", False)


def shipped(parcel: dict[str, str] | None = None) -> Any:
    """A shipped 40.00 USD order (no shipping paid), with a parcel coming back if given."""

    def make(order_id: str) -> dict[str, Any]:
        order = order_json(
            order_id,
            status="SHIPPED",
            price="40.00",
            cancel_reason=None,
            created=datetime.now(UTC) - timedelta(days=3),
        )
        order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": BUYER_EMAIL}
        if parcel:
            order["packages"] = [{"packageReferenceId": "1", "packageStatus": parcel}]
        return order

    return make


def control(emulator: Any, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{emulator.url}/_emulator/{path}", timeout=30, **kw)
    r.raise_for_status()
    return r.json()


def ship(emulator: Any, order_id: str) -> None:
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}},
    )


def cancel_at_amazon(emulator: Any, order_id: str) -> None:
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={"fulfillment": {"fulfillmentStatus": "CANCELLED"}},
    )


def ship_the_mug(emulator: Any, order_id: str) -> None:
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={
            "fulfillment": {"fulfillmentStatus": "PARTIALLY_SHIPPED"},
            "orderItems": [
                {
                    "orderItemId": f"{order_id[-7:]}01",
                    "fulfillment": {"quantityFulfilled": 1, "quantityUnfulfilled": 0},
                }
            ],
        },
    )


def buyer_requests_cancel(emulator: Any, order_id: str) -> None:
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={
            "orderItems": [
                {
                    "orderItemId": f"{order_id[-7:]}01",
                    "cancellation": {
                        "cancellationRequest": {"requester": "BUYER", "cancelReason": "Not needed"}
                    },
                }
            ]
        },
    )


def address_reported(emulator: Any, order_id: str) -> None:
    control(
        emulator,
        "PATCH",
        f"orders/{order_id}",
        json={"packages": [{"packageReferenceId": "1", "packageStatus": ADDRESS}]},
    )


def amazon_refunds(reason: str) -> Event:
    def refund(emulator: Any, order_id: str) -> None:
        control(
            emulator,
            "POST",
            f"orders/{order_id}/refunds",
            json={
                "reason": reason,
                "items": [
                    {"orderItemId": f"{order_id[-7:]}01", "components": {"Principal": "40.00"}}
                ],
            },
        )

    return refund


def rma(emulator: Any, order_id: str) -> str:
    [record] = control(emulator, "GET", "returns", params={"orderId": order_id})
    return str(record["amazonRmaId"])


def seller_authorizes(emulator: Any, order_id: str) -> None:
    control(emulator, "POST", f"returns/{rma(emulator, order_id)}/authorize")


def return_delivered(emulator: Any, order_id: str) -> None:
    control(
        emulator, "POST", f"returns/{rma(emulator, order_id)}/advance", json={"to": "delivered"}
    )


def amazon_closes_return(emulator: Any, order_id: str) -> None:
    control(emulator, "POST", f"returns/{rma(emulator, order_id)}/close", json={"reason": "other"})


def amazon_refunds_and_closes(emulator: Any, order_id: str) -> None:
    amazon_refunds("returnless refund")(emulator, order_id)
    control(
        emulator, "POST", f"returns/{rma(emulator, order_id)}/close", json={"reason": "refunded"}
    )


def ships_before_the_feed(emulator: Any, order_id: str, stack: Any) -> None:
    ship(emulator, order_id)


def resumed_by_hand(emulator: Any, order_id: str, stack: Any) -> None:
    """Someone presses Resume in the Prefect UI on the run that waits for Amazon's answer."""
    from prefect.flow_runs import resume_flow_run

    case = stack.case_of(order_id, "cancel-request")
    assert case.state == "acting"
    resume_flow_run(UUID(case.flow_run_id))
    drive_case_runs()
    assert stack.case_of(order_id, "cancel-request").state == "acting"


# --- the table -----------------------------------------------------------------------------------

#: Left to the seller (out of policy), and not refunded by Amazon at first scan.
UNWANTED = {"returnReason": "CR-UNWANTED_ITEM", "inPolicy": False, "refundAtFirstScan": False}
AUTHORIZED = A("authorized")
RECEIVED = A("received")
UNOPENED = A("inspected", condition="unopened")
WRONG_ITEM = A("inspected", condition="wrong_item")
CONFIRMED = A("address_confirmed", confirmed_address="1 Test Street, Testville")
ANSWERED_IN_SC = A("answered_in_seller_central")
CANCELLED = "CANCELLED"
CANCEL = Amazon(cancels=("BuyerCanceled",), status=CANCELLED)
FULL = {"Principal": "40.00"}


def refund(reason: str, components: dict[str, str]) -> Amazon:
    """One refund sent and applied as sent."""
    return Amazon(refunds=((reason, components),), applied=(components,))


# fmt: off
ROWS = [
    # --- a buyer's cancel request ---
    Row("cr-pending", "cancel-request", Outcome.NOTHING_TO_DO_PENDING, order=pending),
    Row("cr-policy-cancels", "cancel-request", Outcome.CANCELLED_BUYER_CANCELED, amazon=CANCEL,
        order=unshipped()),
    Row("cr-operator-cancels", "cancel-request", Outcome.CANCELLED_BUYER_CANCELED, (A("cancel"),),
        CANCEL, order=unshipped("250.00")),
    Row("cr-operator-keeps", "cancel-request", Outcome.KEPT_ORDER, (A("keep_order"),),
        order=unshipped("250.00")),
    Row("cr-operator-escalates", "cancel-request", Outcome.ESCALATED, (A("escalate"),),
        order=unshipped("250.00")),
    Row("cr-deadline-cancels", "cancel-request", Outcome.CANCELLED_BUYER_CANCELED, (D(),), CANCEL,
        order=unshipped("250.00")),
    Row("cr-shipped-before-acting", "cancel-request", Outcome.ORDER_CHANGED,
        (A("cancel", before=ship),), Amazon(status="SHIPPED"), order=unshipped("250.00")),
    Row("cr-cancelled-meanwhile", "cancel-request", Outcome.ALREADY_CANCELLED,
        (A("cancel", before=cancel_at_amazon),), Amazon(status=CANCELLED),
        order=unshipped("250.00")),
    Row("cr-amazon-rejects-cancel", "cancel-request", Outcome.AMAZON_REJECTED,
        amazon=Amazon(cancels=("BuyerCanceled",), status="SHIPPED"), order=unshipped(),
        after_open=ships_before_the_feed),
    Row("cr-acting-run-resumed-by-hand", "cancel-request", Outcome.CANCELLED_BUYER_CANCELED,
        amazon=CANCEL, order=unshipped(), after_open=resumed_by_hand),
    Row("part-others-shipped", "cancel-request", Outcome.PART_CANCELLED,
        (A("others_shipped"), A("others_shipped", before=ship_the_mug)),
        Amazon(refunds=(("CustomerCancel", {"Principal": "8.00"}),),
               applied=({"Principal": "8.00"},), status="SHIPPED"),
        order=two_items),
    Row("part-keep-order", "cancel-request", Outcome.KEPT_ORDER, (A("keep_order"),),
        order=two_items),
    Row("part-deadline", "cancel-request", Outcome.ESCALATED, (D(),), order=two_items),
    Row("part-all-shipped-meanwhile", "cancel-request", Outcome.ORDER_CHANGED,
        (A("others_shipped", before=ship),), Amazon(status="SHIPPED"), order=two_items),
    # --- a return request ---
    Row("rr-declined", "return-request", Outcome.RETURN_DECLINED,
        (A("declined", "outside the window"),), order=shipped(), ret=UNWANTED),
    Row("rr-keep-item", "return-request", Outcome.KEEP_ITEM_REFUNDED, (A("keep_item_refund"),),
        refund("CustomerReturn", FULL), order=shipped(), ret=UNWANTED),
    Row("rr-authorize-escalates", "return-request", Outcome.ESCALATED, (A("escalate"),),
        order=shipped(), ret=UNWANTED),
    Row("rr-authorize-deadline", "return-request", Outcome.ESCALATED, (D(),),
        order=shipped(), ret=UNWANTED),
    Row("rr-closed-at-amazon", "return-request", Outcome.RETURN_CLOSED_AT_AMAZON,
        (AmazonTells(amazon_closes_return),), order=shipped(), ret=UNWANTED),
    Row("rr-closed-after-amazon-refund", "return-request", Outcome.REFUNDED_BY_AMAZON,
        (AmazonTells(amazon_refunds_and_closes),), order=shipped(), ret=UNWANTED),
    Row("rr-refund-proposed", "return-request", Outcome.REFUNDED_IN_FULL,
        (AUTHORIZED, RECEIVED, UNOPENED, A("refund_proposed")), refund("CustomerReturn", FULL),
        order=shipped(), ret=UNWANTED),
    Row("rr-refund-other-amount", "return-request", Outcome.REFUNDED_PARTLY,
        (AUTHORIZED, RECEIVED, UNOPENED, A("refund_other_amount", "scratched", amount="30.00")),
        refund("CustomerReturn", {"Principal": "30.00"}), order=shipped(), ret=UNWANTED),
    Row("rr-amazon-report-then-refund-deadline", "return-request", Outcome.REFUNDED_PARTLY,
        (AmazonTells(seller_authorizes), AmazonTells(return_delivered),
         A("inspected", condition="used"), D()),
        refund("CustomerReturn", {"Principal": "40.00", "RestockingFee": "-8.00"}),
        order=shipped(), ret=UNWANTED),
    Row("rr-no-refund-due", "return-request", Outcome.NO_REFUND_DUE,
        (AUTHORIZED, RECEIVED, WRONG_ITEM, A("refund_proposed")), order=shipped(), ret=UNWANTED),
    Row("rr-inspection-escalates", "return-request", Outcome.ESCALATED,
        (AUTHORIZED, RECEIVED, A("escalate")), order=shipped(), ret=UNWANTED),
    Row("rr-refund-escalates", "return-request", Outcome.ESCALATED,
        (AUTHORIZED, RECEIVED, UNOPENED, A("escalate")), order=shipped(), ret=UNWANTED),
    Row("rr-not-coming", "return-request", Outcome.RETURN_NOT_RECEIVED,
        (AUTHORIZED, A("not_coming")), order=shipped(), ret=UNWANTED),
    Row("rr-receipt-escalates", "return-request", Outcome.RETURN_NOT_RECEIVED,
        (AUTHORIZED, A("escalate")), order=shipped(), ret=UNWANTED),
    Row("rr-receipt-deadlines", "return-request", Outcome.RETURN_NOT_RECEIVED,
        (AUTHORIZED, D(), D()), order=shipped(), ret=UNWANTED),
    Row("rr-reminded-then-received", "return-request", Outcome.REFUNDED_IN_FULL,
        (AUTHORIZED, A("remind"), RECEIVED, UNOPENED, A("refund_proposed")),
        refund("CustomerReturn", FULL), order=shipped(), ret=UNWANTED),
    Row("rr-inspection-overdue-then-refund", "return-request", Outcome.REFUNDED_IN_FULL,
        (AUTHORIZED, RECEIVED, D(), UNOPENED, A("refund_proposed")),
        refund("CustomerReturn", FULL), order=shipped(), ret=UNWANTED),
    Row("rr-amazon-refunded-as-expected", "return-request", Outcome.REFUNDED_BY_AMAZON,
        (AUTHORIZED, A("received", before=amazon_refunds("refund at first scan")),
         A("as_expected")), order=shipped(), ret=UNWANTED),
    Row("rr-amazon-refunded-safe-t", "return-request", Outcome.REFUNDED_BY_AMAZON,
        (AUTHORIZED, A("received", before=amazon_refunds("refund at first scan")),
         A("safe_t_claim", "not the item sent")), order=shipped(), ret=UNWANTED),
    Row("rr-amazon-refunded-escalates", "return-request", Outcome.ESCALATED,
        (AUTHORIZED, A("received", before=amazon_refunds("refund at first scan")),
         A("escalate")), order=shipped(), ret=UNWANTED),
    Row("rr-amazon-refunded-deadline", "return-request", Outcome.REFUNDED_BY_AMAZON,
        (AUTHORIZED, A("received", before=amazon_refunds("refund at first scan")), D()),
        order=shipped(), ret=UNWANTED),
    # Last of all (phase 6, nothing else sent then): every feed ends FATAL with 5002, which
    # Henpin sends again up to MAX_SUBMISSIONS times, then takes as Amazon's refusal.
    Row("rr-amazon-rejects-refund", "return-request", Outcome.AMAZON_REJECTED,
        (AUTHORIZED, A("remind"), RECEIVED, D(), UNOPENED, A("refund_proposed")),
        Amazon(refunds=(("CustomerReturn", FULL),) * 5), order=shipped(), ret=UNWANTED,
        fatal=True),
    # --- a cancel asked by message ---
    Row("cbm-handed-over", "cancel-by-message", Outcome.HANDED_TO_CANCEL_REQUEST,
        (AmazonTells(buyer_requests_cancel),), CANCEL, ("Your cancellation request",),
        order=unshipped(email=True, cancel=False), opened="message"),
    Row("cbm-handed-over-request", "cancel-request", Outcome.CANCELLED_BUYER_CANCELED,
        amazon=CANCEL, mails=("Your cancellation request",), opened="linked",
        parent="cbm-handed-over", first_phase=2),
    Row("cbm-ship", "cancel-by-message", Outcome.SHIPPED_AS_ORDERED, (D(), A("ship")),
        mails=("Your cancellation request",), order=unshipped(email=True, cancel=False),
        opened="message"),
    Row("cbm-cancel-as-seller", "cancel-by-message", Outcome.CANCELLED_BY_SELLER,
        (D(), A("cancel_as_seller", "buyer asked twice")), CANCEL, ("Your cancellation request",),
        order=unshipped(email=True, cancel=False), opened="message"),
    Row("cbm-remind-then-ship", "cancel-by-message", Outcome.SHIPPED_AS_ORDERED,
        (D(), A("remind"), D(), A("ship")), mails=("Your cancellation request", "Reminder:"),
        order=unshipped(email=True, cancel=False), opened="message"),
    Row("cbm-every-deadline", "cancel-by-message", Outcome.SHIPPED_AS_ORDERED,
        (D(), D(), D(), D()), mails=("Your cancellation request", "Reminder:"),
        order=unshipped(email=True, cancel=False), opened="message"),
    Row("cbm-shipped-before-seller-cancels", "cancel-by-message", Outcome.ORDER_CHANGED,
        (D(), A("cancel_as_seller", "buyer asked twice", before=ship)),
        Amazon(status="SHIPPED"), ("Your cancellation request",),
        order=unshipped(email=True, cancel=False), opened="message"),
    Row("cbm-shipped-at-start", "cancel-by-message", Outcome.ORDER_CHANGED,
        order=with_status("SHIPPED"), opened="message"),
    Row("cbm-cancelled-at-start", "cancel-by-message", Outcome.ALREADY_CANCELLED,
        order=with_status(CANCELLED), opened="message"),
    Row("cbm-no-email-escalates", "cancel-by-message", Outcome.ESCALATED, (A("escalate"),),
        order=unshipped(cancel=False), opened="message"),
    Row("cbm-no-email-deadline", "cancel-by-message", Outcome.ESCALATED, (D(),),
        order=unshipped(cancel=False), opened="message"),
    Row("cbm-no-email-answered-then-ship", "cancel-by-message", Outcome.SHIPPED_AS_ORDERED,
        (ANSWERED_IN_SC, D(), A("ship")), order=unshipped(cancel=False), opened="message"),
    Row("cbm-never-started", "cancel-by-message", Outcome.SHIPPED_AS_ORDERED, (D(), A("ship")),
        mails=("Your cancellation request",), order=unshipped(email=True, cancel=False),
        opened="unstarted"),
    # --- a refused or unclaimed delivery ---
    Row("rd-refund-proposed", "refused-delivery", Outcome.REFUNDED_IN_FULL,
        (A("buyer_asked"), A("refund_proposed")), refund("RefusedDelivery", FULL),
        order=shipped(REFUSED)),
    Row("rd-unclaimed-other-amount", "refused-delivery", Outcome.REFUNDED_PARTLY,
        (A("buyer_asked"), A("refund_other_amount", "agreed", amount="25.00")),
        refund("Undeliverable", {"Principal": "25.00"}), order=shipped(UNCLAIMED)),
    Row("rd-no-refund-asked", "refused-delivery", Outcome.NO_REFUND_REQUESTED, (A("no_refund"),),
        order=shipped(REFUSED)),
    Row("rd-remind-then-no-refund", "refused-delivery", Outcome.NO_REFUND_REQUESTED,
        (A("remind"), A("no_refund")), order=shipped(REFUSED)),
    Row("rd-wait-deadlines", "refused-delivery", Outcome.NO_REFUND_REQUESTED, (D(), D()),
        order=shipped(REFUSED)),
    Row("rd-refund-refused-by-operator", "refused-delivery", Outcome.NO_REFUND_REQUESTED,
        (A("buyer_asked"), A("no_refund", "the buyer keeps a voucher")), order=shipped(REFUSED)),
    Row("rd-refund-deadline", "refused-delivery", Outcome.REFUNDED_IN_FULL,
        (A("remind"), A("buyer_asked"), D()), refund("RefusedDelivery", FULL),
        order=shipped(REFUSED)),
    Row("rd-amazon-refunded-first", "refused-delivery", Outcome.REFUNDED_BY_AMAZON,
        (A("buyer_asked"), A("refund_proposed", before=amazon_refunds("A-to-z claim"))),
        order=shipped(REFUSED)),
    Row("rd-prefect-ui-out-of-bounds-then-valid", "refused-delivery", Outcome.REFUNDED_PARTLY,
        (A("buyer_asked"),
         UI({"choice": "refund_other_amount", "note": "more", "amount": 99999},
            {"choice": "refund_other_amount", "note": "agreed with the buyer", "amount": 25})),
        refund("RefusedDelivery", {"Principal": "25.00"}), order=shipped(REFUSED)),
    Row("rd-decided-while-prefect-is-down", "refused-delivery", Outcome.REFUNDED_IN_FULL,
        (A("buyer_asked"), DOWN("refund_proposed")), refund("RefusedDelivery", FULL),
        order=shipped(REFUSED)),
    Row("rd-handed-to-address-error", "refused-delivery", Outcome.HANDED_TO_ADDRESS_ERROR,
        (AmazonTells(address_reported),), Amazon(messages=("confirmDeliveryDetails",)),
        order=shipped(REFUSED)),
    # --- an address error ---
    Row("ae-after-handover-reship", "address-error", Outcome.RESHIPPED,
        (CONFIRMED, A("reship", tracking_number="1Z999AA10123456784", reship_cost="15.00")),
        Amazon(messages=("confirmDeliveryDetails",)), opened="linked",
        parent="rd-handed-to-address-error", first_phase=2),
    Row("ae-reship", "address-error", Outcome.RESHIPPED,
        (CONFIRMED, A("reship", tracking_number="1Z999AA10123456784", reship_cost="15.00")),
        Amazon(messages=("confirmDeliveryDetails",)), order=shipped(ADDRESS)),
    Row("ae-partial-refund", "address-error", Outcome.REFUNDED_PARTLY,
        (CONFIRMED, A("partial_refund", "postage shared", refund_amount="10.00")),
        Amazon(refunds=(("CustomerAddressIncorrect", {"Principal": "10.00"}),),
               applied=({"Principal": "10.00"},), messages=("confirmDeliveryDetails",)),
        order=shipped(ADDRESS)),
    Row("ae-cancel-for-reorder", "address-error", Outcome.CANCELLED_FOR_REORDER,
        (CONFIRMED, A("cancel_for_reorder")),
        Amazon(refunds=(("CustomerCancel", FULL),), applied=(FULL,),
               messages=("confirmDeliveryDetails",)),
        order=shipped(ADDRESS)),
    Row("ae-escalates", "address-error", Outcome.ESCALATED, (CONFIRMED, A("escalate")),
        Amazon(messages=("confirmDeliveryDetails",)), order=shipped(ADDRESS)),
    Row("ae-no-answer-then-reorder", "address-error", Outcome.CANCELLED_FOR_REORDER,
        (A("no_answer"), A("cancel_for_reorder")),
        Amazon(refunds=(("CustomerCancel", FULL),), applied=(FULL,),
               messages=("confirmDeliveryDetails",)),
        order=shipped(ADDRESS)),
    Row("ae-every-deadline", "address-error", Outcome.ESCALATED, (D(), D()),
        Amazon(messages=("confirmDeliveryDetails",)), order=shipped(ADDRESS)),
    # --- two cases of one order, both refunding everything paid: the second finds it refunded
    Row("ae-refunds-first-of-two-cases", "address-error", Outcome.CANCELLED_FOR_REORDER,
        (CONFIRMED, A("cancel_for_reorder")),
        Amazon(refunds=(("CustomerCancel", FULL),), applied=(FULL,),
               messages=("confirmDeliveryDetails",)),
        order=shipped(ADDRESS)),
    Row("rr-already-refunded-by-other-case", "return-request", Outcome.ALREADY_REFUNDED,
        (AUTHORIZED, RECEIVED, UNOPENED, A("refund_proposed")),
        Amazon(refunds=(("CustomerCancel", FULL),), applied=(FULL,),
               messages=("confirmDeliveryDetails",)),
        ret=UNWANTED, parent="ae-refunds-first-of-two-cases"),
]
# fmt: on
BY_ID = {row.id: row for row in ROWS}


def order_id_of(row: Row) -> str:
    if row.parent is not None:
        return order_id_of(BY_ID[row.parent])
    n = 7100000 + ROWS.index(row)
    return f"113-{n:07d}-{n:07d}"


# --- the stack and the driver --------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    emulator: Any
    mailbox: Any
    prefect_server: Any
    #: How often `resume_decided_cases` resumed each case, over the whole table.
    resumed_by_sweep: Counter[int] = field(default_factory=Counter)
    started_by_sweep: list[int] = field(default_factory=list)
    down_decisions: dict[str, Any] = field(default_factory=dict)
    #: The question waiting after each Prefect UI answer of a row.
    asked_after_ui: dict[str, list[str | None]] = field(default_factory=dict)

    def case_of(self, order_id: str, case_type: str) -> Any:
        from henpin.store.db import session_scope
        from henpin.store.models import Case

        with session_scope(self.url) as s:
            case = s.scalar(select(Case).where(Case.order_id == order_id, Case.type == case_type))
            assert case is not None, f"no {case_type} case for {order_id}"
            return case


def unfinished(stack: Stack) -> tuple[set[int], set[int | None]]:
    """Cases acting (or closed on Amazon's word, their run still to finish), and cases with an
    Amazon action not finished."""
    from henpin.store.db import session_scope
    from henpin.store.models import Action, Case

    with session_scope(stack.url) as s:
        acting = set(
            s.scalars(
                select(Case.id).where((Case.state == "acting") | Case.run_to_finish.is_(True))
            ).all()
        )
        pending = set(
            s.scalars(select(Action.case_id).where(Action.status.not_in(("done", "failed")))).all()
        )
    return acting, pending


def settle(stack: Stack, fatal_cases: set[int], rounds: int = 12) -> None:
    """Housekeeping rounds (outbox out and in, wake, resume, notify) with Amazon's clock moving
    two minutes each, until no case acts and no action is open. While a `fatal` row's action is
    the one open, every feed ends FATAL."""
    from tasks.notifications import send_notifications
    from tasks.sweep import (
        resume_decided_cases,
        send_amazon_actions,
        wake_cases_with_amazon_results,
    )

    _, pending = unfinished(stack)
    faulty = bool(pending & fatal_cases)
    if faulty:
        assert pending <= fatal_cases, f"other cases' actions would end FATAL too: {pending}"
        control(stack.emulator, "PUT", "faults", json={"seed": 1, "feeds": {"fatalRate": 1}})
    try:
        for _ in range(rounds):
            send_amazon_actions.fn()
            control(stack.emulator, "POST", "clock/advance", json={"seconds": 120})
            send_amazon_actions.fn()
            wake_cases_with_amazon_results.fn()
            stack.resumed_by_sweep.update(resume_decided_cases.fn())
            send_notifications.fn()
            drive_case_runs()
            acting, pending = unfinished(stack)
            if not acting and not pending:
                return
        raise AssertionError(f"Amazon's side did not settle: acting {acting}, open {pending}")
    finally:
        if faulty:
            control(stack.emulator, "DELETE", "faults")


def drive_run(flow_run_id: str) -> None:
    """Run one case run that is due, as the runner would (`drive_case_runs` runs them all)."""
    import asyncio
    import contextlib
    import inspect

    from prefect.client.orchestration import get_client
    from prefect.exceptions import Pause
    from prefect.flow_engine import run_flow

    from henpin.runner import case_flows

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        flow = case_flows()[client.read_flow(run.flow_id).name]
    with contextlib.suppress(Pause):
        ran: Any = run_flow(flow, flow_run=run, parameters=run.parameters, return_type="state")
        state = asyncio.run(ran) if inspect.isawaitable(ran) else ran
        assert not (state.is_failed() or state.is_crashed()), state.message


def waiting_cases(stack: Stack) -> list[Any]:
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(stack.url) as s:
        return list(s.scalars(select(Case).where(Case.state == "waiting")).all())


def step_at(row: Row, phase: int) -> Step | None:
    i = phase - row.first_phase
    return row.steps[i] if 0 <= i < len(row.steps) else None


def open_cases(stack: Stack) -> None:
    """Phase 0: every row's order and return request at Amazon, every case opened."""
    from flows.ingest import ingest
    from henpin.app.messages import open_cancel_by_message
    from henpin.context import adapter
    from henpin.domain import CaseType
    from tasks.cases import open_case
    from tasks.sweep import start_unstarted_cases

    emulator = stack.emulator
    control(emulator, "PUT", "application/roles", json={"roles": ["DIRECT_TO_CONSUMER_DELIVERY"]})
    control(emulator, "POST", "orders", json=[r.order(order_id_of(r)) for r in ROWS if r.order])
    returns = [
        {"orderId": order_id_of(r), "sku": "MUG-001", **r.ret} for r in ROWS if r.ret is not None
    ]
    control(emulator, "POST", "returns", json=returns)
    for row in ROWS:
        if row.opened == "message":
            open_cancel_by_message(
                stack.url, order_id_of(row), buyer_message="Please cancel.", operator="alice"
            )
        elif row.opened == "unstarted":  # the process that opened it stopped right after
            order = adapter().get_order(order_id_of(row))
            open_case(CaseType.CANCEL_BY_MESSAGE, order, details={"buyer_message": "Cancel!"})
    control(emulator, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    stack.started_by_sweep = start_unstarted_cases.fn(now=datetime.now(UTC) + timedelta(minutes=2))
    drive_case_runs()
    for row in ROWS:
        if row.after_open is not None:
            row.after_open(emulator, order_id_of(row), stack)
    settle(stack, fatal_cases(stack))


def fatal_cases(stack: Stack) -> set[int]:
    return {stack.case_of(order_id_of(r), r.case_type).id for r in ROWS if r.fatal}


def run_phase(stack: Stack, phase: int) -> None:
    from prefect.flow_runs import resume_flow_run

    from flows.ingest import ingest
    from henpin.app.decide import decide
    from henpin.decisions import find_decision, record_deadline_answers
    from tasks.sweep import resume_decided_cases

    steps = [(row, step) for row in ROWS if (step := step_at(row, phase)) is not None]
    for row, step in steps:
        if step.before is not None:
            step.before(stack.emulator, order_id_of(row))
    control(stack.emulator, "POST", "clock/advance", json={"seconds": 600})
    ingest()

    deadline: set[int] = set()
    down: list[tuple[Row, Any, Answer]] = []
    for row, step in steps:
        case = stack.case_of(order_id_of(row), row.case_type)
        if isinstance(step, AmazonTells):
            continue
        assert case.state == "waiting", f"{row.id}, phase {phase}: the case is {case.state}"
        if isinstance(step, Deadline):
            deadline.add(case.id)
        elif isinstance(step, PrefectUI):
            # Run to the end of each answer here: the Resume form records no answer before
            # the run has checked it, so a case left waiting would meet the deadline sweep.
            for given in step.answers:
                resume_flow_run(UUID(case.flow_run_id), run_input=given)
                drive_run(case.flow_run_id)
                case = stack.case_of(order_id_of(row), row.case_type)
                stack.asked_after_ui.setdefault(row.id, []).append(case.waiting_step)
        elif step.door == "server-down":
            down.append((row, case, step))
        else:
            said = decide(
                stack.url,
                case.id,
                choice=step.choice,
                note=step.note,
                operator="alice",
                source="inbox",
                fields=step.fields,
            )
            assert said.accepted, f"{row.id}: {said.message}"
    if down:
        stack.prefect_server.stop()
        try:
            for row, case, step in down:
                said = decide(
                    stack.url,
                    case.id,
                    choice=step.choice,
                    note=step.note,
                    operator="alice",
                    source="inbox",
                    fields=step.fields,
                )
                assert said.accepted, f"{row.id}: {said.message}"
                stack.down_decisions[row.id] = said
        finally:
            reset_process_caches()
            stack.prefect_server.start()

    # The guard: every waiting case has its answer now, but the deadline rows' cases.
    rows = {(order_id_of(r), r.case_type): r.id for r in ROWS}
    for case in waiting_cases(stack):
        if case.id in deadline:
            continue
        name = rows.get((case.order_id, case.type), f"no row: {case.type} {case.order_id}")
        assert find_decision(stack.url, case.id, case.waiting_step) is not None, (
            f"{name}, phase {phase}: waits at {case.waiting_step} and the table gives no answer"
        )
    swept = record_deadline_answers(stack.url, datetime.now(UTC) + LATER)
    assert set(swept) == deadline, f"phase {phase}: the sweep answered {swept}, not {deadline}"
    stack.resumed_by_sweep.update(resume_decided_cases.fn())
    drive_case_runs()
    settle(stack, fatal_cases(stack))


# --- what each row ended with --------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    outcome: str | None
    state: str
    amazon: Amazon
    mails: tuple[str, ...]
    mail_to: tuple[str, ...]
    case_id: int


def components(parent: ET.Element | None) -> dict[str, str]:
    if parent is None:
        return {}
    return {
        c.findtext("Type") or "": (c.findtext("Amount") or "").strip()
        for c in parent.findall("Component")
    }


def amazon_side(emulator: Any, order_id: str) -> Amazon:
    cancels: list[str] = []
    refunds: list[tuple[str, dict[str, str]]] = []
    for feed in control(emulator, "GET", "feeds"):
        root = ET.fromstring(feed["document"] or "<none/>")
        for message in root.iter("Message"):
            if message.findtext(".//AmazonOrderID") != order_id:
                continue
            cancels += [r.text or "" for r in message.iter("CancelReason")]
            for item in message.iter("AdjustedItem"):
                refunds.append(
                    (
                        item.findtext("AdjustmentReason") or "",
                        components(item.find("ItemPriceAdjustments")),
                    )
                )
    applied = tuple(
        {c["type"]: c["amount"] for c in r["components"]}
        for r in control(emulator, "GET", f"orders/{order_id}/refunds")
        if r.get("refundedBy") == "SELLER"
    )
    messages = tuple(
        m["action"] for m in control(emulator, "GET", "messages", params={"orderId": order_id})
    )
    status = control(emulator, "GET", f"orders/{order_id}")["fulfillment"]["fulfillmentStatus"]
    return Amazon(tuple(cancels), tuple(refunds), applied, messages, status)


@dataclass(frozen=True)
class Table:
    """What the table's drive left: each row's results, and the stack's own records."""

    ended: dict[str, Ended]
    stack: Stack


@pytest.fixture(scope="module")
def table(prefect_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Table]:
    """The whole table driven once on one stack; each row's results."""
    from emulator.server import EmulatorServer
    from henpin.mailcatcher import MailCatcher
    from henpin.runner import case_flows
    from henpin.store.db import migrate

    home = tmp_path_factory.mktemp("outcomes")
    with (
        EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as emulator,
        MailCatcher(host="127.0.0.1", port=0) as mailbox,
        pytest.MonkeyPatch.context() as mp,
    ):
        mp.setenv("HENPIN_HOME", str(home))
        mp.setenv("HENPIN_EMULATOR_URL", emulator.url)
        mp.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
        mp.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
        mp.setenv("HENPIN_SMTP_HOST", "127.0.0.1")
        mp.setenv("HENPIN_SMTP_PORT", str(mailbox.port))
        # Each poll asks for a new returns report (Amazon's clock runs 60 times faster here
        # and jumps: a report from "five minutes ago" by the wall clock is long out of date).
        mp.setattr("henpin.amazon.client.REPORT_REUSE", timedelta(days=-3650))
        forget_flow_runs()
        reset_process_caches()
        from henpin.context import store_url

        url = store_url()
        migrate(url)
        for name, flow in case_flows().items():
            if name not in ("ingest", "housekeeping"):
                flow.to_deployment(name="henpin").apply()
        stack = Stack(url, emulator, mailbox, prefect_server)
        open_cases(stack)
        last = max(row.first_phase + len(row.steps) for row in ROWS)
        for phase in range(1, last):
            run_phase(stack, phase)

        ended = {}
        for row in ROWS:
            order_id = order_id_of(row)
            case = stack.case_of(order_id, row.case_type)
            caught = [m for m in mailbox.messages if order_id in m.subject]
            ended[row.id] = Ended(
                case.outcome,
                case.state,
                amazon_side(emulator, order_id),
                tuple(m.subject for m in caught),
                tuple(m.to for m in caught),
                case.id,
            )
        yield Table(ended, stack)
        reset_process_caches()


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_outcome(table: Table, row: Row) -> None:
    ended = table.ended[row.id]
    assert (ended.state, ended.outcome) == ("closed", row.outcome.value)
    expected = row.amazon
    got = ended.amazon
    assert got.cancels == expected.cancels
    assert got.refunds == expected.refunds
    assert got.applied == expected.applied
    assert got.messages == expected.messages
    if expected.status is not None:
        assert got.status == expected.status
    assert len(ended.mails) == len(row.mails), ended.mails
    for subject, start in zip(ended.mails, row.mails, strict=True):
        assert subject.startswith(start), (subject, start)
    assert set(ended.mail_to) <= {BUYER_EMAIL}


def test_every_outcome_has_a_row() -> None:
    reached = {row.outcome for row in ROWS}
    assert set(Outcome) - reached == set()


def test_the_never_started_case_was_started_by_the_sweep(table: Table) -> None:
    stack = table.stack
    assert stack.started_by_sweep == [table.ended["cbm-never-started"].case_id]


def test_an_out_of_bounds_prefect_ui_answer_is_asked_again(table: Table) -> None:
    """Schema-valid (a Decimal) but more than was paid: refused, asked again under the next
    step; the valid answer then settles it (one refund of 25.00, in the table)."""
    from henpin.app.cases import show_case

    stack = table.stack
    row = "rd-prefect-ui-out-of-bounds-then-valid"
    assert stack.asked_after_ui[row] == ["confirm-refund-2", None]
    detail = show_case(stack.url, table.ended[row].case_id)
    assert detail is not None
    decided = [(d.step, d.choice, d.operator) for d in detail.decisions]
    assert decided == [
        ("refund-asked", "buyer_asked", "alice"),
        ("confirm-refund-2", "refund_other_amount", "prefect-ui"),
    ]


def test_a_decision_made_while_prefect_is_down_resumes_its_run_once(
    table: Table,
) -> None:
    stack = table.stack
    said = stack.down_decisions["rd-decided-while-prefect-is-down"]
    assert said.accepted and not said.resumed
    case_id = table.ended["rd-decided-while-prefect-is-down"].case_id
    assert stack.resumed_by_sweep[case_id] == 1
