"""The durable outbox on a real database (SQLite, and PostgreSQL when HENPIN_TEST_DATABASE_URL
is set) against the SP-API emulator over HTTP: batching, outcomes, idempotency, crashes."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from henpin import outbox
from henpin.amazon import (
    AmazonAdapter,
    AmazonThrottled,
    AmazonUnavailable,
    FeedProcessingStatus,
    FeedStatus,
)
from henpin.amazon.feed_xml import (
    AdjustmentReason,
    FeedBuildError,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
    read_feed,
)
from henpin.domain import (
    ActionKind,
    ActionStatus,
    CancelOrder,
    CancelReason,
    ClosesCase,
    FeedType,
)
from henpin.outbox import FeedState, OutboxKeyConflict
from henpin.settings import Settings
from henpin.store.db import session_scope
from henpin.store.models import Action, Feed

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
#: The demo seller's merchant token in NA (a feed's MerchantIdentifier for US orders). Without
#: `seller_id`, `send_pending` writes each region's own, as Henpin does.
SELLER = "A1HENPINDEMONA"


# --- the database ------------------------------------------------------------------------------


@pytest.fixture
def store(case_store: str) -> str:
    """A migrated case store: SQLite, and PostgreSQL when HENPIN_TEST_DATABASE_URL is set."""
    return case_store


def cancel(order_id: str, reason: CancelReason = CancelReason.BUYER_CANCELED) -> CancelOrder:
    return CancelOrder(order_id=order_id, reason=reason, order_item_ids=[item_id(order_id)])


def item_id(order_id: str) -> str:
    return f"{order_id[-7:]}01"


def enqueue_cancel(
    store: str,
    order_id: str,
    marketplace_id: str = US,
    case_id: int | None = None,
    closes_case: ClosesCase | None = None,
) -> int:
    return outbox.enqueue(
        store,
        key=f"cancel:{order_id}",
        case_id=case_id,
        kind=ActionKind.CANCEL_ORDER,
        feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
        marketplace_id=marketplace_id,
        payload=cancel(order_id),
        closes_case=closes_case,
    )


def actions(store: str) -> list[Action]:
    with session_scope(store) as s:
        return list(s.scalars(select(Action).order_by(Action.id)))


def feeds(store: str) -> list[Feed]:
    with session_scope(store) as s:
        return list(s.scalars(select(Feed).order_by(Feed.id)))


# --- enqueue -----------------------------------------------------------------------------------


def test_enqueue_stores_once_per_key(store: str) -> None:
    first = enqueue_cancel(store, "113-0000000-0000001", case_id=None)
    again = enqueue_cancel(store, "113-0000000-0000001")
    assert first == again
    (action,) = actions(store)
    assert action.status == ActionStatus.PENDING.value
    assert action.payload == {
        "order_id": "113-0000000-0000001",
        "reason": "BuyerCanceled",
        "order_item_ids": ["000000101"],
    }


def test_enqueue_refuses_a_key_reused_for_another_action(store: str) -> None:
    enqueue_cancel(store, "113-0000000-0000001")
    with pytest.raises(OutboxKeyConflict):
        outbox.enqueue(
            store,
            key="cancel:113-0000000-0000001",
            case_id=None,
            kind=ActionKind.CANCEL_ORDER,
            feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
            marketplace_id=US,
            payload=cancel("113-0000000-0000001", CancelReason.NO_INVENTORY),
        )


def test_enqueue_refuses_what_could_never_be_sent(store: str) -> None:
    with pytest.raises(FeedBuildError, match="order item ids"):
        outbox.enqueue(
            store,
            key="k1",
            case_id=None,
            kind=ActionKind.CANCEL_ORDER,
            feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
            marketplace_id=US,
            payload=CancelOrder(order_id="113-1"),
        )
    with pytest.raises(ValueError, match="goes in a"):
        outbox.enqueue(
            store,
            key="k2",
            case_id=None,
            kind=ActionKind.REFUND,
            feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
            marketplace_id=US,
            payload=cancel("113-1"),
        )
    with pytest.raises(TypeError):
        outbox.enqueue(
            store,
            key="k3",
            case_id=None,
            kind=ActionKind.REFUND,
            feed_type=FeedType.PAYMENT_ADJUSTMENT,
            marketplace_id=US,
            payload=cancel("113-1"),
        )
    assert actions(store) == []


def test_enqueue_racing_itself_stores_one_action(store: str) -> None:
    barrier = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def racer() -> None:
        barrier.wait()
        try:
            ids.append(enqueue_cancel(store, "113-0000000-0000009"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == 8
    assert len(actions(store)) == 1


# --- against the emulator ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    server_module = pytest.importorskip(
        "emulator.server", reason="the SP-API emulator (emulator/server.py) is not available"
    )
    with server_module.EmulatorServer(port=0) as server:
        yield server.url


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as control:
        control.post("/_emulator/reset").raise_for_status()
        yield control


class Crash(BaseException):
    """The process dies at this point (nothing after it runs, nothing catches it)."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class TestAdapter(AmazonAdapter):
    """The real adapter, which can die before or after createFeed, or answer as told."""

    __test__ = False

    def __init__(self, url: str, crash: str | None = None) -> None:
        clock = Clock()
        super().__init__(
            Settings(_env_file=None, emulator_url=url),  # type: ignore[call-arg]
            clock=clock.monotonic,
            sleep=clock.sleep,
            rng=random.Random(1),
        )
        self.crash = crash
        self.create_feed_failure: BaseException | None = None
        self.created: list[str] = []

    def upload_feed_document(self, marketplace_id: str, document: str) -> str:
        if self.crash == "before-upload":
            raise Crash
        return super().upload_feed_document(marketplace_id, document)

    def create_feed(self, feed_type: FeedType, marketplace_id: str, document_id: str) -> str:
        if self.crash == "before-create":
            raise Crash
        if self.create_feed_failure is not None:
            failure, self.create_feed_failure = self.create_feed_failure, None
            raise failure
        feed_id = super().create_feed(feed_type, marketplace_id, document_id)
        self.created.append(feed_id)
        if self.crash == "after-create":
            raise Crash
        return feed_id


def seed(control: httpx.Client, *order_ids: str, marketplace_id: str = US, **fields: Any) -> None:
    currency = {US: "USD", UK: "GBP"}[marketplace_id]
    when = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    orders = [
        {
            "orderId": order_id,
            "createdTime": when,
            "lastUpdatedTime": when,
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace_id},
            "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
            "orderItems": [
                {
                    "orderItemId": item_id(order_id),
                    "quantityOrdered": 1,
                    "product": {
                        "sellerSku": "KETTLE",
                        "price": {"unitPrice": {"amount": "30.00", "currencyCode": currency}},
                    },
                    "cancellation": {
                        "cancellationRequest": {
                            "requester": "BUYER",
                            "cancelReason": "Changed mind",
                        }
                    },
                }
            ],
            **fields,
        }
        for order_id in order_ids
    ]
    control.post("/_emulator/orders", json=orders).raise_for_status()


def finish_feeds(control: httpx.Client) -> None:
    """Let the emulator's simulated time run until every feed is processed."""
    control.post("/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()


def amazon_status(control: httpx.Client, order_id: str) -> str:
    status: str = control.get(f"/_emulator/orders/{order_id}").json()["fulfillment"][
        "fulfillmentStatus"
    ]
    return status


def received_feeds(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/_emulator/feeds").json())


def create_feed_calls(control: httpx.Client) -> int:
    return sum(1 for c in control.get("/_emulator/calls").json() if c["operation"] == "createFeed")


ORDERS = [f"113-5550000-000000{n}" for n in range(1, 6)]


@pytest.mark.e2e
def test_five_cancellations_go_out_as_one_feed_and_all_apply(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS)
    ids = [enqueue_cancel(store, o, case_id=None) for o in ORDERS]
    with TestAdapter(emulator_url) as adapter:
        (feed_id,) = outbox.send_pending(store, adapter)
        (feed,) = feeds(store)
        assert (feed.id, feed.status, feed.amazon_feed_id) == (
            feed_id,
            "submitted",
            adapter.created[0],
        )
        assert [(a.status, a.feed_id, a.message_id) for a in actions(store)] == [
            ("submitted", feed_id, n) for n in range(1, 6)
        ]
        assert outbox.poll_submitted(store, adapter) == []  # Amazon is still processing
        finish_feeds(emulator)
        finished = outbox.poll_submitted(store, adapter)
        assert outbox.send_pending(store, adapter) == []  # nothing left
    assert sorted(finished) == sorted(ids)
    assert {a.status for a in actions(store)} == {"done"}
    assert feeds(store)[0].status == "done" and "ProcessingReport" in (feeds(store)[0].report or "")
    (sent,) = received_feeds(emulator)
    feed_type, messages = read_feed(sent["document"])
    assert feed_type is FeedType.ORDER_ACKNOWLEDGEMENT
    assert [(m, p.order_id) for m, p in messages] == list(enumerate(ORDERS, start=1))
    assert {amazon_status(emulator, o) for o in ORDERS} == {"CANCELLED"}


@pytest.mark.e2e
def test_a_shipped_order_fails_its_own_action_only(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:3])
    for order_id in ORDERS[:3]:
        enqueue_cancel(store, order_id)
    # The parcel left the warehouse after the decision, before Amazon processed the feed.
    emulator.patch(
        f"/_emulator/orders/{ORDERS[1]}", json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}}
    ).raise_for_status()
    with TestAdapter(emulator_url) as adapter:
        outbox.send_pending(store, adapter)
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store, adapter)) == 3
    done, shipped, other = actions(store)
    assert (done.status, other.status) == ("done", "done")
    assert shipped.status == "failed" and shipped.result_code == "18028"
    assert "no longer be cancelled" in (shipped.result_message or "")
    assert [amazon_status(emulator, o) for o in ORDERS[:3]] == ["CANCELLED", "SHIPPED", "CANCELLED"]


@pytest.mark.e2e
def test_each_feed_type_and_marketplace_gets_its_own_feed(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, ORDERS[0], ORDERS[1])
    seed(emulator, "202-5550000-0000001", marketplace_id=UK)
    enqueue_cancel(store, ORDERS[0])
    enqueue_cancel(store, "202-5550000-0000001", marketplace_id=UK)
    refund = Refund(
        order_id=ORDERS[1],
        items=[
            RefundItem(
                order_item_id=item_id(ORDERS[1]),
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal("12.00"), currency="USD"
                    )
                ],
            )
        ],
    )
    outbox.enqueue(
        store,
        key="refund:1",
        case_id=None,
        kind=ActionKind.REFUND,
        feed_type=FeedType.PAYMENT_ADJUSTMENT,
        marketplace_id=US,
        payload=refund,
    )
    with TestAdapter(emulator_url) as adapter:
        assert len(outbox.send_pending(store, adapter)) == 3
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store, adapter)) == 3
    assert {a.status for a in actions(store)} == {"done"}
    assert sorted((f["feedType"], f["marketplaceIds"][0]) for f in received_feeds(emulator)) == [
        ("POST_ORDER_ACKNOWLEDGEMENT_DATA", UK),
        ("POST_ORDER_ACKNOWLEDGEMENT_DATA", US),
        ("POST_PAYMENT_ADJUSTMENT_DATA", US),
    ]
    (recorded,) = emulator.get(f"/_emulator/orders/{ORDERS[1]}/refunds").json()
    assert recorded["components"] == [
        {"type": "Principal", "amount": "12.00", "currencyCode": "USD"}
    ]


@pytest.mark.e2e
def test_more_actions_than_a_feed_holds_make_more_feeds(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS)
    for order_id in ORDERS:
        enqueue_cancel(store, order_id)
    with TestAdapter(emulator_url) as adapter:
        assert len(outbox.send_pending(store, adapter, max_messages=2)) == 3
    assert [len(read_feed(f["document"])[1]) for f in received_feeds(emulator)] == [2, 2, 1]


# --- nothing lost, nothing twice -------------------------------------------------------------


@pytest.mark.e2e
def test_a_crash_after_storing_the_feed_sends_that_same_feed_later(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    for order_id in ORDERS[:2]:
        enqueue_cancel(store, order_id)
    with TestAdapter(emulator_url, crash="before-upload") as dying, pytest.raises(Crash):
        outbox.send_pending(store, dying)
    (stored,) = feeds(store)
    assert stored.status == FeedState.PREPARING.value
    assert {a.status for a in actions(store)} == {"submitted"}
    with TestAdapter(emulator_url) as adapter:
        assert outbox.send_pending(store, adapter) == [stored.id]
        finish_feeds(emulator)
        outbox.poll_submitted(store, adapter)
    assert len(feeds(store)) == 1 and len(received_feeds(emulator)) == 1
    assert {a.status for a in actions(store)} == {"done"}


@pytest.mark.e2e
def test_a_crash_just_before_create_feed_is_resent_after_looking_at_amazon(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:3])
    for order_id in ORDERS[:2]:
        enqueue_cancel(store, order_id)
    with TestAdapter(emulator_url, crash="before-create") as dying, pytest.raises(Crash):
        outbox.send_pending(store, dying)
    assert feeds(store)[0].status == FeedState.SENDING.value
    with TestAdapter(emulator_url) as adapter:
        # Unresolved: the sender neither resends it nor starts another feed beside it.
        enqueue_cancel(store, ORDERS[2])
        assert outbox.send_pending(store, adapter) == []
        assert outbox.reconcile(store, adapter) == []  # too fresh to judge
        assert outbox.reconcile(store, adapter, settle=timedelta(0)) == [feeds(store)[0].id]
        assert adapter.created and create_feed_calls(emulator) == 1
        outbox.send_pending(store, adapter)  # now the third action goes
        finish_feeds(emulator)
        outbox.poll_submitted(store, adapter)
    assert {a.status for a in actions(store)} == {"done"}
    assert [len(read_feed(f["document"])[1]) for f in received_feeds(emulator)] == [2, 1]


@pytest.mark.e2e
def test_a_crash_after_create_feed_adopts_amazons_feed_and_never_resends(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    for order_id in ORDERS[:2]:
        enqueue_cancel(store, order_id)
    with TestAdapter(emulator_url, crash="after-create") as dying, pytest.raises(Crash):
        outbox.send_pending(store, dying)
    amazon_feed_id = dying.created[0]
    assert feeds(store)[0].status == FeedState.SENDING.value
    assert feeds(store)[0].amazon_feed_id is None
    with TestAdapter(emulator_url) as adapter:
        later = datetime.now(UTC) + outbox.SETTLE + timedelta(seconds=1)
        assert outbox.reconcile(store, adapter, now=later) == [feeds(store)[0].id]
        assert feeds(store)[0].amazon_feed_id == amazon_feed_id
        assert outbox.send_pending(store, adapter) == []
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store, adapter)) == 2
    assert create_feed_calls(emulator) == 1
    assert {a.status for a in actions(store)} == {"done"}
    assert {amazon_status(emulator, o) for o in ORDERS[:2]} == {"CANCELLED"}


@pytest.mark.e2e
def test_a_lost_create_feed_answer_is_reconciled_not_resent(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    enqueue_cancel(store, ORDERS[0])
    seed(emulator, ORDERS[0])
    with TestAdapter(emulator_url) as adapter:
        adapter.create_feed_failure = AmazonUnavailable(
            "timeout", operation="createFeed", may_have_applied=True
        )
        assert outbox.send_pending(store, adapter) == []
        assert feeds(store)[0].status == FeedState.SENDING.value
        assert outbox.send_pending(store, adapter) == []
        assert create_feed_calls(emulator) == 0
        outbox.reconcile(store, adapter, settle=timedelta(0))
        assert create_feed_calls(emulator) == 1
        assert feeds(store)[0].status == FeedState.SUBMITTED.value


@pytest.mark.e2e
def test_throttled_leaves_the_feed_preparing_and_sends_the_same_feed_next_time(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, ORDERS[0])
    enqueue_cancel(store, ORDERS[0])
    with TestAdapter(emulator_url) as adapter:
        adapter.create_feed_failure = AmazonThrottled("createFeed", 118.0)
        assert outbox.send_pending(store, adapter) == []
        (feed,) = feeds(store)
        assert feed.status == FeedState.PREPARING.value
        assert outbox.send_pending(store, adapter) == [feed.id]
    assert len(feeds(store)) == 1 and len(received_feeds(emulator)) == 1


@pytest.mark.e2e
def test_two_senders_at_once_send_one_feed(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS)
    for order_id in ORDERS:
        enqueue_cancel(store, order_id)
    barrier = threading.Barrier(3)
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def sender() -> None:
        with TestAdapter(emulator_url) as adapter:
            barrier.wait()
            try:
                results.append(outbox.send_pending(store, adapter))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 1]
    assert len(received_feeds(emulator)) == 1
    with session_scope(store) as s:
        assert s.scalar(select(func.count()).select_from(Feed)) == 1


# --- outcomes Amazon can report ------------------------------------------------------------------


class AnswersFeedStatus(AmazonAdapter):
    """An adapter whose getFeed and report answers are given (for FATAL, CANCELLED, garbage)."""

    __test__ = False

    def __init__(self, status: FeedProcessingStatus, report: str | None) -> None:
        super().__init__(Settings(_env_file=None, emulator_url="http://127.0.0.1:9"))  # type: ignore[call-arg]
        self.status, self.report = status, report

    def get_feed(self, feed_id: str, *, marketplace_id: str | None = None) -> FeedStatus:
        return FeedStatus(
            feed_id=feed_id,
            feed_type="POST_ORDER_ACKNOWLEDGEMENT_DATA",
            processing_status=self.status,
            created_time=datetime.now(UTC),
            result_feed_document_id="doc-1" if self.report is not None else None,
        )

    def get_feed_report(self, result_document_id: str, *, marketplace_id: str | None = None) -> str:
        assert self.report is not None
        return self.report


def submitted_feed(store: str) -> int:
    for order_id in ORDERS[:2]:
        enqueue_cancel(store, order_id)
    with session_scope(store) as s:
        feed = Feed(
            feed_type=FeedType.ORDER_ACKNOWLEDGEMENT.value,
            marketplace_id=US,
            status="submitted",
            amazon_feed_id="50001",
            document="<AmazonEnvelope/>",
        )
        s.add(feed)
        s.flush()
        for n, action in enumerate(s.scalars(select(Action).order_by(Action.id)), start=1):
            action.status, action.feed_id, action.message_id = "submitted", feed.id, n
        return feed.id


def test_a_fatal_feed_fails_its_actions_with_amazons_explanation(store: str) -> None:
    from emulator.processing_report import fatal_report

    submitted_feed(store)
    report = fatal_report("50001", "5000", "XML Parsing Error at Line 3, Column 7.")
    with AnswersFeedStatus(FeedProcessingStatus.FATAL, report) as adapter:
        assert len(outbox.poll_submitted(store, adapter)) == 2
    assert feeds(store)[0].status == "fatal"
    for action in actions(store):
        assert action.status == "failed" and action.result_code == "FEED_FATAL"
        assert "XML Parsing Error at Line 3" in (action.result_message or "")
        assert "re-read the order" in (action.result_message or "")


def test_a_feed_cancelled_at_amazon_fails_its_actions(store: str) -> None:
    submitted_feed(store)
    with AnswersFeedStatus(FeedProcessingStatus.CANCELLED, None) as adapter:
        assert len(outbox.poll_submitted(store, adapter)) == 2
    assert {(a.status, a.result_code) for a in actions(store)} == {("failed", "FEED_CANCELLED")}


def test_an_unreadable_report_needs_a_person_and_decides_nothing(store: str) -> None:
    submitted_feed(store)
    with AnswersFeedStatus(FeedProcessingStatus.DONE, "<html>gateway error</html>") as adapter:
        assert outbox.poll_submitted(store, adapter) == []
        assert outbox.poll_submitted(store, adapter) == []  # not polled again
    (feed,) = feeds(store)
    assert feed.status == FeedState.ATTENTION.value and feed.report == "<html>gateway error</html>"
    assert {a.status for a in actions(store)} == {"submitted"}


@pytest.mark.e2e
def test_while_create_feed_quota_refills_actions_keep_batching(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    enqueue_cancel(store, ORDERS[0])
    with TestAdapter(emulator_url) as adapter:
        # as after a 429 at the NA endpoint: ~120 s to wait
        adapter.limiter.throttled("createFeed", f"{emulator_url}/na")
        assert outbox.send_pending(store, adapter) == []
        enqueue_cancel(store, ORDERS[1])
        assert feeds(store) == [] and {a.status for a in actions(store)} == {"pending"}
    with TestAdapter(emulator_url) as later:  # a fresh quota: both go in one feed
        assert len(outbox.send_pending(store, later)) == 1
    assert [len(read_feed(f["document"])[1]) for f in received_feeds(emulator)] == [2]


def test_a_refused_upload_fails_the_actions_instead_of_retrying_forever(store: str) -> None:
    from henpin.amazon import AmazonRequestRejected

    class RefusesUploads(AnswersFeedStatus):
        __test__ = False

        def upload_feed_document(self, marketplace_id: str, document: str) -> str:
            raise AmazonRequestRejected(
                "feed document upload refused: HTTP 403", operation="upload", status=403
            )

    enqueue_cancel(store, ORDERS[0])
    with RefusesUploads(FeedProcessingStatus.DONE, None) as adapter:
        assert outbox.send_pending(store, adapter) == []
    assert feeds(store)[0].status == FeedState.REJECTED.value
    (action,) = actions(store)
    assert action.status == "failed" and "HTTP 403" in (action.result_message or "")


def test_a_feed_amazon_no_longer_knows_needs_a_person(store: str) -> None:
    from henpin.amazon import AmazonRequestRejected

    class ForgotFeed(AnswersFeedStatus):
        __test__ = False

        def get_feed(self, feed_id: str, *, marketplace_id: str | None = None) -> FeedStatus:
            raise AmazonRequestRejected(
                "Amazon rejected getFeed (NotFound)", operation="getFeed", status=404
            )

    submitted_feed(store)
    with ForgotFeed(FeedProcessingStatus.DONE, None) as adapter:
        assert outbox.poll_submitted(store, adapter) == []
    assert feeds(store)[0].status == FeedState.ATTENTION.value
    assert {a.status for a in actions(store)} == {"submitted"}


def test_the_settle_time_is_refused_below_one_create_feed_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reconciling a `sending` feed before its createFeed can have ended would find nothing at
    Amazon and send the feed again: HENPIN_OUTBOX_SETTLE_S must outlast the longest call."""
    from pydantic import ValidationError

    from henpin.amazon import RetryPolicy, worst_case_call_s
    from henpin.settings import CREATE_FEED_WORST_CASE_S, Settings

    assert worst_case_call_s(RetryPolicy()) == CREATE_FEED_WORST_CASE_S  # the adapter's numbers
    monkeypatch.setenv("HENPIN_OUTBOX_SETTLE_S", "60")
    assert Settings().outbox_settle_s == 60  # demo mode: the emulator answers at once
    live = {"LWA_APP_ID": "amzn1.application-oa2-client.x", "LWA_CLIENT_SECRET": "s"}
    for name, value in {**live, "SP_API_REFRESH_TOKEN_NA": "Atzr|x"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="HENPIN_OUTBOX_SETTLE_S is 60 s; against Amazon"):
        Settings()
    monkeypatch.setenv("HENPIN_OUTBOX_SETTLE_S", "484")
    assert Settings().outbox_settle_s == 484
    assert Settings.model_fields["outbox_settle_s"].default > CREATE_FEED_WORST_CASE_S
