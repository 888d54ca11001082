"""Withdrawing a case's unsent actions (its flow run was cancelled in Prefect), on a real
database: only what is still pending, once, and never an action a sender put in a feed."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import select

from henpin import outbox
from henpin.amazon.feed_xml import read_feed
from henpin.store.db import session_scope
from henpin.store.models import Action, Case
from tests.test_outbox import (  # noqa: F401 - fixtures
    TestAdapter,
    emulator,
    emulator_url,
    enqueue_cancel,
    received_feeds,
    seed,
    store,
)

ORDERS = [f"113-5551000-000000{n}" for n in range(1, 7)]
WHY = "Withdrawn, never sent: the case's flow run was Cancelled in Prefect."


def open_case(store: str, order_id: str) -> int:  # noqa: F811
    with session_scope(store) as s:
        case = Case(type="cancel-request", order_id=order_id, marketplace_id="ATVPDKIKX0DER")
        s.add(case)
        s.flush()
        return case.id


def withdraw(store: str, case_id: int) -> list[str]:  # noqa: F811
    with session_scope(store) as s:
        return outbox.withdraw_pending(s, case_id, WHY)


def statuses(store: str) -> dict[str, tuple[str, str | None, int | None]]:  # noqa: F811
    with session_scope(store) as s:
        return {
            a.key: (a.status, a.result_code, a.feed_id)
            for a in s.scalars(select(Action).order_by(Action.id))
        }


def test_only_the_cases_pending_actions_are_withdrawn_once(store: str) -> None:  # noqa: F811
    cancelled, other = open_case(store, ORDERS[0]), open_case(store, ORDERS[1])
    enqueue_cancel(store, ORDERS[0], case_id=cancelled)
    enqueue_cancel(store, ORDERS[2], case_id=cancelled)
    enqueue_cancel(store, ORDERS[1], case_id=other)
    with session_scope(store) as s:  # one already in a feed: it may be at Amazon, it stays
        sent = s.scalars(select(Action).where(Action.key == f"cancel:{ORDERS[2]}")).one()
        sent.status = "submitted"

    assert withdraw(store, cancelled) == [f"cancel:{ORDERS[0]}"]
    assert withdraw(store, cancelled) == []
    assert statuses(store) == {
        f"cancel:{ORDERS[0]}": ("failed", "HENPIN_WITHDRAWN", None),
        f"cancel:{ORDERS[2]}": ("submitted", None, None),
        f"cancel:{ORDERS[1]}": ("pending", None, None),
    }
    with session_scope(store) as s:
        action = s.scalars(select(Action).where(Action.key == f"cancel:{ORDERS[0]}")).one()
        assert action.result_message == WHY


@pytest.mark.e2e
def test_a_withdrawal_racing_the_sender_never_lets_a_withdrawn_action_out(
    store: str,  # noqa: F811
    emulator: httpx.Client,  # noqa: F811
    emulator_url: str,  # noqa: F811
) -> None:
    seed(emulator, *ORDERS)
    case_ids = [open_case(store, o) for o in ORDERS]
    for order_id, case_id in zip(ORDERS, case_ids, strict=True):
        enqueue_cancel(store, order_id, case_id=case_id)
    cancelled = case_ids[::2]
    barrier = threading.Barrier(len(cancelled) + 1)
    withdrawn: list[str] = []
    errors: list[BaseException] = []

    def sender() -> None:
        with TestAdapter(emulator_url) as adapter:
            barrier.wait()
            try:
                outbox.send_pending(store, adapter)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    def withdrawer(case_id: int) -> None:
        barrier.wait()
        try:
            withdrawn.extend(withdraw(store, case_id))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender)]
    threads += [threading.Thread(target=withdrawer, args=(c,)) for c in cancelled]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    at_amazon = {
        payload.order_id
        for feed in received_feeds(emulator)
        for _, payload in read_feed(feed["document"])[1]
    }
    for key, (status, code, feed_id) in statuses(store).items():
        order_id = key.removeprefix("cancel:")
        if key in withdrawn:
            assert (status, code, feed_id) == ("failed", "HENPIN_WITHDRAWN", None)
            assert order_id not in at_amazon
        else:
            assert status == "submitted" and feed_id is not None
            assert order_id in at_amazon
    assert set(ORDERS[1::2]) <= at_amazon  # the other cases' actions went
