"""`henpin policy replay`: past cases decided again under a proposed policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from henpin.app.replay import replay
from henpin.domain import CaseType, FulfillmentStatus, Money, Order, OrderItem
from henpin.policy import load_policy, parse_policy
from henpin.store.db import session_scope
from henpin.store.models import Case
from tasks.cases import open_case

REPO = Path(__file__).resolve().parent.parent


def order(order_id: str, price: str) -> Order:
    created = datetime.now(UTC) - timedelta(hours=5)
    return Order(
        order_id=order_id,
        marketplace_id="ATVPDKIKX0DER",
        created_time=created,
        last_updated_time=created,
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
        items=[
            OrderItem(
                order_item_id=f"{order_id}-1",
                sku="MUG-001",
                unit_price=Money(amount=Decimal(price), currency="USD"),
                cancel_requested_by_buyer=True,
            )
        ],
    )


def test_replay_shows_which_cases_a_proposed_policy_would_decide_differently(
    case_store: str,
) -> None:
    current = load_policy(REPO / "policies.yaml")
    for order_id, price in [("111-A", "150.00"), ("111-B", "250.00"), ("111-C", "20.00")]:
        o = order(order_id, price)
        case_id, _ = open_case(CaseType.CANCEL_REQUEST, o, url=case_store)
        advice = current.cancel_request.recommend(o, datetime.now(UTC))
        with session_scope(case_store) as s:
            case = s.get(Case, case_id)
            assert case is not None
            case.recommendation = advice.model_dump(mode="json")
    # The owner proposes a lower limit for USD: 100 instead of 200.
    text = (REPO / "policies.yaml").read_text().replace("USD: 200", "USD: 100")
    proposed = parse_policy(text.encode(), source="proposed.yaml")
    report = replay(case_store, proposed)
    assert report.cases == 3 and report.changed == 1
    changed = [r for r in report.rows if r.changed]
    assert [(r.order_id, r.was_action, r.would_action, r.would_rule) for r in changed] == [
        ("111-A", "cancel", "ask_operator", "high-value")
    ]
    assert report.to_operator_before == 1 and report.to_operator_after == 2
    assert report.value_changed == {"USD": Decimal("150.00")}
    # Under the policy in force nothing changes.
    assert replay(case_store, current).changed == 0
