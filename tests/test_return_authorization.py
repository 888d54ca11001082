"""What Henpin reads of Amazon's part in a return: the report's status and delivery date, the
recommendation for a return Amazon authorized, the 24-hour question and the refund clock
counted in the marketplace's local time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from henpin.amazon.returns_report import parse_returns_report
from henpin.cases import return_request as texts
from henpin.domain import AuthorizationStatus, CaseType, ReturnRequest, authorization_status_of
from henpin.policy import ReturnRequestPolicy, add_business_days
from tests.test_amazon_adapter_returns import HEADER, line
from tests.test_policy_returns import NOW, order, request

US, JP = "ATVPDKIKX0DER", "A1VC38T7YXB528"
TOKYO, LOS_ANGELES = ZoneInfo("Asia/Tokyo"), ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        ("Pending", AuthorizationStatus.PENDING),
        ("Pending Authorization", AuthorizationStatus.PENDING),
        ("Authorized", AuthorizationStatus.AUTHORIZED),
        ("approved", AuthorizationStatus.AUTHORIZED),
        ("Pending Refund", AuthorizationStatus.AUTHORIZED),
        ("Closed", AuthorizationStatus.CLOSED),
        ("Completed", AuthorizationStatus.CLOSED),
        ("", AuthorizationStatus.UNKNOWN),
        (None, AuthorizationStatus.UNKNOWN),
        ("Something new", AuthorizationStatus.UNKNOWN),
    ],
)
def test_report_status_words(status: str | None, meaning: AuthorizationStatus) -> None:
    assert authorization_status_of(status) is meaning


def test_sourced_status_words_are_kept_apart_from_henpins_tolerated_variants() -> None:
    from emulator.return_lifecycle import AUTHORIZED, CLOSED, PENDING
    from henpin.domain import _SELLER_CENTRAL_WORDS, _TOLERATED_VARIANTS

    sourced = {w for words in _SELLER_CENTRAL_WORDS.values() for w in words}
    tolerated = {w for words in _TOLERATED_VARIANTS.values() for w in words}
    assert not sourced & tolerated
    # Manage Returns' words (help 201725690) and the emulator's are sourced, not tolerated.
    assert {"pending authorization", "pending refund", "completed", "closed"} <= sourced
    assert {PENDING.lower(), AUTHORIZED.lower(), CLOSED.lower()} <= sourced
    assert "approved" in tolerated and "approved" not in sourced
    assert not hasattr(ReturnRequest, "needs_seller_answer")  # unused: the flows test the status


def test_report_status_and_delivery_date_are_read() -> None:
    text = "\n".join(
        [
            HEADER,
            line(
                "113-0000001-0000001", "A", "CR-DEFECTIVE", **{"Return request status": "Pending"}
            ),
            line(
                "113-0000002-0000002",
                "B",
                "CR-UNWANTED_ITEM",
                **{"Return request status": "Authorized", "Return delivery date": "05-Dec-2026"},
            ),
            line(
                "113-0000003-0000003",
                "C",
                "CR-UNWANTED_ITEM",
                **{
                    "Return request status": "Authorized",
                    "Return delivery date": "2026-12-04T23:00:00Z",
                    "In policy": "N",
                },
            ),
        ]
    )
    pending, delivered, exact = parse_returns_report(text, US)
    assert pending.authorization_status is AuthorizationStatus.PENDING
    assert pending.return_delivery_date is None
    assert delivered.authorization_status is AuthorizationStatus.AUTHORIZED
    # A day alone is that day in the marketplace's local time (where business days count).
    assert delivered.return_delivery_date == datetime(2026, 12, 5, tzinfo=LOS_ANGELES)
    assert exact.return_delivery_date == datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    assert exact.in_policy is False
    (in_japan,) = parse_returns_report(
        "\n".join(
            [
                HEADER,
                line(
                    "503-0000004-0000004",
                    "D",
                    "CR-DEFECTIVE",
                    **{"Return delivery date": "05-Dec-2026"},
                ),
            ]
        ),
        JP,
    )
    assert in_japan.return_delivery_date == datetime(2026, 12, 5, tzinfo=TOKYO)
    assert in_japan.return_delivery_date.astimezone(UTC).day == 4  # still Friday in UTC


def authorized(**changes: object) -> ReturnRequest:
    return request(**changes).model_copy(update={"status": "Authorized"})  # type: ignore[arg-type]


def test_a_return_amazon_authorized_is_never_recommended_for_decline() -> None:
    strict = ReturnRequestPolicy.model_validate(
        {"outside_window": "decline", "reasons": {"decline": ["CR-DEFECTIVE"], "authorize": []}}
    )
    assert strict.recommend(request(), order(), NOW).action == "decline"
    for ret in (authorized(), authorized(in_policy=False), authorized(comment="my lawyer")):
        advice = strict.recommend(ret, order(), NOW)
        assert (advice.action, advice.rule) == ("authorize", "amazon-authorized")
        assert advice.inputs["amazon_status"] == "Authorized"


def test_the_authorize_question_is_due_24_hours_after_the_request() -> None:
    policy = ReturnRequestPolicy()
    requested = NOW - timedelta(hours=20)
    ret = request(requested=requested, in_policy=False)
    advice = policy.recommend(ret, order(), NOW).model_dump(mode="json")
    question = texts.authorization_question(ret, order(), advice, policy)
    assert question.deadline_at == requested + timedelta(hours=24)


@pytest.mark.parametrize(
    ("received", "zone", "due"),
    [
        # Saturday 08:00 in Tokyo is Friday 23:00 UTC: in JST Monday is the first business
        # day and Tuesday the second (in UTC it would be Tuesday 23:00 UTC, a day later).
        (
            datetime(2026, 12, 4, 23, 0, tzinfo=UTC),
            "Asia/Tokyo",
            datetime(2026, 12, 8, 8, 0, tzinfo=TOKYO),
        ),
        (
            datetime(2026, 12, 4, 23, 0, tzinfo=UTC),
            "UTC",
            datetime(2026, 12, 8, 23, 0, tzinfo=UTC),
        ),
        # Friday 17:00 in Los Angeles is Saturday 01:00 UTC: Friday counts, due Tuesday 17:00.
        (
            datetime(2026, 12, 5, 1, 0, tzinfo=UTC),
            "America/Los_Angeles",
            datetime(2026, 12, 8, 17, 0, tzinfo=LOS_ANGELES),
        ),
        # Monday 08:00 in Tokyo is Sunday 23:00 UTC: due Wednesday 08:00 JST.
        (
            datetime(2026, 12, 6, 23, 0, tzinfo=UTC),
            "Asia/Tokyo",
            datetime(2026, 12, 9, 8, 0, tzinfo=TOKYO),
        ),
    ],
)
def test_refund_deadline_counts_business_days_in_the_marketplace_time_zone(
    received: datetime, zone: str, due: datetime
) -> None:
    answer = ReturnRequestPolicy().refund_deadline(received, zone)
    assert answer == due and answer.tzinfo == UTC


def test_business_days_follow_the_weekday_of_the_zone_given() -> None:
    friday_utc = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)
    saturday_tokyo = friday_utc.astimezone(TOKYO)
    assert add_business_days(friday_utc, 1).date() == date(2026, 12, 7)  # Monday (UTC)
    assert add_business_days(saturday_tokyo, 1).date() == date(2026, 12, 7)  # Monday (JST)
    assert add_business_days(saturday_tokyo, 1).astimezone(UTC) < add_business_days(friday_utc, 1)


# --- the returns report answers what it settles -------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from henpin.context import store_url
    from henpin.store.db import migrate
    from tests.support import reset_process_caches

    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    reset_process_caches()
    url = store_url()
    migrate(url)
    yield url
    reset_process_caches()


def waiting_case(url: str, ret: ReturnRequest, step: str) -> int:
    from henpin.store.db import session_scope
    from henpin.store.models import Case
    from tasks.cases import open_case

    case_id, _ = open_case(
        CaseType.RETURN_REQUEST, order(), url=url, details={"return": ret.model_dump(mode="json")}
    )
    with session_scope(url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.waiting_step = "waiting", step
    return case_id


def test_the_report_settles_the_authorize_and_receipt_questions(store: str) -> None:
    from henpin.decisions import find_decision
    from tasks.ingest import follow_return_request

    asked = request().model_copy(update={"rma_id": "D1RMA", "sku": "SKU-1", "status": "Pending"})
    case_id = waiting_case(store, asked, "authorize-return")
    elsewhere = asked.model_copy(update={"order_id": "113-0000000-0000000"})
    assert follow_return_request.fn(elsewhere) is False  # no case yet: ingestion opens one
    other_item = asked.model_copy(update={"sku": "SKU-2", "status": "Closed"})
    assert follow_return_request.fn(other_item) is True
    assert find_decision(store, case_id, "authorize-return") is None
    assert follow_return_request.fn(asked) is True  # still pending: nothing to answer
    assert find_decision(store, case_id, "authorize-return") is None

    closed = asked.model_copy(update={"status": "Closed"})
    follow_return_request.fn(closed)
    decided = find_decision(store, case_id, "authorize-return")
    assert decided is not None and (decided.choice, decided.operator) == (
        "closed_at_amazon",
        "amazon",
    )


def test_the_report_delivery_date_answers_the_wait_for_the_item(store: str) -> None:
    from henpin.decisions import find_decision
    from tasks.ingest import follow_return_request

    authorized = request().model_copy(update={"rma_id": "D2RMA", "status": "Authorized"})
    case_id = waiting_case(store, authorized, "item-received")
    follow_return_request.fn(authorized)
    assert find_decision(store, case_id, "item-received") is None
    delivered_at = datetime(2026, 12, 5, tzinfo=TOKYO)
    follow_return_request.fn(authorized.model_copy(update={"return_delivery_date": delivered_at}))
    decided = find_decision(store, case_id, "item-received")
    assert decided is not None and (decided.choice, decided.source) == ("received", "system")
    assert datetime.fromisoformat(decided.data["return_delivery_date"]) == delivered_at
