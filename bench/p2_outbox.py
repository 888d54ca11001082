"""P2: quota efficiency of the outbox. N cancellations and N refunds in one marketplace, sent by
`henpin/outbox/` (one feed per type and marketplace) and by a one-feed-per-action baseline.

Both senders are the real outbox functions driven the way the housekeeper drives them (a round
every `ROUND_S` seconds: reconcile, send, poll), against the emulator with Amazon's usage plans.
Time is the emulator's simulated clock: the adapter's rate limiter reads it and "sleeps" by
advancing it, and rounds in which nothing can happen are skipped by advancing it too, so
twelve simulated hours of the baseline take a minute. The baseline is the same outbox with one
message per feed (`max_messages=1`), so the two differ only in batching.
"""

from __future__ import annotations

import math
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import US, Children, Emulator, log, start_emulator

ROUND_S = 5.0  # the housekeeper's default interval (HENPIN_OUTBOX_INTERVAL_S)
FEED_PROCESSING_S = 60.0  # the emulator: 30 s IN_QUEUE + 30 s IN_PROGRESS (Amazon: minutes)
CREATE_FEED = (0.0083, 15)  # createFeed usage plan: rate per second, burst
GET_FEED_DOCUMENT = (0.0222, 10)
SLEEP_OVERSHOOT_S = 0.01


def quota_bound_s(feeds: int) -> float:
    """The least simulated time until every feed's report can be read, with a full bucket at
    the start: createFeed k waits for its token, the feed processes, getFeedDocument k waits."""
    rate, burst = CREATE_FEED
    doc_rate, doc_burst = GET_FEED_DOCUMENT
    last = 0.0
    for k in range(feeds):
        created = max(0.0, (k - burst + 1) / rate)
        finished = created + FEED_PROCESSING_S
        report = max(finished, (k - doc_burst + 1) / doc_rate)
        last = max(last, report)
    return last


def orders(n: int, prefix: int) -> list[dict[str, Any]]:
    from emulator.demo import order_json

    return [
        order_json(f"{prefix:03d}-{2000000 + i:07d}-{i:07d}", price="30.00", cancel_reason=None)
        for i in range(n)
    ]


def enqueue_all(store: str, cancels: list[dict[str, Any]], refunds: list[dict[str, Any]]) -> int:
    from henpin import outbox
    from henpin.domain import (
        ActionKind,
        AdjustmentReason,
        CancelOrder,
        FeedType,
        PriceComponent,
        Refund,
        RefundComponent,
        RefundItem,
    )

    for o in cancels:
        outbox.enqueue(
            store,
            key=f"bench:cancel:{o['orderId']}",
            case_id=None,
            kind=ActionKind.CANCEL_ORDER,
            feed_type=FeedType.ORDER_ACKNOWLEDGEMENT,
            marketplace_id=US,
            payload=CancelOrder(
                order_id=o["orderId"], order_item_ids=[o["orderItems"][0]["orderItemId"]]
            ),
        )
    for o in refunds:
        item = o["orderItems"][0]["orderItemId"]
        refund = Refund(
            order_id=o["orderId"],
            items=[
                RefundItem(
                    order_item_id=item,
                    reason=AdjustmentReason.CUSTOMER_RETURN,
                    components=[
                        RefundComponent(
                            type=PriceComponent.PRINCIPAL, amount=Decimal("12.50"), currency="USD"
                        )
                    ],
                )
            ],
        )
        outbox.enqueue(
            store,
            key=f"bench:refund:{o['orderId']}",
            case_id=None,
            kind=ActionKind.REFUND,
            feed_type=FeedType.PAYMENT_ADJUSTMENT,
            marketplace_id=US,
            payload=refund,
        )
    return len(cancels) + len(refunds)


def unfinished(store: str) -> int:
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Action

    with session_scope(store) as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Action)
                .where(Action.status.not_in(["done", "failed"]))
            )
            or 0
        )


def failed(store: str) -> int:
    from sqlalchemy import func, select

    from henpin.store.db import session_scope
    from henpin.store.models import Action

    with session_scope(store) as s:
        return int(
            s.scalar(select(func.count()).select_from(Action).where(Action.status == "failed")) or 0
        )


def drive(emulator: Emulator, store: str, *, max_messages: int) -> dict[str, Any]:
    """Housekeeper rounds in simulated time until every action has Amazon's result."""
    from henpin import outbox
    from henpin.amazon import AmazonAdapter
    from henpin.settings import Settings

    settings = Settings(emulator_url=emulator.url, marketplaces=[US])
    # A real sleep always overshoots a little; an exact simulated one lands on the boundary
    # where floating point may leave Amazon's bucket a hair short of a token.
    adapter = AmazonAdapter(
        settings, clock=emulator.now, sleep=lambda s: emulator.advance(s + SLEEP_OVERSHOOT_S)
    )
    start = emulator.now()
    sent_at: dict[int, float] = {}  # Henpin feed id -> simulated time createFeed answered
    rounds = 0
    with adapter:
        while True:
            rounds += 1
            outbox.reconcile(store, adapter)
            for feed_id in outbox.send_pending(
                store,
                adapter,  # the demo seller's NA merchant token in each feed's header
                max_messages=max_messages,
                max_feeds_per_group=1000,
            ):
                sent_at[feed_id] = emulator.now()
            outbox.poll_submitted(store, adapter)
            now = emulator.now()
            for feed_id in _finished_feeds(store):
                sent_at.pop(feed_id, None)
            if unfinished(store) == 0:
                end = now
                break
            # The next round in which something can happen: a createFeed token (the sender waits
            # up to max_wait_s for one itself) or a submitted feed finishing at Amazon.
            events = [t + FEED_PROCESSING_S for t in sent_at.values()]
            if _pending(store):
                wait = adapter.quota_wait("createFeed", US) - adapter.retry.max_wait_s
                events.append(now + max(0.0, wait))
            next_event = min(events) if events else now + ROUND_S
            elapsed = max(now + ROUND_S, next_event) - start
            next_round = start + math.ceil(elapsed / ROUND_S) * ROUND_S
            emulator.advance(next_round - emulator.now())
    calls = emulator.calls()
    return {
        "time_s": round(end - start, 1),
        "create_feed_calls": sum(1 for c in calls if c["operation"] == "createFeed"),
        "throttled_429": sum(1 for c in calls if c["status"] == 429),
        "sp_api_calls": len(calls),
        "feeds": len(_finished_feeds(store)),
        "rounds": rounds,
        "failed_actions": failed(store),
    }


def _pending(store: str) -> bool:
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Action, Feed

    with session_scope(store) as s:
        return bool(
            s.scalar(select(Action.id).where(Action.status == "pending").limit(1))
            or s.scalar(select(Feed.id).where(Feed.status == "preparing").limit(1))
        )


def _finished_feeds(store: str) -> list[int]:
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Feed

    with session_scope(store) as s:
        return list(
            s.scalars(select(Feed.id).where(Feed.status.in_(["done", "fatal", "cancelled"])))
        )


def run(children: Children, n: int) -> dict[str, Any]:
    from henpin.outbox import DEFAULT_MAX_MESSAGES
    from henpin.store.db import migrate

    emulator = start_emulator(children, "p2-emulator", time_scale=1.0)
    results: dict[str, Any] = {"n_per_type": n, "round_s": ROUND_S}
    with tempfile.TemporaryDirectory(prefix="henpin-bench-p2-") as tmp:
        for label, max_messages in (("batch", DEFAULT_MAX_MESSAGES), ("baseline", 1)):
            emulator.reset()
            cancels, refunds = orders(n, 701), orders(n, 702)
            emulator.post_orders(cancels + refunds)
            store = f"sqlite:///{Path(tmp) / f'{label}.db'}"
            migrate(store)
            enqueue_all(store, cancels, refunds)
            log(f"P2 {label}: {2 * n} actions, {max_messages} message(s) per feed")
            results[label] = drive(emulator, store, max_messages=max_messages)
            log(f"P2 {label}: {results[label]}")
        batch_feeds = 2 * math.ceil(n / DEFAULT_MAX_MESSAGES)
        results["batch_size"] = DEFAULT_MAX_MESSAGES
        results["expected_feed_calls"] = batch_feeds
        results["quota_bound_s"] = round(quota_bound_s(batch_feeds), 1)
        results["baseline_quota_bound_s"] = round(quota_bound_s(2 * n), 1)
    children.stop("p2-emulator")
    return results
