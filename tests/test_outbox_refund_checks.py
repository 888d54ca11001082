"""The send-time refund check at the outbox's real boundaries (the emulator over HTTP through
python-amazon-sp-api, a real case store): a region whose login Amazon refuses holds back only its
own refunds, and Amazon's Finances quota never keeps every refund feed from going out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from emulator.auth import Credentials
from emulator.server import EmulatorServer
from henpin import outbox
from henpin.amazon import AmazonAdapter, AmazonAuthError, RetryPolicy
from henpin.amazon.ratelimit import OPERATION_QUOTAS, Quota, RateLimiter
from henpin.domain import (
    ActionKind,
    AdjustmentReason,
    FeedType,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.settings import EMULATOR_REFRESH_TOKENS, Settings
from henpin.store.db import session_scope
from henpin.store.models import Action
from tests.support import E2E_TIME_SCALE, order_json
from tests.test_inbox_support import waiting_case
from tests.test_outbox import Clock, enqueue_cancel

US, JP = "ATVPDKIKX0DER", "A1VC38T7YXB528"
FINANCES = "listFinancialEventsByOrderId"


def settings(url: str) -> Settings:
    return Settings(_env_file=None, emulator_url=url)  # type: ignore[call-arg]


def seed(url: str, *orders: dict[str, Any]) -> None:
    httpx.post(f"{url}/_emulator/orders", json=list(orders), timeout=10).raise_for_status()


def item_id(order_id: str) -> str:
    return f"{order_id[-7:]}01"


def refund(order_id: str, amount: str, currency: str) -> Refund:
    component = RefundComponent(type=PriceComponent.PRINCIPAL, amount=amount, currency=currency)
    return Refund(
        order_id=order_id,
        items=[
            RefundItem(
                order_item_id=item_id(order_id),
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[component],
            )
        ],
    )


def queue_case_refund(store: str, snapshot: dict[str, Any], amount: str) -> int:
    """A case's refund as `tasks.refunds.queue_refund` stores it (the case keeps the order)."""
    order_id, marketplace_id = snapshot["order_id"], snapshot["marketplace_id"]
    currency = snapshot["items"][0]["unit_price"]["currency"]
    case_id = waiting_case(
        store,
        order_id,
        timedelta(hours=1),
        type="return-request",
        marketplace_id=marketplace_id,
        order_snapshot=snapshot,
    )
    return outbox.enqueue(
        store,
        key=f"case-{case_id}:refund:return:{order_id}",
        case_id=case_id,
        kind=ActionKind.REFUND,
        feed_type=FeedType.PAYMENT_ADJUSTMENT,
        marketplace_id=marketplace_id,
        payload=refund(order_id, amount, currency),
    )


def snapshot(order_id: str, marketplace_id: str, price: str, currency: str) -> dict[str, Any]:
    """The order as a case keeps it (`henpin.domain.Order`)."""
    return {
        "order_id": order_id,
        "marketplace_id": marketplace_id,
        "created_time": "2026-03-02T08:15:00Z",
        "last_updated_time": "2026-03-03T08:15:00Z",
        "fulfillment_status": "SHIPPED",
        "items": [
            {
                "order_item_id": item_id(order_id),
                "quantity": 1,
                "unit_price": {"amount": price, "currency": currency},
            }
        ],
    }


def statuses(store: str) -> dict[int, str]:
    with session_scope(store) as s:
        return {a.id: a.status for a in s.query(Action).all()}


def received_feeds(url: str) -> list[dict[str, Any]]:
    feeds: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/feeds", timeout=10).json()
    return feeds


@pytest.fixture
def fe_refused() -> Iterator[EmulatorServer]:
    # The seller's FE authorization was revoked: Amazon no longer accepts the FE refresh token.
    revoked = Credentials(
        region_refresh_tokens={**EMULATOR_REFRESH_TOKENS, "FE": "Atzr|a-newer-fe-token"}
    )
    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE, credentials=revoked) as server:
        yield server


@pytest.mark.e2e
def test_a_refused_region_holds_back_its_refunds_only(
    case_store: str, fe_refused: EmulatorServer
) -> None:
    url = fe_refused.url
    us_order, jp_order = "113-6200000-0000001", "503-6200000-0000002"
    seed(
        url,
        order_json(us_order),
        order_json(jp_order, marketplace_id=JP, currency="JPY", price="3000", status="SHIPPED"),
    )
    jp_refund = queue_case_refund(case_store, snapshot(jp_order, JP, "3000", "JPY"), "1000")
    us_cancel = enqueue_cancel(case_store, us_order)
    with AmazonAdapter(settings(url)) as adapter:
        sent = outbox.send_pending(case_store, adapter)
        assert len(sent) == 1  # the US cancellation's feed; FE's refund waits
        assert adapter.region_auth.get("FE") == "refused"
        httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        outbox.poll_submitted(case_store, adapter)
    assert statuses(case_store) == {jp_refund: "pending", us_cancel: "done"}
    order = httpx.get(f"{url}/_emulator/orders/{us_order}", timeout=10).json()
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert [f["feedType"] for f in received_feeds(url)] == ["POST_ORDER_ACKNOWLEDGEMENT_DATA"]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as server:
        yield server


@pytest.mark.e2e
def test_a_refund_feed_goes_out_though_the_finances_quota_cannot_check_every_order(
    case_store: str, emulator: EmulatorServer
) -> None:
    # Eight case refunds of eight orders wait; Amazon's Finances quota (burst shrunk to 3 here;
    # its rate, 0.5 a second, is what Amazon's answers state and the adapter adopts) lets the
    # send-time check read three orders now. The feed carries those three refunds; the other
    # five stay pending for the next round, even though the quota frees a read every 2 s, well
    # within the adapter's wait: not a feed per read. The limiter's clock moves only when it
    # waits, so how long the calls take does not change what is read.
    url = emulator.url
    order_ids = [f"113-6300000-{n:07d}" for n in range(1, 9)]
    seed(url, *(order_json(o, price="10.00", status="SHIPPED") for o in order_ids))
    ids = [
        queue_case_refund(case_store, snapshot(o, US, "10.00", "USD"), "5.00") for o in order_ids
    ]
    quotas = {**OPERATION_QUOTAS, FINANCES: Quota(rate=0.5, burst=3)}
    clock = Clock()
    limiter = RateLimiter(quotas, clock=clock.monotonic, sleep=clock.sleep)
    retry = RetryPolicy(max_wait_s=60.0)
    with AmazonAdapter(settings(url), limiter=limiter, retry=retry) as adapter:
        sent = outbox.send_pending(case_store, adapter)
        assert len(sent) == 1
        httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        outbox.poll_submitted(case_store, adapter)
        reads = [c for c in calls(url) if c["operation"] == FINANCES]
        assert len(reads) == 3
    after = statuses(case_store)
    assert [after[i] for i in ids] == ["done"] * 3 + ["pending"] * 5
    feeds = received_feeds(url)
    assert [f["feedType"] for f in feeds] == ["POST_PAYMENT_ADJUSTMENT_DATA"]


def calls(url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/calls", timeout=10).json()
    return found


@pytest.mark.e2e
def test_a_finances_403_is_a_missing_role_not_a_refused_region(
    case_store: str, emulator: EmulatorServer
) -> None:
    # The application lacks the Finance and Accounting role: Amazon answers every Finances call
    # 403 Unauthorized while the region's other calls work.
    url = emulator.url
    refund_order, cancel_order = "113-6400000-0000001", "113-6400000-0000002"
    seed(url, order_json(refund_order, price="10.00", status="SHIPPED"), order_json(cancel_order))
    httpx.put(
        f"{url}/_emulator/faults",
        json={"seed": 1, "rules": [{"operations": [FINANCES], "rate": 1, "fault": "403"}]},
        timeout=10,
    ).raise_for_status()
    refund_id = queue_case_refund(case_store, snapshot(refund_order, US, "10.00", "USD"), "5.00")
    cancel_id = enqueue_cancel(case_store, cancel_order)
    with AmazonAdapter(settings(url)) as adapter:
        with pytest.raises(AmazonAuthError, match="Finance and Accounting"):
            adapter.refunds_for_order(refund_order, marketplace_id=US)
        assert adapter.region_auth.get("NA") != "refused"
        assert len(outbox.send_pending(case_store, adapter)) == 1  # the cancellation
        assert adapter.region_auth.get("NA") == "ok"
    assert statuses(case_store) == {refund_id: "pending", cancel_id: "submitted"}
    assert any(c["status"] == 403 for c in calls(url) if c["operation"] == FINANCES)
