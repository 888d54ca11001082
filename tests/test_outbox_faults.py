"""The outbox on a bad Amazon day (issue 4): cancellations, refunds and buyer messages sent
through the emulator's fault modes (429/500/503, dropped connections, malformed JSON, createFeed
applied then answered 500, FATAL feeds, messages failing in processing reports). Afterwards every
action is applied exactly once at Amazon: none lost, none twice.

A round is what the runner's housekeeper does (reconcile, send, poll), with Amazon's clock moved
two minutes between rounds; a person settles the messages Henpin could not tell were sent, by
looking at what Amazon kept (here: the emulator's list of sent messages).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from henpin import outbox
from henpin.amazon import AmazonAdapter, RetryPolicy
from henpin.domain import (
    ActionKind,
    AdjustmentReason,
    BuyerMessage,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.outbox import SendState
from henpin.settings import Settings
from tests.test_outbox import SELLER, US, Clock, actions, enqueue_cancel, item_id, seed

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

CANCELS = [f"113-6600000-00000{n:02d}" for n in range(24)]
REFUNDS = [f"113-6700000-00000{n:02d}" for n in range(10)]
MESSAGES_PER_FEED = 3  # small feeds: more createFeed calls, more faults
ROUND = 120.0  # seconds of Amazon's (and the adapter's) time between housekeeping rounds
FAULTS = {
    "seed": 20261127,
    "rules": [
        {"operations": ["createFeed"], "rate": 0.3, "fault": "500", "afterApply": True},
        {"operations": ["createFeed"], "rate": 0.1, "fault": "timeout", "delaySeconds": 1.5},
        {
            "operations": ["createConfirmDeliveryDetails"],
            "rate": 0.25,
            "fault": "500",
            "afterApply": True,
        },
        {"operations": ["getFeed", "getFeeds"], "rate": 0.15, "fault": "malformed_json"},
        {"operations": ["*"], "rate": 0.1, "fault": "429"},
        {"operations": ["*"], "rate": 0.1, "fault": "500"},
        {"operations": ["*"], "rate": 0.05, "fault": "503"},
    ],
    "feeds": {"fatalRate": 0.15, "partialErrorRate": 0.15},
}


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
        yield control


def refund(order_id: str) -> Refund:
    return Refund(
        order_id=order_id,
        items=[
            RefundItem(
                order_item_id=item_id(order_id),
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=Decimal("10.00"), currency="USD"
                    )
                ],
            )
        ],
    )


def queue_everything(store: str) -> None:
    for order_id in CANCELS:
        enqueue_cancel(store, order_id)
    for order_id in REFUNDS:
        outbox.enqueue(
            store,
            key=f"refund:{order_id}",
            case_id=None,
            kind=ActionKind.REFUND,
            marketplace_id=US,
            payload=refund(order_id),
        )
        outbox.enqueue(
            store,
            key=f"message:{order_id}",
            case_id=None,
            kind=ActionKind.SEND_MESSAGE,
            marketplace_id=US,
            payload=BuyerMessage(
                order_id=order_id,
                action="confirmDeliveryDetails",
                text="Your refund is on its way.",
            ),
        )


def settle_uncertain_messages(store: str, control: httpx.Client) -> int:
    """What an operator does: look at the order's messages at Amazon, then say sent or not."""
    kept = {m["orderId"] for m in control.get("/_emulator/messages").json()}
    settled = 0
    for action in actions(store):
        if action.result_code == SendState.UNCERTAIN.value:
            was_sent = action.payload["order_id"] in kept
            outbox.settle_uncertain(store, action.key, was_sent=was_sent, by="test operator")
            settled += 1
    return settled


def test_every_action_is_applied_exactly_once_through_faults(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *CANCELS)
    seed(
        emulator, *REFUNDS, fulfillment={"fulfillmentStatus": "SHIPPED", "fulfilledBy": "MERCHANT"}
    )
    queue_everything(store)
    emulator.put("/_emulator/faults", json=FAULTS).raise_for_status()
    clock = Clock()
    adapter = AmazonAdapter(
        Settings(_env_file=None, emulator_url=emulator_url),  # type: ignore[call-arg]
        clock=clock.monotonic,
        sleep=clock.sleep,
        rng=random.Random(4),
        timeout_s=1.0,  # a held request (1.5 s) times out; a real answer never takes that long
        retry=RetryPolicy(max_attempts=4),
    )
    rounds = settled = 0
    with adapter:
        while rounds < 40 and {a.status for a in actions(store)} != {"done"}:
            rounds += 1
            outbox.reconcile(store, adapter, settle=timedelta(0))
            outbox.send_pending(store, adapter, seller_id=SELLER, max_messages=MESSAGES_PER_FEED)
            emulator.post("/_emulator/clock/advance", json={"seconds": ROUND}).raise_for_status()
            clock.now += ROUND
            outbox.poll_submitted(store, adapter)
            settled += settle_uncertain_messages(store, emulator)
    stats: dict[str, Any] = emulator.get("/_emulator/faults").json()["injected"]
    fed = emulator.get("/_emulator/feeds").json()
    print(f"\nfaults: {rounds} rounds, {len(fed)} feeds, {settled} uncertain messages, {stats}")

    assert Counter(a.status for a in actions(store)) == {"done": len(CANCELS) + 2 * len(REFUNDS)}
    applied: Counter[tuple[str, str]] = Counter(
        (feed["feedType"], result["orderId"])
        for feed in fed
        for result in feed["results"]
        if result["resultCode"] == "Success"
    )
    assert applied == Counter(
        {("POST_ORDER_ACKNOWLEDGEMENT_DATA", o): 1 for o in CANCELS}
        | {("POST_PAYMENT_ADJUSTMENT_DATA", o): 1 for o in REFUNDS}
    )
    for order_id in CANCELS:
        order = emulator.get(f"/_emulator/orders/{order_id}").json()
        assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    for order_id in REFUNDS:
        assert len(emulator.get(f"/_emulator/orders/{order_id}/refunds").json()) == 1
    sent = Counter(m["orderId"] for m in emulator.get("/_emulator/messages").json())
    assert sent == dict.fromkeys(REFUNDS, 1)
    # The faults really happened: each kind the test is about was injected at least once.
    for kind in ("429", "500", "503", "timeout", "malformed_json", "feedFatal", "feedMessageError"):
        assert stats.get(kind, 0) > 0, (kind, stats)
    applied_then_failed = {
        c["operation"] for c in emulator.get("/_emulator/calls").json() if c.get("afterApply")
    }
    assert applied_then_failed == {"createFeed", "createConfirmDeliveryDetails"}
