"""A feed whose Amazon report did not account for a case's action, seen and answered by a person:
in the inbox (count, filter, raw report, three answers) and with `henpin feeds ...` / `henpin
cases list --json`. One application function for both doors; the first answer wins. The feed is
put in `attention` for real: the outbox sends to the emulator, whose report under-counts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin import accounts, outbox
from henpin.app.cases import show_case
from henpin.app.feeds import FeedSettleCode, settle_feed
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Feed
from tests.test_inbox_support import fresh_store, open_keys, opened, set_operator, signed_in, texts
from tests.test_inbox_support import waiting_case as stored_case
from tests.test_outbox import ORDERS, SELLER, TestAdapter, enqueue_cancel, finish_feeds, seed

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return fresh_store(tmp_path, monkeypatch)


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


def feed_in_attention(store_url: str, emulator: httpx.Client, url: str, order_id: str) -> int:
    """A case acting on a cancellation whose feed's report under-counted; returns the case id."""
    seed(emulator, order_id)
    case_id = stored_case(store_url, order_id, timedelta(hours=5))
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state, case.waiting_step, case.choices = "acting", None, []
    enqueue_cancel(store_url, order_id, case_id=case_id)
    emulator.put(
        "/_emulator/faults", json={"seed": 1, "feeds": {"underCountRate": 1}}
    ).raise_for_status()
    with TestAdapter(url) as adapter:
        outbox.send_pending(store_url, adapter, seller_id=SELLER)
        finish_feeds(emulator)
        assert outbox.poll_submitted(store_url, adapter) == []
    emulator.delete("/_emulator/faults").raise_for_status()
    return case_id


def only_feed(store_url: str) -> int:
    with session_scope(store_url) as s:
        [feed_id] = s.scalars(select(Feed.id)).all()
        return feed_id


def action(store_url: str) -> tuple[str, str | None]:
    with session_scope(store_url) as s:
        [a] = s.scalars(select(Action)).all()
        return a.status, a.result_code


def test_the_inbox_counts_filters_shows_the_report_and_takes_the_first_answer(
    store_url: str, emulator: httpx.Client, emulator_url: str
) -> None:
    case_id = feed_in_attention(store_url, emulator, emulator_url, ORDERS[0])
    calm = stored_case(store_url, "111-0000000-0000031", timedelta(hours=5))
    feed_id = only_feed(store_url)
    at = signed_in()
    [count] = [m for m in at.metric if m.label == "Needs attention"]
    assert count.value == "1"
    at.checkbox(key="inbox.attention").check().run()
    assert f"inbox.open.{case_id}" in open_keys(at)
    assert f"inbox.open.{calm}" not in open_keys(at)

    page = opened(at, case_id)
    other = opened(signed_in(), case_id)  # a second operator, page opened before the answer
    assert "did not account for this case's action" in texts(page)
    assert "<MessagesProcessed>0</MessagesProcessed>" in page.code[0].value  # the raw report
    page.button(key=f"feed.settle.{feed_id}.done").click().run()
    assert "Marked as done." in texts(page)
    assert not [b for b in page.button if (b.key or "").startswith("feed.settle.")]
    other.button(key=f"feed.settle.{feed_id}.send-again").click().run()
    assert "answered for this feed already" in texts(other)
    assert action(store_url) == ("done", "HENPIN_CONFIRMED_DONE")

    [line] = accounts.audit_lines(store_url, action="feed-settled")
    assert (line.actor, line.target) == ("alice", f"case {case_id}")
    assert line.detail == {
        "feed_id": feed_id,
        "answer": "done",
        "actions": [f"cancel:{ORDERS[0]}"],
    }
    detail = show_case(store_url, case_id)
    assert detail is not None and detail.needs_attention is None
    assert [e.kind for e in detail.timeline][-2:] == ["needs-attention", "feed-settled"]


def test_a_viewer_reads_the_report_but_cannot_answer(
    store_url: str, emulator: httpx.Client, emulator_url: str
) -> None:
    case_id = feed_in_attention(store_url, emulator, emulator_url, ORDERS[1])
    set_operator(store_url, "alice", role="viewer")
    page = opened(signed_in(), case_id)
    assert "did not account for this case's action" in texts(page)
    assert not [b for b in page.button if (b.key or "").startswith("feed.settle.")]
    code = settle_feed(store_url, only_feed(store_url), "done", operator="alice")
    assert code is FeedSettleCode.NOT_ALLOWED
    assert action(store_url) == ("submitted", None)


def henpin(*args: str) -> tuple[int, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "henpin.cli", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode, json.loads(out.stdout)


def test_the_cli_lists_shows_and_settles_with_the_same_rules(
    store_url: str, emulator: httpx.Client, emulator_url: str
) -> None:
    case_id = feed_in_attention(store_url, emulator, emulator_url, ORDERS[2])
    feed_id = only_feed(store_url)
    rc, cases = henpin("cases", "list")
    [listed] = [c for c in cases if c["id"] == case_id]
    assert "counts 0 messages processed; Henpin sent 1" in listed["needs_attention"]
    assert henpin("feeds", "list")[1][0]["id"] == feed_id
    rc, shown = henpin("feeds", "show", str(feed_id))
    assert rc == 0 and "<ProcessingReport>" in shown["report"]
    assert shown["actions"][0]["case_id"] == case_id

    assert henpin("feeds", "settle", str(feed_id), "--as", "send-again", "--operator", "alice") == (
        0,
        {"feed_id": feed_id, "answer": "send-again", "settled": True, "result": "feed-sent-again"},
    )
    rc, again = henpin("feeds", "settle", str(feed_id), "--as", "not-done", "--operator", "alice")
    assert (rc, again["result"]) == (1, "feed-not-in-attention")
    assert action(store_url) == ("pending", None)
    [line] = accounts.audit_lines(store_url, action="feed-settled")
    assert (line.actor, line.source, line.detail["answer"]) == ("alice", "cli", "send-again")
    with TestAdapter(emulator_url) as adapter:  # it goes out again, and this time adds up
        outbox.send_pending(store_url, adapter, seller_id=SELLER)
        finish_feeds(emulator)
        assert len(outbox.poll_submitted(store_url, adapter)) == 1
    assert action(store_url) == ("done", None)
    assert henpin("cases", "list")[1][0]["needs_attention"] is None
