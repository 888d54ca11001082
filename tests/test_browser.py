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
    jp_case_id = waiting_case(
        url, "113-0000000-0000703", timedelta(days=1), marketplace_id="A1VC38T7YXB528"
    )
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
        yield {
            "url": base,
            "store": url,
            "case_id": case_id,
            "address_case_id": address_case_id,
            "jp_case_id": jp_case_id,
        }
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
    settle(page, 1000)
    page.screenshot(path=str(SCREENSHOTS / "inbox.png"))

    open_row(page, 2, inbox["address_case_id"])  # rows by deadline: overdue, 1.5 h, 20 h, 1 day
    page.get_by_text("Money of each option").wait_for()
    settle(page, 1900)
    page.screenshot(path=str(SCREENSHOTS / "case-options.png"))
    page.get_by_text("Back to the inbox").click()

    case_id = inbox["case_id"]
    open_row(page, 1, case_id)
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


# --- the list that keeps up, and the CSV export (issue 13) ----------------------------------------


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Name").fill("alice")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Cases (").first.wait_for()


def select_row(page: Any, row: int) -> None:
    """Tick a row of the inbox's table: its row marker, left of the first column (the table is
    drawn on a canvas: rows and header are 35 px high)."""
    table = page.locator('[class*="st-key-inbox-table-"] [data-testid="stDataFrameResizable"]')
    table.wait_for()
    settle(page, page.viewport_size["height"])
    table.hover(position={"x": 16, "y": 35 * (row + 1) + 17})
    table.click(position={"x": 16, "y": 35 * (row + 1) + 17})


def open_row(page: Any, row: int, case_id: int) -> None:
    select_row(page, row)
    page.get_by_role("button", name=f"Open case #{case_id}").click()


def test_search_by_order_id_and_a_filter_through_the_url(
    inbox: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, inbox["url"])
    search = page.get_by_role("textbox", name="Search")
    search.fill("0000703")
    search.press("Enter")
    page.get_by_text("Cases (1)").wait_for()
    page.wait_for_url("**q=0000703**")
    open_row(page, 0, inbox["jp_case_id"])
    page.get_by_role("heading", name="Cancel request · 113-0000000-0000703").wait_for()
    page.close()

    # A shared link: the view it names, after the colleague signs in.
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, f"{inbox['url']}/?type=address-error")
    page.get_by_text("Cases (1)").wait_for()
    assert "type=address-error" in page.url
    open_row(page, 0, inbox["address_case_id"])
    page.get_by_text("Money of each option").wait_for()
    page.close()

    # On a phone: the list, 390 px wide.
    page = browser.new_page(viewport={"width": 390, "height": 844}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, inbox["url"])
    page.get_by_text("Cases (").first.wait_for()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    )
    table = page.locator('[class*="st-key-inbox-table-"]')
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(600)  # the table draws after the script ends
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "inbox-phone.png"))
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone's screen
    page.close()


def test_the_list_refreshes_itself_and_shows_a_case_that_arrives(
    inbox: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, inbox["url"])
    heading = page.get_by_text("Cases (", exact=False).first
    before = int(heading.inner_text().split("(")[1].rstrip(")"))
    waiting_case(inbox["store"], "113-0000000-0000709", timedelta(hours=4))
    engine_for(inbox["store"]).dispose()
    # No click, no reload: the list's own refresh (every 30 s by default) brings it in.
    page.get_by_text(f"Cases ({before + 1})").wait_for(timeout=90_000)
    page.get_by_text("new case(s) since you last looked").wait_for()
    page.close()


def test_the_csv_export_downloads(inbox: dict[str, Any], browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1400}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, inbox["url"])
    page.get_by_text("Export for accounting (CSV)").click()
    page.get_by_role("button", name="Prepare the CSV").click()
    button = page.get_by_role("button", name="Download henpin-cases-all-")
    with page.expect_download() as got:
        button.click()
    path = got.value.path()
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("case_id,case_type,order_id,")
    assert ORDER in text and "302-0000000-0000704" in text
    assert got.value.suggested_filename.startswith("henpin-cases-all-")
    page.close()
    with session_scope(inbox["store"]) as s:
        exported = s.scalars(select(AuditEntry).where(AuditEntry.action == "exported")).all()
        assert [(a.actor, a.target) for a in exported] == [("alice", "cases")]


@pytest.fixture
def short_session_inbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An inbox of its own whose sessions end after 3 idle minutes (the shortest
    HENPIN_SESSION_HOURS allows) and whose list refreshes itself every 2 seconds."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'henpin.db'}"
    migrate(url)
    add_operator(url, "alice", PASSWORD)
    waiting_case(url, "113-0000000-0000801", timedelta(hours=5))
    engine_for(url).dispose()
    port = _free_port()
    env = {
        **os.environ,
        "HENPIN_HOME": str(home),
        "HENPIN_SESSION_HOURS": "0.05",
        "HENPIN_INBOX_REFRESH_SECONDS": "2",
    }
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
        cwd=tmp_path,
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
        yield {"url": base, "store": url}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_the_lists_own_refresh_does_not_keep_an_idle_session_open(
    short_session_inbox: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    sign_in(page, short_session_inbox["url"])
    page.get_by_text("Cases (1)").wait_for()
    waiting_case(short_session_inbox["store"], "113-0000000-0000802", timedelta(hours=6))
    engine_for(short_session_inbox["store"]).dispose()
    page.get_by_text("Cases (2)").wait_for()  # the list does refresh itself...
    # ... and still, with no click for 3 minutes, the session ends and says why.
    page.get_by_text("You were signed out after 0.05 h without activity").wait_for(timeout=300_000)
    assert page.get_by_role("textbox", name="Password").count() == 1
    page.close()
    with session_scope(short_session_inbox["store"]) as s:
        logged = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert logged[-1] == "session-expired"
