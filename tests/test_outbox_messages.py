"""The outbox beyond cancellations: buyer messages (Messaging API, one call each), e-mails (SMTP
to the local catcher), refunds (payment adjustment feeds) and Amazon's "not applied, resubmit"
answers, on a real database against the emulator over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError

from henpin import outbox
from henpin.amazon.feed_xml import read_feed
from henpin.domain import (
    ActionKind,
    AdjustmentReason,
    BuyerMessage,
    EmailMessage,
    FeedType,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.mailcatcher import MailCatcher
from henpin.outbox import OutboxKeyConflict, SendState
from henpin.outbox.mail import MailSettings, message_id_for
from tests.test_outbox import (
    ORDERS,
    SELLER,
    US,
    Crash,
    TestAdapter,
    actions,
    amazon_status,
    enqueue_cancel,
    finish_feeds,
    item_id,
    received_feeds,
    seed,
)

KETTLE, DE = "304-9000019-0000019", "A1PA6795UKMFR9"  # demo: address error, SHIPPED
ASK_ADDRESS = "Bitte bestätigen Sie Ihre Lieferadresse (Hausnummer?)."
RELAY = "demo-buyer-19@marketplace.example.invalid"


@pytest.fixture
def store(case_store: str) -> str:
    return case_store


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server.url


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as control:
        control.post("/_emulator/reset").raise_for_status()
        control.post("/_emulator/seed-demo").raise_for_status()
        yield control


@pytest.fixture(scope="module")
def mailbox() -> Iterator[MailCatcher]:
    with MailCatcher(port=0) as catcher:
        yield catcher


@pytest.fixture
def mail(mailbox: MailCatcher) -> MailSettings:
    mailbox.clear()
    return MailSettings(  # type: ignore[call-arg]
        _env_file=None, host="127.0.0.1", port=mailbox.port, sender="shop@example.com"
    )


def enqueue_message(
    store: str, key: str = "case-1:message:address", text: str = ASK_ADDRESS, **fields: Any
) -> int:
    return outbox.enqueue(
        store,
        key=key,
        case_id=None,
        kind=ActionKind.SEND_MESSAGE,
        marketplace_id=DE,
        payload=BuyerMessage(
            order_id=fields.get("order_id", KETTLE),
            action=fields.get("action", "confirmDeliveryDetails"),
            text=text,
        ),
    )


def enqueue_email(store: str, key: str = "case-2:email:reply-0", to: str = RELAY) -> int:
    return outbox.enqueue(
        store,
        key=key,
        case_id=None,
        kind=ActionKind.SEND_EMAIL,
        marketplace_id=DE,
        payload=EmailMessage(to=to, subject="Ihre Bestellung", body="Bitte stornieren Sie."),
    )


def sent_messages(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/_emulator/messages").json())


def calls(control: httpx.Client, operation_id: str) -> int:
    return sum(1 for c in control.get("/_emulator/calls").json() if c["operation"] == operation_id)


def faults(control: httpx.Client, settings: dict[str, Any] | None) -> None:
    if settings is None:
        control.delete("/_emulator/faults").raise_for_status()
    else:
        control.put("/_emulator/faults", json={"seed": 1, **settings}).raise_for_status()


def state(store: str, key: str) -> tuple[str, str | None]:
    (action,) = [a for a in actions(store) if a.key == key]
    return action.status, action.result_code


# --- enqueue -------------------------------------------------------------------------------------


def test_messages_and_emails_are_stored_once_per_key(store: str) -> None:
    first = enqueue_message(store)
    assert enqueue_message(store) == first
    enqueue_email(store)
    message, email = actions(store)
    assert (message.kind, message.feed_type, message.status) == (
        "send-message",
        "MESSAGING_API",
        "pending",
    )
    assert (email.kind, email.feed_type) == ("send-email", "SMTP")
    assert message.payload == {
        "order_id": KETTLE,
        "action": "confirmDeliveryDetails",
        "text": ASK_ADDRESS,
    }
    with pytest.raises(OutboxKeyConflict):
        enqueue_message(store, text="Something else")


def test_what_amazon_or_a_mail_server_would_refuse_is_refused_when_stored(store: str) -> None:
    with pytest.raises(ValueError, match="HTML"):
        enqueue_message(store, key="k1", text="<b>Hallo</b>")
    with pytest.raises(ValueError, match="e-mail addresses"):
        enqueue_message(store, key="k2", text="Write to shop@example.com")
    with pytest.raises(ValueError, match="not a single e-mail address"):
        enqueue_email(store, key="k3", to="a@b.example, c@d.example")
    with pytest.raises(ValueError, match="on its own"):
        outbox.enqueue(
            store,
            key="k4",
            case_id=None,
            kind=ActionKind.SEND_MESSAGE,
            feed_type=FeedType.PAYMENT_ADJUSTMENT,
            marketplace_id=DE,
            payload=BuyerMessage(order_id=KETTLE, action="unexpectedProblem", text="Hallo"),
        )
    with pytest.raises(ValidationError):
        BuyerMessage(order_id=KETTLE, action="negativeFeedbackRemoval", text="x")  # type: ignore[arg-type]
    assert actions(store) == []


# --- sending ---------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_message_and_an_email_go_out_once(
    store: str, emulator: httpx.Client, emulator_url: str, mailbox: MailCatcher, mail: MailSettings
) -> None:
    enqueue_message(store)
    enqueue_email(store)
    with TestAdapter(emulator_url) as adapter:
        assert outbox.send_pending(store, adapter, seller_id=SELLER, mail_settings=mail) == []
        outbox.send_pending(store, adapter, seller_id=SELLER, mail_settings=mail)
        outbox.reconcile(store, adapter, settle=timedelta(0))
    assert [(a.status, a.result_code) for a in actions(store)] == [("done", "SENT")] * 2
    assert [(m["orderId"], m["action"], m["text"]) for m in sent_messages(emulator)] == [
        (KETTLE, "confirmDeliveryDetails", ASK_ADDRESS)
    ]
    (caught,) = mailbox.wait_for(1)
    assert caught.rcpt_tos == (RELAY,)
    assert caught.message_id == message_id_for("case-2:email:reply-0", "shop@example.com")
    assert calls(emulator, "createConfirmDeliveryDetails") == 1


@pytest.mark.e2e
def test_a_message_amazon_does_not_offer_fails_with_the_reason(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    enqueue_message(store, action="confirmOrderDetails", text="Ihre Bestellung")
    with TestAdapter(emulator_url) as adapter:
        assert outbox.send_messages_and_emails(store, adapter) == [actions(store)[0].id]
    (action,) = actions(store)
    assert (action.status, action.result_code) == ("failed", "MessageNotOffered")
    assert "it offers: confirmDeliveryDetails, unexpectedProblem" in (action.result_message or "")
    assert sent_messages(emulator) == []


@pytest.mark.e2e
def test_a_message_whose_answer_was_lost_is_never_resent_by_itself(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    # Amazon kept the message but answered 500: Henpin cannot know.
    faults(
        emulator,
        {
            "rules": [
                {
                    "operations": ["createConfirmDeliveryDetails"],
                    "rate": 1,
                    "fault": "500",
                    "afterApply": True,
                }
            ]
        },
    )
    enqueue_message(store, key="m1")
    with TestAdapter(emulator_url) as adapter:
        outbox.send_pending(store, adapter, seller_id=SELLER)
        assert state(store, "m1") == ("submitted", SendState.UNCERTAIN.value)
        faults(emulator, None)
        for _ in range(2):
            outbox.send_pending(store, adapter, seller_id=SELLER)
            outbox.reconcile(store, adapter, settle=timedelta(0))
        assert calls(emulator, "createConfirmDeliveryDetails") == 1
        (action,) = actions(store)
        assert "Seller Central" in (action.result_message or "")
        # A person finds it among the order's messages: it went out.
        assert len(sent_messages(emulator)) == 1
        assert outbox.settle_uncertain(store, "m1", was_sent=True, by="operator ana")
        assert state(store, "m1") == ("done", "CONFIRMED_SENT")
        assert not outbox.settle_uncertain(store, "m1", was_sent=False, by="operator bo")

        # This time Amazon refused before doing anything (a 500 that applied nothing).
        faults(
            emulator,
            {"rules": [{"operations": ["createUnexpectedProblem"], "rate": 1, "fault": "500"}]},
        )
        enqueue_message(store, key="m2", action="unexpectedProblem", text="Es gibt ein Problem.")
        outbox.send_pending(store, adapter, seller_id=SELLER)
        assert state(store, "m2") == ("submitted", SendState.UNCERTAIN.value)
        faults(emulator, None)
        assert len(sent_messages(emulator)) == 1  # a person sees it is not there
        assert outbox.settle_uncertain(store, "m2", was_sent=False, by="operator ana")
        outbox.send_pending(store, adapter, seller_id=SELLER)
    assert state(store, "m2") == ("done", "SENT")
    assert [m["action"] for m in sent_messages(emulator)] == [
        "confirmDeliveryDetails",
        "unexpectedProblem",
    ]


@pytest.mark.e2e
def test_throttled_or_unreachable_messages_simply_wait(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    faults(
        emulator,
        {"rules": [{"operations": ["getMessagingActionsForOrder"], "rate": 1, "fault": "429"}]},
    )
    enqueue_message(store, key="m1")
    enqueue_message(store, key="m2", action="unexpectedProblem", text="Es gibt ein Problem.")
    with TestAdapter(emulator_url) as adapter:
        adapter.retry = adapter.retry.model_copy(update={"max_attempts": 2})
        assert outbox.send_messages_and_emails(store, adapter) == []
        assert {a.status for a in actions(store)} == {"pending"}
        assert calls(emulator, "getMessagingActionsForOrder") == 2  # the round stopped at m1
        faults(emulator, None)
        assert len(outbox.send_messages_and_emails(store, adapter)) == 2
    assert len(sent_messages(emulator)) == 2


@pytest.mark.e2e
def test_a_crash_while_sending_leaves_the_message_for_a_person(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    class Dies(TestAdapter):
        __test__ = False

        def send_message(self, *args: Any, **kwargs: Any) -> None:
            raise Crash

    enqueue_message(store, key="m1")
    with Dies(emulator_url) as dying, pytest.raises(Crash):
        outbox.send_messages_and_emails(store, dying)
    assert state(store, "m1") == ("submitted", SendState.SENDING.value)
    with TestAdapter(emulator_url) as adapter:
        outbox.reconcile(store, adapter)  # too fresh: the call could still be under way
        assert state(store, "m1") == ("submitted", SendState.SENDING.value)
        later = datetime.now(UTC) + outbox.SETTLE + timedelta(seconds=1)
        outbox.reconcile(store, adapter, now=later)
        assert state(store, "m1") == ("submitted", SendState.UNCERTAIN.value)
        outbox.send_pending(store, adapter, seller_id=SELLER)
    assert sent_messages(emulator) == []


# --- e-mails that do not go through --------------------------------------------------------------


class _HangsUpAfterTheText:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        server.transport.close()
        await asyncio.sleep(0.1)
        return "250 OK"


class _RefusesRecipient:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 Unknown relay address"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.e2e
def test_emails_wait_while_no_server_answers_and_are_never_resent_when_unsure(
    store: str, emulator_url: str, mail: MailSettings, mailbox: MailCatcher
) -> None:
    enqueue_email(store, key="e1")
    enqueue_email(store, key="e2")
    nowhere = mail.model_copy(update={"port": free_port()})
    with TestAdapter(emulator_url) as adapter:
        assert outbox.send_messages_and_emails(store, adapter, mail_settings=nowhere) == []
        assert (
            outbox.send_messages_and_emails(
                store,
                adapter,
                mail_settings=MailSettings(_env_file=None),  # type: ignore[call-arg]
            )
            == []
        )  # no server configured: they wait
        assert {a.status for a in actions(store)} == {"pending"}

        port = free_port()
        for handler in (_HangsUpAfterTheText(), _RefusesRecipient()):
            controller = Controller(handler, hostname="127.0.0.1", port=port)
            controller.start()
            try:
                outbox.send_messages_and_emails(
                    store, adapter, mail_settings=mail.model_copy(update={"port": port}), limit=1
                )
            finally:
                controller.stop()
        outbox.send_messages_and_emails(store, adapter, mail_settings=mail)  # nothing left to send
    assert state(store, "e1") == ("submitted", SendState.UNCERTAIN.value)
    first = actions(store)[0]
    assert message_id_for("e1", "shop@example.com") in (first.result_message or "")
    assert state(store, "e2") == ("failed", "SMTP_550")
    assert mailbox.messages == []


# --- refunds and Amazon's "resubmit" ----------------------------------------------------------------


def refund(order_id: str, amount: str) -> Refund:
    return Refund(
        order_id=order_id,
        items=[
            RefundItem(
                order_item_id=item_id(order_id),
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal(amount), currency="USD"
                    ),
                    RefundComponent(
                        type=PriceComponent.RESTOCKING_FEE, amount=Decimal("-1.50"), currency="USD"
                    ),
                ],
            )
        ],
    )


@pytest.mark.e2e
def test_refunds_batch_into_one_adjustment_feed_and_an_over_refund_fails_with_amazons_words(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(
        emulator,
        ORDERS[0],
        ORDERS[1],
        fulfillment={"fulfillmentStatus": "SHIPPED", "fulfilledBy": "MERCHANT"},
    )
    for key, order_id, amount in (("r1", ORDERS[0], "20.00"), ("r2", ORDERS[1], "45.00")):
        outbox.enqueue(
            store,
            key=key,
            case_id=None,
            kind=ActionKind.REFUND,
            marketplace_id=US,
            payload=refund(order_id, amount),
        )
    with TestAdapter(emulator_url) as adapter:
        assert len(outbox.send_pending(store, adapter, seller_id=SELLER)) == 1
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store, adapter)) == 2
    applied, refused = actions(store)
    assert (applied.status, refused.status) == ("done", "failed")
    assert refused.result_code == "18028"
    assert "30.00" in (refused.result_message or "")  # what was paid for the item
    (feed,) = received_feeds(emulator)
    assert feed["feedType"] == "POST_PAYMENT_ADJUSTMENT_DATA"
    assert [p.order_id for _, p in read_feed(feed["document"])[1]] == ORDERS[:2]
    (recorded,) = emulator.get(f"/_emulator/orders/{ORDERS[0]}/refunds").json()
    assert {c["type"]: c["amount"] for c in recorded["components"]} == {
        "Principal": "20.00",
        "RestockingFee": "-1.50",
    }
    assert emulator.get(f"/_emulator/orders/{ORDERS[1]}/refunds").json() == []


@pytest.mark.e2e
def test_what_amazon_says_it_did_not_apply_is_sent_again_a_bounded_number_of_times(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    enqueue_cancel(store, ORDERS[0])
    with TestAdapter(emulator_url) as adapter:
        faults(emulator, {"feeds": {"fatalRate": 1}})  # the whole feed: FATAL, code 5002
        outbox.send_pending(store, adapter, seller_id=SELLER)
        faults(emulator, {"feeds": {"partialErrorRate": 1}})  # then its message: 5002
        finish_feeds(emulator)
        assert outbox.poll_submitted(store, adapter) == []
        assert state(store, f"cancel:{ORDERS[0]}") == ("pending", "RESUBMIT_1")
        outbox.send_pending(store, adapter, seller_id=SELLER)
        faults(emulator, None)
        finish_feeds(emulator)
        assert outbox.poll_submitted(store, adapter) == []
        assert state(store, f"cancel:{ORDERS[0]}") == ("pending", "RESUBMIT_2")
        outbox.send_pending(store, adapter, seller_id=SELLER)
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store, adapter)) == 1

        # Amazon failing every time: after MAX_SUBMISSIONS the failure is final.
        enqueue_cancel(store, ORDERS[1])
        faults(emulator, {"feeds": {"partialErrorRate": 1}})
        for _ in range(outbox.MAX_SUBMISSIONS):
            outbox.send_pending(store, adapter, seller_id=SELLER)
            finish_feeds(emulator)
            outbox.poll_submitted(store, adapter)
        faults(emulator, None)
    assert state(store, f"cancel:{ORDERS[0]}") == ("done", None)
    assert amazon_status(emulator, ORDERS[0]) == "CANCELLED"
    feeds_sent = received_feeds(emulator)
    assert [f["fault"] for f in feeds_sent] == [
        "fatal",
        "messageErrors",
        None,
        *["messageErrors"] * outbox.MAX_SUBMISSIONS,
    ]
    last = actions(store)[1]
    assert (last.status, last.result_code) == ("failed", "5002")
    assert f"sent {outbox.MAX_SUBMISSIONS} times" in (last.result_message or "")
    assert amazon_status(emulator, ORDERS[1]) == "UNSHIPPED"
