"""The inbox in a real browser, as a person uses it: sign in, find a waiting case, decide, see it
recorded. Debian's Chromium driven by Playwright for Python against `streamlit run ui/inbox.py`
on 127.0.0.1, with a case store of its own.

Screenshots of the inbox and of a case page land in `screenshots/` (gitignored; see
docs/inbox.md). Skipped, with the reason, only when Chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin.service import add_operator
from henpin.store.db import engine_for, migrate, session_scope
from henpin.store.models import AuditEntry, Decision
from tests.needs import missing
from tests.test_inbox_support import address_error_case, waiting_case

REPO = Path(__file__).parents[1]
CHROMIUM = Path(os.environ.get("HENPIN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "screenshots"
PASSWORD = "browser-test-password"
ORDER = "113-0000000-0000701"

pytestmark = pytest.mark.e2e

if not CHROMIUM.exists():
    missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (or set HENPIN_CHROMIUM)")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The inbox served by Streamlit on 127.0.0.1, over a store with an operator and cases."""
    home = tmp_path_factory.mktemp("browser") / "home"
    url = f"sqlite:///{home / 'henpin.db'}"
    migrate(url)
    add_operator(url, "alice", PASSWORD)
    case_id = waiting_case(url, ORDER, timedelta(hours=1, minutes=30))
    waiting_case(url, "113-0000000-0000702", timedelta(minutes=-20))
    waiting_case(url, "113-0000000-0000703", timedelta(days=1), marketplace_id="A1VC38T7YXB528")
    address_case_id = address_error_case(url, "302-0000000-0000704")
    engine_for(url).dispose()
    port = _free_port()
    env = {**os.environ, "HENPIN_HOME": str(home), "HENPIN_SESSION_HOURS": "8"}
    env.pop("HENPIN_DATABASE_URL", None)
    log = (home / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "ui" / "inbox.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=home.parent,  # no developer's .env
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited; see {home / 'streamlit.log'}")
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the inbox did not start within 60 s")
            time.sleep(0.2)
        yield {"url": base, "store": url, "case_id": case_id, "address_case_id": address_case_id}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def settle(page: Any, height: int) -> None:
    """Wait until Streamlit has finished running the page, then size the window to show it all
    (Streamlit scrolls inside its own container, so a full-page screenshot would not)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    )
    page.set_viewport_size({"width": 1440, "height": height})
    page.wait_for_timeout(600)  # tables and charts draw after the script ends


def test_sign_in_find_a_waiting_case_decide_and_see_it_recorded(
    inbox: dict[str, Any], browser: Any
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    page.goto(inbox["url"])

    page.get_by_role("textbox", name="Name").fill("alice")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Cases (4)").wait_for()
    page.get_by_text(ORDER).wait_for()
    settle(page, 1000)
    page.screenshot(path=str(SCREENSHOTS / "inbox.png"))

    page.locator(f".st-key-inbox-open-{inbox['address_case_id']} button").click()
    page.get_by_text("Money of each option").wait_for()
    settle(page, 1900)
    page.screenshot(path=str(SCREENSHOTS / "case-options.png"))
    page.get_by_text("Back to the inbox").click()

    case_id = inbox["case_id"]
    page.locator(f".st-key-inbox-open-{case_id} button").click()
    page.get_by_role("heading", name=f"Cancel request · {ORDER}").wait_for()
    page.get_by_text("What should happen?").wait_for()
    settle(page, 1450)
    page.screenshot(path=str(SCREENSHOTS / "case.png"))

    page.get_by_text("Cancel the order (reason: BuyerCanceled)").click()
    page.get_by_label("Note (optional, kept with the decision)").fill("Buyer asked twice")
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text(f"recorded for case {case_id}").wait_for()
    page.get_by_text("the case will continue within a minute").wait_for()
    page.get_by_text("decided, continuing within a minute").wait_for()
    settle(page, 1450)
    assert page.get_by_role("button", name="Submit decision").count() == 0  # no second submit
    page.screenshot(path=str(SCREENSHOTS / "case-decided.png"))
    page.close()

    with session_scope(inbox["store"]) as s:
        rows = s.scalars(select(Decision).where(Decision.case_id == case_id)).all()
        assert [(d.choice, d.operator, d.source, d.note) for d in rows] == [
            ("cancel", "alice", "inbox", "Buyer asked twice")
        ]
        logged = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert logged == ["operator-added", "login", "decision"]  # the set-up's alice, audited


def test_screenshots_are_where_the_docs_say() -> None:
    docs = (REPO / "docs" / "inbox.md").read_text()
    assert "screenshots/inbox.png" in docs and "screenshots/case.png" in docs
    assert "screenshots/" in (REPO / ".gitignore").read_text().splitlines()


def test_a_japanese_operator_reads_reason_timeline_and_yen_in_japanese(
    inbox: dict[str, Any], browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: a Japanese operator sees the recommendation's reason and the timeline in
    Japanese, yen as amazon.co.jp writes them, and times in Japan time (UTC a switch away)."""
    from datetime import UTC, datetime
    from decimal import Decimal
    from types import SimpleNamespace

    from henpin.domain import FulfillmentStatus, Money, Order, OrderItem
    from henpin.policy import load_policy
    from henpin.questions import cancel_request_question
    from henpin.store.models import Operator
    from tasks import store
    from tasks.cases import mark_waiting, record_recommendation
    from tests.test_inbox_support import REPO_POLICIES, cancel_order

    url, order_id, jp = inbox["store"], "250-0000000-0000706", "A1VC38T7YXB528"
    add_operator(url, "hanako", PASSWORD)
    with session_scope(url) as s:
        s.scalars(select(Operator).where(Operator.name == "hanako")).one().language = "ja"
    order = Order(
        order_id=order_id,
        marketplace_id=jp,
        created_time=datetime.now(UTC) - timedelta(hours=2),
        last_updated_time=datetime.now(UTC) - timedelta(hours=2),
        fulfillment_status=FulfillmentStatus.UNSHIPPED,
        fulfilled_by="MERCHANT",
        items=[
            OrderItem(
                order_item_id="item-1",
                sku="TETSUBIN-01",
                unit_price=Money(amount=Decimal(45000), currency="JPY"),
                cancel_requested_by_buyer=True,
                buyer_cancel_reason="間違えて注文しました",
            )
        ],
    )
    yen = {"amount": "45000", "currency": "JPY"}
    snapshot = {**cancel_order(order_id, jp), "value": yen, "items": []}
    case_id = waiting_case(
        url, order_id, timedelta(hours=5), marketplace_id=jp, order_snapshot=snapshot
    )
    # The flow's own tasks write the recommendation and the wait, with their timeline lines.
    monkeypatch.setattr(store, "settings", lambda: SimpleNamespace(store_url=url))
    advice = load_policy(REPO_POLICIES).cancel_request.recommend(order, datetime.now(UTC))
    record_recommendation.fn(case_id, order, advice.model_dump(mode="json"), "browser-test")
    question = cancel_request_question(
        order, advice.model_dump(mode="json"), deadline_hours=24, timeout_choice="cancel"
    )
    mark_waiting.fn(case_id, question)
    engine_for(url).dispose()

    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="ja-JP")
    page.set_default_timeout(20_000)
    page.goto(inbox["url"])
    page.get_by_role("textbox", name="名前").fill("hanako")
    page.get_by_role("textbox", name="パスワード").fill(PASSWORD)
    page.get_by_role("button", name="サインイン").click()
    page.locator(f".st-key-inbox-open-{case_id} button").click()
    page.get_by_role("heading", name=f"キャンセルリクエスト · {order_id}").wait_for()
    settle(page, 1900)
    page.screenshot(path=str(SCREENSHOTS / "case-ja.png"))
    body = page.inner_text("body")
    # the reason, worded from its code, with yen in yen format
    assert "注文金額 ￥45,000 が上限 ￥30,000 を超えています" in body
    assert "45,000 JPY" not in body.split("フローが出した質問")[0]
    # timeline entries the flow wrote, in Japanese
    assert "ポリシーの推奨: オペレーターが判断" in body
    assert "オペレーターの判断待ち（期限" in body
    # times in Japan time; UTC is a switch away
    assert " JST" in body
    page.get_by_text("時刻を UTC で表示").click()
    page.get_by_text(" UTC").first.wait_for()
    settle(page, 1900)
    assert " JST" not in page.inner_text("body")
    page.close()
