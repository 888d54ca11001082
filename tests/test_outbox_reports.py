"""Amazon's processing report believed only when it adds up; Amazon's own result codes; a
person's answer for a feed whose report did not account for its actions. Real case store
(SQLite and PostgreSQL), the real adapter (python-amazon-sp-api) over HTTP to the emulator, whose
fault modes make the reports that do not add up."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin import outbox
from henpin.amazon.result_codes import CodeMeaning, meaning
from henpin.outbox import FeedAnswer, FeedState
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event, Feed
from tests.test_outbox import (
    ORDERS,
    SELLER,
    TestAdapter,
    amazon_status,
    enqueue_cancel,
    finish_feeds,
    seed,
)


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


def faults(control: httpx.Client, feeds: dict[str, Any] | None) -> None:
    if feeds is None:
        control.delete("/_emulator/faults").raise_for_status()
    else:
        control.put("/_emulator/faults", json={"seed": 1, "feeds": feeds}).raise_for_status()


def shipped(control: httpx.Client, order_id: str) -> None:
    control.patch(
        f"/_emulator/orders/{order_id}", json={"fulfillment": {"fulfillmentStatus": "SHIPPED"}}
    ).raise_for_status()


def open_case(store: str, order_id: str) -> int:
    with session_scope(store) as s:
        case = Case(
            type="cancel-request", order_id=order_id, marketplace_id="ATVPDKIKX0DER", state="acting"
        )
        s.add(case)
        s.flush()
        return case.id


def cases_with_actions(store: str, *order_ids: str) -> list[int]:
    ids = []
    for order_id in order_ids:
        case_id = open_case(store, order_id)
        enqueue_cancel(store, order_id, case_id=case_id)
        ids.append(case_id)
    return ids


def action_states(store: str) -> list[tuple[str, str | None]]:
    with session_scope(store) as s:
        return [(a.status, a.result_code) for a in s.scalars(select(Action).order_by(Action.id))]


def flags(store: str, case_ids: list[int]) -> list[str | None]:
    with session_scope(store) as s:
        return [s.get(Case, c).needs_attention for c in case_ids]  # type: ignore[union-attr]


def the_feed(store: str) -> Feed:
    with session_scope(store) as s:
        return s.scalars(select(Feed).order_by(Feed.id.desc())).first()  # type: ignore[return-value]


def send_and_poll(store: str, adapter: TestAdapter, emulator: httpx.Client) -> list[int]:
    outbox.send_pending(store, adapter, seller_id=SELLER)
    finish_feeds(emulator)
    return outbox.poll_submitted(store, adapter)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("underCount", "counts 1 messages processed; Henpin sent 2"),
        ("noSummary", "has no ProcessingSummary"),
        ("omitResult", "counts 1 messages with an error but lists 0"),
    ],
)
def test_a_report_that_does_not_add_up_marks_nothing_done_and_flags_the_cases(
    store: str, emulator: httpx.Client, emulator_url: str, fault: str, why: str
) -> None:
    seed(emulator, *ORDERS[:2])
    case_ids = cases_with_actions(store, *ORDERS[:2])
    faults(emulator, {f"{fault}Rate": 1})
    with TestAdapter(emulator_url) as adapter:
        assert send_and_poll(store, adapter, emulator) == []
    feed = the_feed(store)
    assert feed.status == FeedState.ATTENTION
    assert "<ProcessingReport>" in (feed.report or "")  # the raw report, for a person
    assert action_states(store) == [("submitted", None), ("submitted", None)]
    for flag in flags(store, case_ids):
        assert flag is not None and why in flag and f"(Henpin feed {feed.id})" in flag
    with session_scope(store) as s:
        kinds = s.scalars(select(Event.kind).where(Event.case_id.in_(case_ids))).all()
    assert kinds == ["needs-attention", "needs-attention"]


@pytest.mark.e2e
def test_a_report_that_adds_up_is_believed_and_flags_nothing(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    case_ids = cases_with_actions(store, *ORDERS[:2])
    with TestAdapter(emulator_url) as adapter:
        assert len(send_and_poll(store, adapter, emulator)) == 2
    assert action_states(store) == [("done", None), ("done", None)]
    assert flags(store, case_ids) == [None, None]


@pytest.mark.e2e
def test_an_action_amazon_rejects_fails_and_flags_its_case_with_amazons_words(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:2])
    shipped(emulator, ORDERS[1])
    case_ids = cases_with_actions(store, *ORDERS[:2])
    with TestAdapter(emulator_url) as adapter:
        assert len(send_and_poll(store, adapter, emulator)) == 2
    (done, _), (failed, code) = action_states(store)
    assert (done, failed) == ("done", "failed")
    assert meaning(code) is CodeMeaning.REJECTED
    first, second = flags(store, case_ids)
    assert first is None
    assert second is not None and second.startswith(f"Amazon rejected the cancel-order ({code})")


@pytest.mark.e2e
def test_amazons_confirmation_closes_the_case_as_its_flow_declared_in_the_same_transaction(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    """An action stored with `closes_case` ends its case when Amazon's report confirms it, with
    Amazon's feed id in the words, and leaves the case's run to finish; one Amazon refused, or
    one stored without it, leaves its case as it was (its flow decides)."""
    from henpin.domain import ClosesCase, Outcome

    seed(emulator, *ORDERS[:3])
    shipped(emulator, ORDERS[1])
    closes = ClosesCase(
        outcome=Outcome.CANCELLED_BUYER_CANCELED, message="Amazon cancelled it (feed {feed})."
    )
    case_ids = []
    for order_id, declared in ((ORDERS[0], closes), (ORDERS[1], closes), (ORDERS[2], None)):
        case_id = open_case(store, order_id)
        with session_scope(store) as s:
            s.get(Case, case_id).flow_run_id = f"00000000-0000-0000-0000-00000000000{case_id}"  # type: ignore[union-attr]
        enqueue_cancel(store, order_id, case_id=case_id, closes_case=declared)
        case_ids.append(case_id)
    with TestAdapter(emulator_url) as adapter:
        assert len(send_and_poll(store, adapter, emulator)) == 3
    amazon_feed_id = the_feed(store).amazon_feed_id
    assert amazon_feed_id
    with session_scope(store) as s:
        confirmed, refused, undeclared = (s.get(Case, c) for c in case_ids)
        assert confirmed is not None and refused is not None and undeclared is not None
        assert (confirmed.state, confirmed.outcome) == ("closed", "cancelled-buyer-canceled")
        assert confirmed.closed_at is not None and confirmed.run_to_finish
        [closed] = s.scalars(select(Event).where(Event.case_id == confirmed.id)).all()
        assert closed.kind == "closed"
        assert closed.message == f"Amazon cancelled it (feed {amazon_feed_id})."
        assert closed.data == {
            "outcome": "cancelled-buyer-canceled",
            "action": f"cancel:{ORDERS[0]}",
        }
        assert (refused.state, refused.outcome, refused.run_to_finish) == ("acting", None, False)
        assert refused.needs_attention is not None  # Amazon's refusal, for the flow to close
        assert (undeclared.state, undeclared.run_to_finish) == ("acting", False)
    assert action_states(store)[0] == ("done", None)


def test_amazons_temporary_code_is_the_only_one_sent_again() -> None:
    assert set(outbox.RESUBMIT_CODES) == {"5002"}
    assert meaning("5002") is CodeMeaning.TEMPORARY
    for code in ("5000", "5001", "5003", "5004", "18028", "90000", None):
        assert meaning(code) is CodeMeaning.REJECTED


@pytest.mark.e2e
def test_the_three_answers_and_the_first_one_wins(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:3])
    with TestAdapter(emulator_url) as adapter:
        # A report that under-counts: Amazon did not apply it. A person: send it again.
        [again] = cases_with_actions(store, ORDERS[0])
        faults(emulator, {"underCountRate": 1})
        send_and_poll(store, adapter, emulator)
        feed = the_feed(store).id
        with ThreadPoolExecutor(2) as pool:  # two people answering at once: one wins
            answers = list(
                pool.map(
                    lambda a: outbox.settle_attention(store, feed, a, by="alice"),
                    [FeedAnswer.SEND_AGAIN, FeedAnswer.DONE],
                )
            )
        assert sorted(a is None for a in answers) == [False, True]
        won = FeedAnswer.SEND_AGAIN if answers[0] is not None else FeedAnswer.DONE
        assert outbox.settle_attention(store, feed, FeedAnswer.NOT_DONE, by="bob") is None
        assert the_feed(store).status == FeedState.SETTLED
        assert flags(store, [again]) == [None]
        if won is FeedAnswer.SEND_AGAIN:
            assert action_states(store) == [("pending", None)]
            faults(emulator, None)
            assert len(send_and_poll(store, adapter, emulator)) == 1
            assert action_states(store) == [("done", None)]
        else:
            assert action_states(store) == [("done", "HENPIN_CONFIRMED_DONE")]
        assert amazon_status(emulator, ORDERS[0]) == (
            "CANCELLED" if won is FeedAnswer.SEND_AGAIN else "UNSHIPPED"
        )

        # No summary, but Amazon applied it: a person says done.
        [done] = cases_with_actions(store, ORDERS[1])
        faults(emulator, {"noSummaryRate": 1})
        send_and_poll(store, adapter, emulator)
        answered = outbox.settle_attention(store, the_feed(store).id, FeedAnswer.DONE, by="alice")
        assert answered == [(done, f"cancel:{ORDERS[1]}")]
        assert action_states(store)[-1] == ("done", "HENPIN_CONFIRMED_DONE")
        assert amazon_status(emulator, ORDERS[1]) == "CANCELLED"

        # A result left out: Amazon did not apply it, and the person wants it no more.
        [not_done] = cases_with_actions(store, ORDERS[2])
        faults(emulator, {"omitResultRate": 1})
        send_and_poll(store, adapter, emulator)
        outbox.settle_attention(store, the_feed(store).id, FeedAnswer.NOT_DONE, by="alice")
        assert action_states(store)[-1] == ("failed", "HENPIN_CONFIRMED_NOT_DONE")
        assert amazon_status(emulator, ORDERS[2]) == "UNSHIPPED"
        assert flags(store, [done, not_done]) == [None, None]
        faults(emulator, None)
        assert send_and_poll(store, adapter, emulator) == []  # nothing more went out


@pytest.mark.e2e
def test_a_compressed_result_document_is_read(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    seed(emulator, *ORDERS[:3])
    shipped(emulator, ORDERS[2])
    cases_with_actions(store, *ORDERS[:3])
    faults(emulator, {"gzipRate": 1})
    with TestAdapter(emulator_url) as adapter:
        assert len(send_and_poll(store, adapter, emulator)) == 3
    assert [s for s, _ in action_states(store)] == ["done", "done", "failed"]
    assert the_feed(store).status == FeedState.DONE
    calls = emulator.get("/_emulator/calls").json()
    assert any(c["operation"] == "getFeedDocument" for c in calls)


@pytest.mark.e2e
def test_henpin_uploads_with_the_content_type_it_declared(
    store: str, emulator: httpx.Client, emulator_url: str
) -> None:
    """The emulator refuses any other Content-Type (403, nothing stored: see
    test_emulator_feed_checks); Henpin's feed is stored and processed, so it sent the same one,
    and its envelope carries DocumentVersion 1.01."""
    seed(emulator, ORDERS[0])
    cases_with_actions(store, ORDERS[0])
    with TestAdapter(emulator_url) as adapter:
        assert len(send_and_poll(store, adapter, emulator)) == 1
    [feed] = emulator.get("/_emulator/feeds").json()
    assert feed["processingStatus"] == "DONE"
    assert "<DocumentVersion>1.01</DocumentVersion>" in feed["document"]


def report(summary: str, results: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header>'
        "<DocumentVersion>1.02</DocumentVersion><MerchantIdentifier>M</MerchantIdentifier>"
        "</Header><MessageType>ProcessingReport</MessageType><Message><MessageID>1</MessageID>"
        "<ProcessingReport><DocumentTransactionID>9</DocumentTransactionID>"
        f"<StatusCode>Complete</StatusCode>{summary}{results}</ProcessingReport></Message>"
        "</AmazonEnvelope>"
    )


def counts(processed: int, successful: int, errors: int, warnings: int) -> str:
    return (
        f"<ProcessingSummary><MessagesProcessed>{processed}</MessagesProcessed>"
        f"<MessagesSuccessful>{successful}</MessagesSuccessful>"
        f"<MessagesWithError>{errors}</MessagesWithError>"
        f"<MessagesWithWarning>{warnings}</MessagesWithWarning></ProcessingSummary>"
    )


def result(message_id: int, kind: str, code: str) -> str:
    return (
        f"<Result><MessageID>{message_id}</MessageID><ResultCode>{kind}</ResultCode>"
        f"<ResultMessageCode>{code}</ResultMessageCode>"
        "<ResultDescription>words</ResultDescription></Result>"
    )


def test_the_summary_is_checked_per_message_not_per_result_line() -> None:
    from henpin.amazon.feed_xml import parse_processing_report
    from henpin.outbox import report_gap

    both = result(1, "Error", "18028") + result(1, "Warning", "99") + result(2, "Warning", "99")
    adds_up = parse_processing_report(report(counts(3, 2, 1, 2), both))
    assert report_gap(adds_up, sent=3) is None
    assert report_gap(adds_up, sent=4) == (
        "the processing report counts 3 messages processed; Henpin sent 4"
    )
    one_error_missing = parse_processing_report(report(counts(3, 1, 2, 2), both))
    assert report_gap(one_error_missing, sent=3) == (
        "the processing report counts 2 messages with an error but lists 1"
    )
    warning_missing = parse_processing_report(report(counts(3, 2, 1, 3), both))
    assert "3 messages with a warning but lists 2" in (report_gap(warning_missing, sent=3) or "")
