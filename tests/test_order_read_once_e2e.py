"""A case does not read its order again at the start: it starts from the order read when it was
opened (ingestion's searchOrders with includedData, ingestion's getOrder of a return request's
order, or the operator's getOrder when opening by order id), kept in the case store. Only the
safety read right before acting stays. Counted at the emulator (its `/_emulator/calls` log), on
real parts: Prefect server, the emulator over HTTP, python-amazon-sp-api, SQLite case store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support import (
    E2E_TIME_SCALE,
    drive_case_runs,
    forget_flow_runs,
    order_json,
    reset_process_caches,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent

CHEAP = "113-0000041-0000041"  # cancel request, policy cancels: one safety read before acting
HIGH = "113-0000042-0000042"  # cancel request above the high-value line: waits for an operator
SHIPS = "113-0000043-0000043"  # the same, but the order ships while the case waits
PENDING = "113-0000044-0000044"  # cancel request on a pending order: nothing to do
RETURN = "113-0000045-0000045"  # return request: ingestion reads its order once (getOrder)
REFUSED = "113-0000046-0000046"  # parcel refused by the buyer
ADDRESS = "113-0000047-0000047"  # parcel undeliverable: address problem
MESSAGE = "113-0000048-0000048"  # cancel asked by message, opened by an operator by order id


@pytest.fixture
def emulator() -> Iterator[Any]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Any]:
    from henpin.mailcatcher import MailCatcher

    with MailCatcher(host="127.0.0.1", port=0) as catcher:
        yield catcher


@pytest.fixture
def henpin(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Any,
    mailbox: Any,
    prefect_server: Any,
) -> Iterator[str]:
    from henpin.runner import case_flows
    from henpin.store.db import migrate

    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    monkeypatch.setenv("HENPIN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HENPIN_SMTP_PORT", str(mailbox.port))
    forget_flow_runs()
    reset_process_caches()
    from henpin.context import store_url

    url = store_url()
    migrate(url)
    for name, flow in case_flows().items():
        if name not in ("ingest", "housekeeping"):
            flow.to_deployment(name="henpin").apply()
    yield url
    reset_process_caches()


def control(emulator: Any, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{emulator.url}/_emulator/{path}", timeout=10, **kw)
    r.raise_for_status()
    return r.json()


def get_order_calls(emulator: Any) -> Counter[str]:
    """getOrder calls Amazon (the emulator) answered, per order id."""
    calls = control(emulator, "GET", "calls")
    return Counter(
        c["path"].rstrip("/").split("/")[-1] for c in calls if c["operation"] == "getOrder"
    )


def shipped(order_id: str, package_status: tuple[str, str] | None = None) -> dict[str, Any]:
    order = order_json(order_id, status="SHIPPED", price="40.00", cancel_reason=None)
    order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": "buyer-test@marketplace.amazon.com"}
    if package_status:
        status, detailed = package_status
        order["packages"] = [
            {
                "packageReferenceId": "1",
                "packageStatus": {"status": status, "detailedStatus": detailed},
            }
        ]
    return order


def seed(emulator: Any) -> None:
    recent = datetime.now(UTC) - timedelta(minutes=5)
    control(
        emulator,
        "POST",
        "orders",
        json=[
            order_json(CHEAP, price="19.99"),
            order_json(HIGH, price="480.00"),
            order_json(SHIPS, price="999.00"),
            order_json(PENDING, status="PENDING", created=recent),
            shipped(RETURN),
            shipped(REFUSED, ("UNDELIVERABLE", "REJECTED_BY_BUYER")),
            shipped(ADDRESS, ("UNDELIVERABLE", "UNDELIVERABLE")),
            order_json(MESSAGE, cancel_reason=None),
        ],
    )
    control(
        emulator,
        "POST",
        "returns",
        json=[
            {
                "orderId": RETURN,
                "sku": "MUG-001",
                "quantity": 1,
                "returnReason": "CR-UNWANTED_ITEM",
                "returnRequestDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "inPolicy": False,  # left to the seller: the case waits for the operator
            }
        ],
    )
    control(emulator, "POST", "clock/advance", json={"seconds": 600})


def cases_by_order(url: str) -> dict[str, Any]:
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        return {c.order_id: c for c in s.scalars(select(Case))}


def settle_amazon(emulator: Any, rounds: int = 3) -> None:
    from flows.housekeeping import housekeeping

    for _ in range(rounds):
        housekeeping()
        control(emulator, "POST", "clock/advance", json={"seconds": 120})
        drive_case_runs()


def test_cases_start_from_the_order_read_when_they_were_opened(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from henpin.app.decide import decide
    from henpin.app.messages import open_cancel_by_message

    seed(emulator)
    ingest()
    at_opening = get_order_calls(emulator)
    # Ingestion read orders with one paged searchOrders; only a return request's order (the
    # returns report has no order data) was read with getOrder, once.
    assert at_opening == Counter({RETURN: 1})
    opened = open_cancel_by_message(
        henpin, MESSAGE, buyer_message="Please cancel my order", operator="alice"
    )
    assert get_order_calls(emulator)[MESSAGE] == 1  # the operator's open read it

    drive_case_runs()
    cases = cases_by_order(henpin)
    assert set(cases) == {CHEAP, HIGH, SHIPS, PENDING, RETURN, REFUSED, ADDRESS, MESSAGE}
    assert cases[PENDING].outcome == "nothing-to-do-pending"
    assert cases[CHEAP].state == "acting"  # policy cancels: queued after the safety read
    for order_id in (HIGH, SHIPS):
        assert cases[order_id].waiting_step is not None
    assert cases[RETURN].waiting_step == "authorize-return"
    assert cases[REFUSED].waiting_step == "refund-asked"
    assert cases[MESSAGE].id == opened.id and cases[MESSAGE].state != "closed"

    after_start = get_order_calls(emulator)
    # No case read its order again at its start: the only new getOrder is the cheap cancel's
    # safety read right before its cancellation was queued.
    assert after_start - at_opening == Counter({CHEAP: 1, MESSAGE: 1})
    # Each case read what the case store kept: the recommendation saw the order's value.
    assert cases[HIGH].recommendation["rule"] == "high-value"
    assert cases[HIGH].order_snapshot["value"]["amount"] == "480.00"

    # The safety read still catches an order that shipped while its case waited.
    control(
        emulator, "PATCH", f"orders/{SHIPS}", json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}}
    )
    result = decide(henpin, cases[SHIPS].id, choice="cancel", operator="alice", source="inbox")
    assert result.accepted
    drive_case_runs()
    settle_amazon(emulator)
    cases = cases_by_order(henpin)
    assert (cases[SHIPS].state, cases[SHIPS].outcome) == ("closed", "order-changed")
    assert (cases[CHEAP].state, cases[CHEAP].outcome) == ("closed", "cancelled-buyer-canceled")
    feeds = control(emulator, "GET", "feeds")
    cancelled = " ".join(f["document"] for f in feeds if "BuyerCanceled" in f["document"])
    assert CHEAP in cancelled and SHIPS not in cancelled

    total = get_order_calls(emulator)
    assert total[SHIPS] == 1  # the safety read, and nothing else
    per_case = sum(total.values()) / len(cases)
    assert per_case <= 1.0, (per_case, total)
    assert all(n <= 1 for n in total.values()), total


def test_a_case_without_a_kept_order_reads_it_from_amazon(henpin: str, emulator: Any) -> None:
    """A case whose store keeps no order (an older case, or one whose snapshot is empty) reads
    it from Amazon once at its start, as before."""
    from henpin.domain import CaseType
    from henpin.store.db import session_scope
    from henpin.store.models import Case
    from tasks.ingest import start_case_flow

    control(emulator, "POST", "orders", json=[order_json(HIGH, price="480.00")])
    with session_scope(henpin) as s:
        case = Case(
            type=CaseType.CANCEL_REQUEST.value,
            order_id=HIGH,
            marketplace_id="ATVPDKIKX0DER",
            state="open",
            order_snapshot={},
        )
        s.add(case)
        s.flush()
        case_id = case.id
    start_case_flow(case_id)
    drive_case_runs()
    assert get_order_calls(emulator) == Counter({HIGH: 1})
    case = cases_by_order(henpin)[HIGH]
    assert case.waiting_step is not None and case.recommendation["rule"] == "high-value"
    assert case.order_snapshot["order_id"] == HIGH  # the read is kept with the case
