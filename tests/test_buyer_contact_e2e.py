"""Writing to buyers end to end on real parts (Prefect server, emulator over HTTP,
python-amazon-sp-api, SQLite case store, local SMTP catcher):

- without Amazon's restricted Direct-to-Consumer Delivery role there is no buyer e-mail: the
  cancel-by-message case asks the operator to send its reply in Seller Central (linked), sends
  nothing itself, and goes on once the operator records it; with the role the e-mail goes out;
- buyers are written to in their language of preference (Messaging API getAttributes): the
  address confirmation in German and Japanese, English where policy has no text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import tests.test_case_types_e2e as case_types
from tests.support import drive_case_runs, order_json
from tests.test_case_types_e2e import answer, control, restart, settle_amazon, the_case

pytestmark = [pytest.mark.e2e]

emulator = case_types.emulator  # a fresh emulator per test: no role granted
mailbox = case_types.mailbox
henpin = case_types.henpin

DE, JP, UK = "A1PA6795UKMFR9", "A1VC38T7YXB528", "A1F83G8C2ARO7P"
ROLE = "DIRECT_TO_CONSUMER_DELIVERY"


def buyer_order(
    order_id: str, marketplace_id: str, currency: str, price: str, **kw: Any
) -> dict[str, Any]:
    order = order_json(
        order_id, marketplace_id=marketplace_id, currency=currency, price=price, **kw
    )
    order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": f"b-{order_id}@marketplace.invalid"}
    return order


def buyer_cancels_in_your_orders(emulator: Any, order: dict[str, Any]) -> None:
    """The buyer does as asked: Amazon now shows their cancel request."""
    request = {"cancellationRequest": {"requester": "BUYER", "cancelReason": "Changed my mind"}}
    item = {"orderItemId": order["orderItems"][0]["orderItemId"], "cancellation": request}
    control(emulator, "PATCH", f"orders/{order['orderId']}", json={"orderItems": [item]})


def email_actions(url: str, case_id: int) -> list[Any]:
    from henpin.app.cases import show_case

    detail = show_case(url, case_id)
    assert detail is not None
    return [a for a in detail.actions if a.kind == "send-email"]


def test_without_buyer_email_the_operator_answers_in_seller_central(
    henpin: str, emulator: Any, mailbox: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.messages import open_cancel_by_message, preview_cancel_by_message

    order_id = "304-0000041-0000041"
    order = buyer_order(order_id, DE, "EUR", "34.95", cancel_reason=None)
    control(emulator, "POST", "orders", json=[order])  # no role: Amazon hides the address

    preview = preview_cancel_by_message(henpin, order_id)
    assert (preview.to, preview.reply_in_seller_central, preview.language) == ("", True, "de")
    opened = open_cancel_by_message(
        henpin, order_id, buyer_message="Bitte stornieren Sie meine Bestellung.", operator="alice"
    )
    drive_case_runs()
    settle_amazon(emulator, rounds=1)
    case = the_case(henpin, order_id, "cancel-by-message")
    assert case.state == "waiting" and case.waiting_step == "reply-in-seller-central-0"
    assert case.timeout_choice == "escalate"
    assert set(case.choices) == {"answered_in_seller_central", "escalate"}
    links = set(case.question["links"].values())
    assert "https://sellercentral.amazon.de/messaging/inbox" in links
    assert (
        f"https://sellercentral.amazon.de/messaging/contact?orderID={order_id}"
        f"&marketplaceID={DE}" in links
    )
    # The operator gets the reply to paste, in the buyer's language (getAttributes: de-DE).
    assert f"Ihre Stornierungsanfrage zur Bestellung {order_id}" in case.question["prompt"]
    assert case.details["buyer_locale"] == "de-DE" and case.details["buyer_language"] == "de"
    assert mailbox.messages == [] and email_actions(henpin, case.id) == []

    restart(prefect_server)  # save/restore while the case waits for the operator
    answer(henpin, case, "answered_in_seller_central", note="Replied in the buyer's thread")
    case = the_case(henpin, order_id, "cancel-by-message")
    assert case.waiting_step == "buyer-request-0"  # goes on as if Henpin had sent it

    buyer_cancels_in_your_orders(emulator, order)
    ingest()
    settle_amazon(emulator)
    detail = show_case(henpin, opened.id)
    assert detail is not None and detail.outcome == "handed-to-cancel-request"
    assert detail.decisions[0].choice == "answered_in_seller_central"
    assert mailbox.messages == [] and email_actions(henpin, opened.id) == []


def test_a_buyer_who_cancels_while_the_operator_answers_is_handed_over_at_once(
    henpin: str, emulator: Any, mailbox: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.messages import open_cancel_by_message

    order_id = "204-0000047-0000047"
    order = buyer_order(order_id, UK, "GBP", "12.49", cancel_reason=None)
    control(emulator, "POST", "orders", json=[order])
    opened = open_cancel_by_message(henpin, order_id, buyer_message="Cancel it", operator="di")
    drive_case_runs()
    case = the_case(henpin, order_id, "cancel-by-message")
    assert case.waiting_step == "reply-in-seller-central-0"
    buyer_cancels_in_your_orders(emulator, order)
    ingest()  # opens the buyer-cancel-request case, linked; this case still waits
    request = the_case(henpin, order_id, "cancel-request")
    assert request.parent_case_id == opened.id
    assert the_case(henpin, order_id, "cancel-by-message").state == "waiting"

    answer(henpin, case, "answered_in_seller_central")
    detail = show_case(henpin, opened.id)
    assert detail is not None and detail.outcome == "handed-to-cancel-request"
    assert mailbox.messages == []


def test_unanswered_seller_central_question_escalates_at_its_deadline(
    henpin: str, emulator: Any, mailbox: Any, prefect_server: Any
) -> None:
    from henpin.app.cases import show_case
    from henpin.app.messages import open_cancel_by_message
    from tasks.sweep import apply_passed_deadlines

    order_id = "503-0000042-0000042"
    control(
        emulator,
        "POST",
        "orders",
        json=[buyer_order(order_id, JP, "JPY", "2480", cancel_reason=None)],
    )
    # An English-speaking buyer on Amazon.co.jp: the reply to paste is in English.
    control(emulator, "PUT", f"orders/{order_id}/buyer-locale", json={"locale": "en-US"})
    opened = open_cancel_by_message(henpin, order_id, buyer_message="Please cancel", operator="bo")
    drive_case_runs()
    case = the_case(henpin, order_id, "cancel-by-message")
    assert case.waiting_step == "reply-in-seller-central-0"
    assert f"Your cancellation request for order {order_id}" in case.question["prompt"]
    # Nobody answers: past the deadline the named timeout path escalates.
    apply_passed_deadlines(now=datetime.now(UTC) + timedelta(hours=25))
    drive_case_runs()
    detail = show_case(henpin, opened.id)
    assert detail is not None and detail.outcome == "escalated"
    assert [(d.choice, d.operator) for d in detail.decisions] == [("escalate", "deadline")]
    assert mailbox.messages == []


def test_with_the_role_the_reply_is_emailed_in_the_buyers_language(
    henpin: str, emulator: Any, mailbox: Any, prefect_server: Any
) -> None:
    from henpin.app.messages import open_cancel_by_message

    order_id = "113-0000043-0000043"
    control(emulator, "PUT", "application/roles", json={"roles": [ROLE]})
    control(
        emulator,
        "POST",
        "orders",
        json=[buyer_order(order_id, "ATVPDKIKX0DER", "USD", "25.00", cancel_reason=None)],
    )
    # A Spanish-speaking buyer on Amazon.com.
    control(emulator, "PUT", f"orders/{order_id}/buyer-locale", json={"locale": "es-US"})
    open_cancel_by_message(henpin, order_id, buyer_message="Cancelen, por favor", operator="cy")
    drive_case_runs()
    settle_amazon(emulator, rounds=1)
    assert [m.rcpt_tos for m in mailbox.messages] == [(f"b-{order_id}@marketplace.invalid",)]
    assert mailbox.messages[0].subject == f"Su solicitud de cancelación del pedido {order_id}"
    case = the_case(henpin, order_id, "cancel-by-message")
    assert case.waiting_step == "buyer-request-0"


def test_address_confirmation_in_the_buyers_language(
    henpin: str, emulator: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest

    package = {
        "packageReferenceId": "1",
        "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
    }
    orders = {
        "304-0000044-0000044": (DE, "EUR", "39.90"),
        "503-0000045-0000045": (JP, "JPY", "4980"),
        "204-0000046-0000046": (UK, "GBP", "19.99"),
    }
    posted = []
    for order_id, (marketplace_id, currency, price) in orders.items():
        order = buyer_order(
            order_id, marketplace_id, currency, price, status="SHIPPED", cancel_reason=None
        )
        order["packages"] = [package]
        posted.append(order)
    control(emulator, "POST", "orders", json=posted)
    # A Polish-speaking buyer on Amazon.co.uk: policy has no Polish text, so English.
    control(emulator, "PUT", "orders/204-0000046-0000046/buyer-locale", json={"locale": "pl-PL"})
    ingest()
    drive_case_runs()
    settle_amazon(emulator, rounds=2)  # the confirm-delivery-details messages go out

    sent = {m["orderId"]: m for m in control(emulator, "GET", "messages")}
    assert {m["action"] for m in sent.values()} == {"confirmDeliveryDetails"}
    assert sent["304-0000044-0000044"]["text"].startswith(
        "Guten Tag, Ihr Paket zur Bestellung 304-0000044-0000044 kam als unzustellbar"
    )
    assert sent["503-0000045-0000045"]["text"].startswith(
        "ご注文 503-0000045-0000045 の商品が、お届けできずに当店へ返送されました。"
    )
    assert sent["204-0000046-0000046"]["text"].startswith(
        "Hello, your parcel for order 204-0000046-0000046 was returned to us as undeliverable."
    )
    languages = {
        order_id: the_case(henpin, order_id, "address-error").details["buyer_language"]
        for order_id in orders
    }
    assert languages == {
        "304-0000044-0000044": "de",
        "503-0000045-0000045": "ja",
        "204-0000046-0000046": "pl",
    }
