"""Return requests as Amazon runs them, end to end on real parts (Prefect server, emulator over
HTTP, python-amazon-sp-api, SQLite case store): a return Amazon authorized itself skips the
authorize question and waits for the item; an out-of-policy one asks, due 24 hours after the
request; the returns report's delivery date ends the wait and starts Amazon's refund clock,
counted in the marketplace's local time (JST for amazon.co.jp).
"""

# ruff: noqa: F811 - the e2e fixtures of test_case_types_e2e are imported and used by name

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support import drive_case_runs, order_json
from tests.test_case_types_e2e import (  # noqa: F401 - fixtures used by name
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

JP = "A1VC38T7YXB528"
TOKYO = ZoneInfo("Asia/Tokyo")


def events(url: str, case_id: int) -> list[Any]:
    from henpin.service import show_case

    detail = show_case(url, case_id)
    assert detail is not None
    return list(detail.timeline)


def decisions(url: str, case_id: int) -> list[Any]:
    return [e for e in events(url, case_id) if e.kind == "decision"]


def post_return(emulator: Any, order_id: str, **fields: Any) -> dict[str, Any]:
    answer = control(
        emulator,
        "POST",
        "returns",
        json=[
            {"orderId": order_id, "sku": "MUG-001", "returnReason": "CR-UNWANTED_ITEM", **fields}
        ],
    )
    (record,) = answer["returns"]
    return dict(record)


def post_shipped_order(
    emulator: Any, order_id: str, created: datetime, *, jp: bool = False
) -> None:
    """A shipped order made at `created`: 40.00 USD on amazon.com, or 4800 yen on amazon.co.jp."""
    money = {"marketplace_id": JP, "price": "4800", "currency": "JPY"} if jp else {"price": "40.00"}
    order = order_json(order_id, status="SHIPPED", cancel_reason=None, created=created, **money)
    control(emulator, "POST", "orders", json=[order])


def emulator_now(emulator: Any) -> datetime:
    return datetime.fromisoformat(control(emulator, "GET", "clock")["now"].replace("Z", "+00:00"))


@pytest.fixture(autouse=True)
def fresh_returns_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each poll asks Amazon for a new returns report. The adapter uses again a report made in
    the last five minutes by the wall clock; the emulator's clock here runs 60 times faster and
    is jumped forward, so every report would look that fresh. Polls five real minutes apart
    get a new one anyway: this stands for that wait."""
    monkeypatch.setattr("henpin.amazon.client.REPORT_REUSE", timedelta(days=-3650))


def poll_amazon(emulator: Any) -> None:
    """Ten simulated minutes pass (no returns report is reused), then one ingestion pass and the
    case runs it wakes."""
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest

    control(emulator, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    housekeeping()
    drive_case_runs()


def test_amazon_authorized_return_skips_the_question_and_the_report_ends_the_wait(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000031-0000031"
    control(emulator, "POST", "orders", json=[shipped_order(order_id, price="40.00")])
    # US, in policy: Amazon authorizes it at once. Amazon left it out of refund at first scan
    # (the buyer's return history), so the seller refunds it (tests/test_amazon_refunds_e2e.py
    # has the one Amazon refunds).
    record = post_return(emulator, order_id, refundAtFirstScan=False)
    assert (record["status"], record["authorizedBy"]) == ("Authorized", "amazon")

    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.state == "waiting" and case.waiting_step == "item-received"
    assert case.details["authorization"] == {
        "status": "authorized",
        "by": "amazon",
        "report": "Authorized",
    }
    assert case.recommendation["rule"] == "amazon-authorized"
    assert case.recommendation["action"] != "decline"
    timeline = events(henpin, case.id)
    assert any(e.kind == "authorized-by-amazon" for e in timeline)
    assert not any(e.data["step"] == "authorize-return" for e in decisions(henpin, case.id))

    # The buyer's parcel reaches the seller; the next returns report shows its delivery date.
    control(emulator, "POST", f"returns/{record['amazonRmaId']}/advance", json={"to": "delivered"})
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-condition"
    received = [e for e in decisions(henpin, case.id) if e.data["step"] == "item-received"]
    assert [(e.data["choice"], e.data["operator"]) for e in received] == [("received", "amazon")]
    assert case.details["received_from"] == "amazon-report"
    due = datetime.fromisoformat(case.details["refund_due"])
    delivered = datetime.fromisoformat(case.details["received_at"])
    assert due > delivered and case.details["refund_due_time_zone"] == "America/Los_Angeles"

    # Later steps do not push the refund deadline back.
    condition = case.question["fields"][0]["options"][0]
    answer(henpin, case, "inspected", condition=condition)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "confirm-refund"
    assert case.deadline.replace(tzinfo=UTC) == due.astimezone(UTC)
    answer(henpin, case, "refund_proposed")
    settle_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "refunded-in-full"


def test_out_of_policy_return_asks_with_a_deadline_24_hours_from_the_request(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000032-0000032"
    control(emulator, "POST", "orders", json=[shipped_order(order_id, price="40.00")])
    record = post_return(emulator, order_id, inPolicy=False)
    assert record["status"] == "Pending" and record["authorizedAt"] is None

    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.state == "waiting" and case.waiting_step == "authorize-return"
    requested = datetime.fromisoformat(case.details["return"]["requested_at"])
    # Amazon's due time is kept as it is; the question's own deadline is that time, or later
    # when it came too close to now (a question stays open `operator.minimum_hours`): the
    # report gives only the request's day, so late in the marketplace's day it is later.
    amazon_due = datetime.fromisoformat(case.question["deadline_at"])
    assert amazon_due == requested + timedelta(hours=24)
    assert case.deadline.replace(tzinfo=UTC) >= amazon_due
    assert case.recommendation["rule"] == "outside-return-window"

    # The seller authorizes in Seller Central; the next report says so and the question is
    # answered from it: the case goes on to wait for the item.
    control(emulator, "POST", f"returns/{record['amazonRmaId']}/authorize")
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-received"
    decided = [e for e in decisions(henpin, case.id) if e.data["step"] == "authorize-return"]
    assert [(e.data["choice"], e.data["operator"]) for e in decided] == [("authorized", "amazon")]


def next_saturday_morning_in_tokyo(now: datetime) -> datetime:
    """08:00 JST on the first Saturday after `now`: still Friday in UTC."""
    day: date = (now.astimezone(TOKYO) + timedelta(days=1)).date()
    while day.weekday() != 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(8, 0), tzinfo=TOKYO)


def test_jp_refund_deadline_is_counted_in_jst_from_the_delivery_date(
    henpin: str, emulator: Any
) -> None:
    order_id = "503-0000033-0000033"
    now = emulator_now(emulator)
    delivered = next_saturday_morning_in_tokyo(now)
    # Amazon's clock moves on to that Saturday, an hour after the parcel arrived.
    skip = (delivered - now + timedelta(hours=1)).total_seconds()
    control(emulator, "POST", "clock/advance", json={"seconds": skip})
    assert delivered.astimezone(UTC).weekday() == 4  # a Japanese Saturday morning: UTC Friday
    post_shipped_order(emulator, order_id, delivered - timedelta(days=6), jp=True)
    control(emulator, "PUT", "return-settings", json={"marketplaces": {JP: "authorizeAll"}})
    post_return(
        emulator,
        order_id,
        returnRequestDate=(delivered - timedelta(days=2)).isoformat(),
        returnDeliveryDate=delivered.isoformat(),
    )

    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-condition"  # authorized by Amazon, already delivered
    due = datetime.fromisoformat(case.details["refund_due"])
    # The report dates the delivery by Tokyo's calendar (Saturday); counted in JST, Monday is
    # the first business day and Tuesday the second: due at the start of Tuesday in Tokyo
    # (Monday 15:00 UTC). Counted in UTC it would come 9 hours later.
    tuesday = datetime.combine(delivered.date() + timedelta(days=3), time(0), tzinfo=TOKYO)
    assert due == tuesday and tuesday.weekday() == 1
    assert case.details["refund_due_time_zone"] == "Asia/Tokyo"


def waiting_events(url: str, case_id: int, step: str) -> list[Any]:
    return [e for e in events(url, case_id) if e.kind == "waiting" and e.data["step"] == step]


def test_request_seen_after_amazons_24_hours_still_asks_a_person(
    henpin: str, emulator: Any
) -> None:
    from tasks.sweep import apply_passed_deadlines

    order_id = "113-0000034-0000034"
    now = emulator_now(emulator)
    los_angeles = ZoneInfo("America/Los_Angeles")
    # Late in its day (23:30 in Los Angeles), two days ago: the flat file gives only the day,
    # so Amazon's 24 hours are long past when Henpin first sees it.
    late = datetime.combine(
        (now.astimezone(los_angeles) - timedelta(days=2)).date(), time(23, 30), tzinfo=los_angeles
    )
    post_shipped_order(emulator, order_id, late - timedelta(days=3))
    post_return(emulator, order_id, inPolicy=False, returnRequestDate=late.isoformat())

    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.state == "waiting" and case.waiting_step == "authorize-return"
    # The day is read in the marketplace's time, not UTC: from 00:00 in Los Angeles.
    requested = datetime.fromisoformat(case.details["return"]["requested_at"])
    assert requested == datetime.combine(late.date(), time(0), tzinfo=los_angeles)
    asked = datetime.now(UTC)
    assert case.deadline.replace(tzinfo=UTC) > asked + timedelta(hours=3)
    (waiting,) = waiting_events(henpin, case.id, "authorize-return")
    assert waiting.data["overdue_at_amazon"] is True
    assert datetime.fromisoformat(waiting.data["amazon_due"]) == requested + timedelta(hours=24)
    assert "overdue at Amazon" in waiting.message

    # The next sweep does not answer it: a person still has the minimum time.
    apply_passed_deadlines.fn(now=asked + timedelta(minutes=5))
    drive_case_runs()
    case = the_case(henpin, order_id, "return-request")
    assert case.state == "waiting" and case.waiting_step == "authorize-return"


def test_refund_question_asked_after_amazons_due_time_is_overdue_but_never_closes_unrefunded(
    henpin: str, emulator: Any
) -> None:
    from tasks.sweep import apply_passed_deadlines

    order_id = "113-0000035-0000035"
    now = emulator_now(emulator)
    post_shipped_order(emulator, order_id, now - timedelta(days=12))
    # Authorized by Amazon, delivered to the seller five days ago: Amazon's two business days
    # are over before anyone inspects the item.
    post_return(
        emulator,
        order_id,
        refundAtFirstScan=False,
        returnRequestDate=(now - timedelta(days=6)).isoformat(),
        returnDeliveryDate=(now - timedelta(days=5)).isoformat(),
    )
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-condition"
    due = datetime.fromisoformat(case.details["refund_due"])
    answer(henpin, case, "inspected", condition=case.question["fields"][0]["options"][0])

    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "confirm-refund"
    asked = datetime.now(UTC)
    assert due < asked < case.deadline.replace(tzinfo=UTC)
    assert case.timeout_choice == "refund_proposed"
    (waiting,) = waiting_events(henpin, case.id, "confirm-refund")
    assert waiting.data["overdue_at_amazon"] is True
    assert datetime.fromisoformat(waiting.data["amazon_due"]) == due.astimezone(UTC)

    # Nobody answers, even past Henpin's own deadline: the owed refund goes out.
    apply_passed_deadlines.fn(now=asked + timedelta(minutes=5))
    drive_case_runs()
    assert the_case(henpin, order_id, "return-request").waiting_step == "confirm-refund"
    apply_passed_deadlines.fn(now=case.deadline.replace(tzinfo=UTC) + timedelta(minutes=1))
    drive_case_runs()
    settle_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "refunded-in-full"


def test_an_fe_case_reads_its_order_only_in_the_fe_region(henpin: str, emulator: Any) -> None:
    from flows.ingest import ingest
    from tasks.orders import adapter

    order_id = "503-0000036-0000036"
    order = order_json(order_id, marketplace_id=JP, price="4800", currency="JPY")
    control(emulator, "POST", "orders", json=[order])
    ingest()
    # A fresh worker process: the adapter has not seen the order (no region remembered).
    adapter().close()
    adapter.cache_clear()
    drive_case_runs()
    settle_amazon(emulator)
    case = the_case(henpin, order_id, "cancel-request")
    assert case.marketplace_id == JP and case.state == "closed"
    reads = [c for c in control(emulator, "GET", "calls") if c["operation"] == "getOrder"]
    # The re-read right before cancelling (the case starts from the order ingestion read).
    assert len(reads) == 1
    assert {(c["region"], c["tokenRegion"]) for c in reads} == {("FE", "FE")}


def asked_to_authorize(henpin: str, emulator: Any, order_id: str) -> dict[str, Any]:
    """An out-of-policy return of a 40.00 USD order, whose case asks the seller to authorize."""
    control(emulator, "POST", "orders", json=[shipped_order(order_id, price="40.00")])
    record = post_return(emulator, order_id, inPolicy=False)
    poll_amazon(emulator)
    assert the_case(henpin, order_id, "return-request").waiting_step == "authorize-return"
    return record


def test_a_request_amazon_closed_after_its_own_refund_closes_refunded_by_amazon(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000038-0000038"
    record = asked_to_authorize(henpin, emulator, order_id)

    # Amazon refunds without a return (a returnless refund) and the request is closed.
    item_id = record["orderItemId"]
    control(
        emulator,
        "POST",
        f"orders/{order_id}/refunds",
        json={
            "reason": "returnless refund",
            "items": [{"orderItemId": item_id, "components": {"Principal": "40.00"}}],
        },
    )
    control(emulator, "POST", f"returns/{record['amazonRmaId']}/close", json={"reason": "refunded"})
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "refunded-by-amazon"
    closing = [e for e in events(henpin, case.id) if e.kind == "closed"]
    assert "Amazon refunded 40.00 USD" in closing[-1].message


def test_a_request_amazon_closed_without_a_refund_is_not_declined(
    henpin: str, emulator: Any
) -> None:
    order_id = "113-0000039-0000039"
    record = asked_to_authorize(henpin, emulator, order_id)

    # Nobody acted: Amazon closes the request 50 days after it was made.
    control(emulator, "POST", "clock/advance", json={"seconds": 51 * 86400})
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.outcome == "return-closed-at-amazon"
    decided = [e for e in decisions(henpin, case.id) if e.data["step"] == "authorize-return"]
    assert [(e.data["choice"], e.data["operator"]) for e in decided] == [
        ("closed_at_amazon", "amazon")
    ]
    assert record["amazonRmaId"]


def test_an_inspection_nobody_answers_flags_the_case_and_asks_again(
    henpin: str, emulator: Any
) -> None:
    from tasks.sweep import apply_passed_deadlines

    order_id = "113-0000040-0000040"
    now = emulator_now(emulator)
    post_shipped_order(emulator, order_id, now - timedelta(days=5))
    post_return(
        emulator,
        order_id,
        refundAtFirstScan=False,
        returnRequestDate=(now - timedelta(days=3)).isoformat(),
        returnDeliveryDate=(now - timedelta(days=1)).isoformat(),
    )
    poll_amazon(emulator)
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "item-condition"

    # Nobody records the condition in time: the refund is owed, so the case is not closed.
    apply_passed_deadlines.fn(now=case.deadline.replace(tzinfo=UTC) + timedelta(minutes=1))
    drive_case_runs()
    case = the_case(henpin, order_id, "return-request")
    assert case.state == "waiting" and case.outcome is None
    assert case.waiting_step == "item-condition-overdue-1"
    assert case.needs_attention and "inspect it now" in case.needs_attention

    answer(henpin, case, "inspected", condition=case.question["fields"][0]["options"][0])
    case = the_case(henpin, order_id, "return-request")
    assert case.waiting_step == "confirm-refund" and case.needs_attention is None
