"""Never refund twice, end to end on real parts (Prefect server, the emulator over HTTP through
python-amazon-sp-api, SQLite case store): Amazon refunding first, in full or in part, before the
refund is queued or while it waits in the outbox, and two cases of one order refunding together.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.test_case_types_e2e import (  # noqa: F401 - fixtures shared with the other case types
    answer,
    control,
    emulator,
    henpin,
    mailbox,
    settle_amazon,
    shipped_order,
    the_case,
)

pytestmark = [pytest.mark.e2e]


@dataclass
class Stack:
    """Henpin's case store URL and the emulator it talks to (Prefect server running)."""

    url: str
    amazon: Any


@pytest.fixture
def stack(henpin: str, emulator: Any, prefect_server: Any) -> Stack:  # noqa: F811
    return Stack(henpin, emulator)


REFUSED = {
    "packageReferenceId": "1",
    "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"},
}


def refused_case_waiting_for_the_refund(url: str, amazon: Any, order_id: str) -> Any:
    """A refused delivery of an 8.00 USD item whose buyer asked for the refund: the case now
    asks the operator to confirm the refund."""
    from flows.ingest import ingest

    control(amazon, "POST", "orders", json=[shipped_order(order_id, price="8.00", package=REFUSED)])
    ingest()
    from tests.support import drive_case_runs

    drive_case_runs()
    case = the_case(url, order_id, "refused-delivery")
    answer(url, case, "buyer_asked")
    return the_case(url, order_id, "refused-delivery")


def amazon_refunds(amazon: Any, order_id: str, reason: str, principal: str) -> None:
    item = f"{order_id[-7:]}01"
    control(
        amazon,
        "POST",
        f"orders/{order_id}/refunds",
        json={
            "reason": reason,
            "items": [{"orderItemId": item, "components": {"Principal": principal}}],
        },
    )


def payment_feeds(amazon: Any, order_id: str) -> list[dict[str, Any]]:
    feeds = control(amazon, "GET", "feeds")
    return [
        f
        for f in feeds
        if f["feedType"] == "POST_PAYMENT_ADJUSTMENT_DATA" and order_id in (f["document"] or "")
    ]


def principal_refunded(amazon: Any, order_id: str) -> Decimal:
    return sum(
        (
            Decimal(c["amount"])
            for r in control(amazon, "GET", f"orders/{order_id}/refunds")
            for c in r["components"]
            if c["type"] == "Principal"
        ),
        Decimal(0),
    )


def test_amazon_refunded_first_so_henpin_sends_nothing(stack: Stack) -> None:
    url, amazon = stack.url, stack.amazon
    from henpin.app.cases import show_case

    order_id = "113-0000041-0000041"
    case = refused_case_waiting_for_the_refund(url, amazon, order_id)
    amazon_refunds(amazon, order_id, "missed refund window", "8.00")
    answer(url, case, "refund_proposed")
    settle_amazon(amazon, rounds=2)
    detail = show_case(url, case.id)
    assert detail is not None and detail.outcome == "refunded-by-amazon"
    closing = [e for e in detail.timeline if e.kind == "closed"][-1]
    assert "Amazon already refunded 8.00 USD" in closing.message
    assert payment_feeds(amazon, order_id) == []  # nothing sent
    assert principal_refunded(amazon, order_id) == Decimal("8.00")


def test_partial_amazon_refund_leaves_henpin_only_the_rest(stack: Stack) -> None:
    url, amazon = stack.url, stack.amazon
    from henpin.app.cases import show_case

    order_id = "113-0000042-0000042"
    case = refused_case_waiting_for_the_refund(url, amazon, order_id)
    amazon_refunds(amazon, order_id, "refund at first scan", "3.00")
    answer(url, case, "refund_proposed")
    settle_amazon(amazon)
    detail = show_case(url, case.id)
    assert detail is not None and detail.outcome in ("refunded-in-full", "refunded-partly")
    [cut] = [e for e in detail.timeline if e.kind == "refund-reduced"]
    assert "from 8.00 USD to 5.00 USD" in cut.message and "3.00 USD" in cut.message
    [feed] = payment_feeds(amazon, order_id)
    assert '<Amount currency="USD">5.00</Amount>' in feed["document"]
    assert principal_refunded(amazon, order_id) == Decimal("8.00")  # 3.00 + 5.00, not 11.00


def test_amazon_refund_while_the_refund_waits_is_caught_before_the_feed(stack: Stack) -> None:
    url, amazon = stack.url, stack.amazon
    from henpin.app.cases import show_case
    from henpin.store.db import session_scope
    from henpin.store.models import Action

    order_id = "113-0000043-0000043"
    case = refused_case_waiting_for_the_refund(url, amazon, order_id)
    answer(url, case, "refund_proposed")  # queued in the outbox, not sent yet
    amazon_refunds(amazon, order_id, "A-to-z claim", "8.00")
    settle_amazon(amazon, rounds=3)
    with session_scope(url) as s:
        [held] = [a for a in s.query(Action).all() if a.case_id == case.id]
        assert (held.status, held.result_code) == ("failed", "HENPIN_ALREADY_REFUNDED")
    detail = show_case(url, case.id)
    assert detail is not None and detail.outcome == "refunded-by-amazon"
    assert payment_feeds(amazon, order_id) == []
    assert principal_refunded(amazon, order_id) == Decimal("8.00")


def test_two_cases_of_one_order_never_refund_more_than_was_paid(stack: Stack) -> None:
    url, amazon = stack.url, stack.amazon
    from datetime import UTC, datetime, timedelta

    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from tests.support import drive_case_runs

    order_id = "113-0000044-0000044"
    address = {
        "packageReferenceId": "1",
        "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
    }
    control(
        amazon, "POST", "orders", json=[shipped_order(order_id, price="40.00", package=address)]
    )
    control(
        amazon,
        "POST",
        "returns",
        json=[
            {
                "orderId": order_id,
                "sku": "MUG-001",
                "returnReason": "CR-UNWANTED_ITEM",
                "returnRequestDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "inPolicy": False,  # left to the seller, who authorizes it below
            }
        ],
    )
    control(amazon, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    drive_case_runs()
    settle_amazon(amazon, rounds=2)  # the address case's message to the buyer goes out
    returned = the_case(url, order_id, "return-request")
    answer(url, returned, "authorized")
    answer(url, the_case(url, order_id, "return-request"), "received")
    returned = the_case(url, order_id, "return-request")
    answer(url, returned, "inspected", condition=returned.question["fields"][0]["options"][0])
    answer(
        url,
        the_case(url, order_id, "return-request"),
        "refund_other_amount",
        amount="30.00",
        note="scratched",
    )
    address_case = the_case(url, order_id, "address-error")
    answer(url, address_case, "address_confirmed", confirmed_address="1 Test Street")
    answer(
        url,
        the_case(url, order_id, "address-error"),
        "partial_refund",
        refund_amount="25.00",
        note="goodwill",
    )
    settle_amazon(amazon)
    first = show_case(url, returned.id)
    second = show_case(url, address_case.id)
    assert first is not None and first.outcome == "refunded-partly"
    assert second is not None and second.outcome == "refunded-partly"
    [cut] = [e for e in second.timeline if e.kind == "refund-reduced"]
    assert "from 25.00 USD to 10.00 USD" in cut.message
    assert principal_refunded(amazon, order_id) == Decimal("40.00")  # not 55.00


def test_a_refund_held_back_at_every_check_waits_flagged_for_a_person(stack: Stack) -> None:
    """The send-time check keeps the refund back each time (here the order the case keeps shows
    5.00 USD paid while Amazon's order, read by the flow, shows 8.00): after three checks the
    case is not closed as Amazon's refusal (nothing reached Amazon) but flagged with the figures
    and left to an operator, who can check again or escalate."""
    url, amazon = stack.url, stack.amazon
    from henpin.app.cases import show_case
    from henpin.store.db import session_scope
    from henpin.store.models import Action, Case

    order_id = "113-0000045-0000045"
    case = refused_case_waiting_for_the_refund(url, amazon, order_id)
    with session_scope(url) as s:
        kept = s.get(Case, case.id)
        assert kept is not None
        snapshot = dict(kept.order_snapshot)
        snapshot["items"] = [
            {**item, "unit_price": {"amount": "5.00", "currency": "USD"}}
            for item in snapshot["items"]
        ]
        kept.order_snapshot = snapshot
    answer(url, case, "refund_proposed")  # 8.00 USD, what the flow's order shows
    settle_amazon(amazon, rounds=8)

    case = the_case(url, order_id, "refused-delivery")
    assert case.state != "closed" and case.outcome is None
    assert case.waiting_step == "refund-held"
    assert case.needs_attention is not None
    assert "3 checks" in case.needs_attention and "HENPIN_WOULD_OVERPAY" in case.needs_attention
    assert "8.00 USD" in case.needs_attention and "5.00 USD" in case.needs_attention
    with session_scope(url) as s:
        held = [a for a in s.query(Action).all() if a.case_id == case.id]
        assert [a.result_code for a in held] == ["HENPIN_WOULD_OVERPAY"] * 3
    assert payment_feeds(amazon, order_id) == []  # nothing ever reached Amazon

    answer(url, case, "escalate", note="refunding 5.00 by hand in Seller Central")
    detail = show_case(url, case.id)
    assert detail is not None and detail.outcome == "escalated"
    assert detail.needs_attention is None
    closing = [e for e in detail.timeline if e.kind == "closed"][-1]
    assert "did not send it to Amazon" in closing.message and "by hand" in closing.message
