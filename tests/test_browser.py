"""The inbox in a real browser, as a person uses it: sign in, find a waiting case, decide, see it
recorded. Debian's Chromium driven by Playwright for Python against `streamlit run ui/inbox.py`
on 127.0.0.1, with a case store of its own.

The screenshots the README and docs/inbox.md show are taken here, into `docs/screenshots/`
(committed: run this file and commit them when the UI changes). Skipped, with the reason, only
when Chromium or Playwright is missing.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin.accounts import add_operator
from henpin.mailcatcher import CaughtMail, MailCatcher
from henpin.store.db import engine_for, migrate, session_scope
from henpin.store.models import Action, AuditEntry, Decision
from tests.needs import missing
from tests.support import reset_process_caches
from tests.test_inbox_support import (
    address_error_case,
    closed_case,
    decision,
    refund_action,
    waiting_case,
)

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
# The pictures README and docs/inbox.md show are committed in docs/screenshots and refreshed with
# `make screenshots` (HENPIN_SCREENSHOTS=docs) when the UI changes; an ordinary test run writes
# its pictures to the gitignored screenshots/ (times in them change every run).
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
SCREENSHOTS = (
    DOCS_SCREENSHOTS if os.environ.get("HENPIN_SCREENSHOTS") == "docs" else REPO / "screenshots"
)
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
    with served_inbox(home) as base:
        yield {
            "url": base,
            "store": url,
            "case_id": case_id,
            "address_case_id": address_case_id,
            "jp_case_id": jp_case_id,
        }


@contextmanager
def served_inbox(home: Path, **settings: str) -> Iterator[str]:
    """`streamlit run ui/inbox.py` on 127.0.0.1 over the data folder `home`, with `settings`
    (HENPIN_* variables) over the defaults; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "HENPIN_HOME": str(home),
        "HENPIN_SESSION_HOURS": "8",
        "HENPIN_POLICIES": str(REPO / "policies.yaml"),  # as `henpin up` finds it
        **settings,
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
        yield base
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


def idle(page: Any) -> None:
    """Wait until Streamlit has finished running the page's script."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    )


def settle(page: Any, height: int) -> None:
    """Wait until Streamlit has finished running the page, then size the window to show it all
    (Streamlit scrolls inside its own container, so a full-page screenshot would not)."""
    idle(page)
    page.set_viewport_size({"width": 1440, "height": height})
    # Tables and charts draw after the script ends: first a grey placeholder (a skeleton),
    # then a table is a canvas (one in a folded expander draws none until unfolded).
    page.wait_for_function(
        "() => !document.querySelector('[data-testid^=\"stSkeleton\"]') && "
        "[...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
        ".every(t => t.querySelector('canvas') || t.closest('details:not([open])'))"
    )
    page.wait_for_timeout(600)


def test_sign_in_find_a_waiting_case_decide_and_see_it_recorded(
    inbox: dict[str, Any], browser: Any
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
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


INSPECTED_ORDER = "114-0000000-0000705"


def inspection_case(url: str, order_id: str) -> int:
    """A return whose item came back, waiting for its condition (the return flow's question)."""
    question = {
        "step": "item-condition",
        "title": f"In what condition did the item of order {order_id} come back?",
        "prompt": "- Reason code: DAMAGED_BY_CARRIER",
        "choices": ["inspected", "escalate"],
        "labels": {"inspected": "Record the condition", "escalate": "Escalate to the owner"},
        "fields": [
            {
                "name": "condition",
                "kind": "option",
                "label": "Condition of the returned item",
                "required_for": ["inspected"],
                "options": ["unopened", "opened_like_new", "used", "damaged_by_buyer"],
            }
        ],
        "deadline_hours": 24,
        "timeout_choice": "overdue",
        "recommended": "inspected",
    }
    return waiting_case(
        url,
        order_id,
        timedelta(hours=20),
        type="return-request",
        waiting_step="item-condition",
        choices=question["choices"],
        question=question,
        recommendation={},
        details={"reason_code": "DAMAGED_BY_CARRIER", "return": {"rma_id": "DzQ7RMA05"}},
    )


def past_month(url: str) -> None:
    """Cases of the last weeks, for the dashboard's picture: cancellations by the buyer and by
    the seller, refunds in three marketplaces, a fee recovered, decisions after a while."""
    now = datetime.now(UTC)
    for n, (outcome, marketplace) in enumerate(
        [
            ("cancelled-buyer-canceled", "ATVPDKIKX0DER"),
            ("cancelled-buyer-canceled", "ATVPDKIKX0DER"),
            ("cancelled-buyer-canceled", "A1VC38T7YXB528"),
            ("cancelled-buyer-canceled", "A1PA6795UKMFR9"),
            ("cancelled-by-seller", "A1PA6795UKMFR9"),
        ]
    ):
        opened = now - timedelta(days=n + 1)
        case_id = closed_case(
            url,
            f"113-0000000-00009{n:02d}",
            outcome,
            marketplace_id=marketplace,
            created_at=opened,
        )
        decision(url, case_id, "cancel", opened + timedelta(minutes=25 * (n + 1)))
    for n, (marketplace, currency, amounts) in enumerate(
        [
            ("A1PA6795UKMFR9", "EUR", ["20.00", "5.00"]),
            ("A1VC38T7YXB528", "JPY", ["3200"]),
            ("A1F83G8C2ARO7P", "GBP", ["12.50"]),
        ]
    ):
        ret = closed_case(
            url, f"302-0000000-00009{n:02d}", "refunded-partly", type="return-request",
            marketplace_id=marketplace,
        )  # fmt: skip
        for k, amount in enumerate(amounts):
            refund_action(
                url, ret, f"past-{n}-{k}", "CustomerReturn", amount, marketplace_id=marketplace
            )
            with session_scope(url) as s:  # in the marketplace's currency
                action = s.scalars(select(Action).where(Action.key == f"past-{n}-{k}")).one()
                payload = json.loads(json.dumps(action.payload))  # a new value, so it is saved
                payload["items"][0]["components"][0]["currency"] = currency
                action.payload = payload
    closed_case(
        url,
        "302-0000000-0000990",
        "refunded-in-full",
        type="refused-delivery",
        marketplace_id="A1PA6795UKMFR9",
        details={"money": {"fees_recovered": {"amount": "1.20", "currency": "EUR"}}},
    )


@pytest.fixture(scope="module")
def inspection_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An inbox of its own (so the main one's cases stay as they are) with one returned item
    waiting for inspection."""
    home = tmp_path_factory.mktemp("browser-evidence") / "home"
    url = f"sqlite:///{home / 'henpin.db'}"
    migrate(url)
    add_operator(url, "alice", PASSWORD)
    case_id = inspection_case(url, INSPECTED_ORDER)
    past_month(url)
    engine_for(url).dispose()
    with served_inbox(home) as base:
        yield {"url": base, "store": url, "case_id": case_id, "home": home}


def signed_in_page(browser: Any, base: str) -> Any:
    """A new page on the inbox, signed in as alice. (Pages are then opened from the sidebar:
    loading a URL starts a new session.)"""
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    page.goto(base)
    page.get_by_role("textbox", name="Name").fill("alice")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    return page


def a_photo(path: Path) -> bytes:
    """A picture of a parcel with a cracked lid, drawn (no camera in a test)."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (480, 360), (236, 226, 208))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((90, 110, 390, 300), fill=(176, 132, 84), outline=(90, 60, 30), width=6)
    draw.polygon([(90, 110), (150, 50), (450, 50), (390, 110)], fill=(200, 160, 110))
    draw.line([(180, 110), (230, 190), (205, 240), (260, 300)], fill=(40, 20, 10), width=5)
    draw.text((110, 320), "lid cracked on arrival", fill=(40, 20, 10))
    picture.save(path, format="JPEG", quality=90)
    return path.read_bytes()


def choose_the_last_option(page: Any, field: Any) -> None:
    """Open the select box in `field` and choose its last option, and see it chosen.

    A rerun that ends while the list is open draws the page again and takes the open list away
    (CI saw the option "not visible", then "detached from the DOM"); then open it again."""
    for _ in range(3):
        idle(page)
        box = field.get_by_role("combobox")
        box.click()
        option = page.get_by_role("option").last
        try:
            wanted = option.inner_text(timeout=5_000).strip()
            option.click(timeout=5_000)
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
            continue
        if wanted and box.input_value() == wanted:
            return
    raise AssertionError("the last option could not be chosen in three tries")


def test_a_photo_attached_at_inspection_appears_in_the_claim_pack(
    inspection_inbox: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    case_id = inspection_inbox["case_id"]
    page = signed_in_page(browser, inspection_inbox["url"])
    page.get_by_role("link", name="Case", exact=True).click()
    page.get_by_label("Case number").fill(str(case_id))
    page.get_by_role("button", name="Open the case").click()
    page.get_by_role("heading", name=f"Return request · {INSPECTED_ORDER}").wait_for()
    photo = a_photo(tmp_path / "lid.jpg")
    (tmp_path / "invoice.jpg").write_bytes(b"%PDF-1.7 an invoice, not a photo")

    # By position, not by words (labels are translated and reworded): the first choice is
    # "inspected", the last condition "damaged_by_buyer".
    page.locator(f".st-key-decide-{case_id}-choice [role=radiogroup] label").first.click()
    choose_the_last_option(page, page.locator(f".st-key-decide-{case_id}-field-condition"))
    uploader = page.locator(f".st-key-decide-{case_id}-photos input[type=file]")
    uploader.set_input_files([str(tmp_path / "invoice.jpg")])
    page.get_by_role("button", name="Remove invoice.jpg").wait_for()  # uploaded
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("invoice.jpg is not a JPEG, PNG or WebP image").wait_for()
    with session_scope(inspection_inbox["store"]) as s:  # a bad photo sends nothing
        assert s.scalars(select(Decision).where(Decision.case_id == case_id)).all() == []

    page.get_by_role("button", name="Remove invoice.jpg").click()
    uploader.set_input_files([str(tmp_path / "lid.jpg")])
    page.get_by_role("button", name="Remove lid.jpg").wait_for()
    page.get_by_role("button", name="Submit decision").click()
    page.get_by_text("1 photo(s) kept with the case.").wait_for()
    page.get_by_text("lid.jpg · alice").wait_for()
    page.get_by_role("button", name="Make the claim pack").click()
    download_button = page.get_by_role("button", name=f"Download claim-pack-case-{case_id}")
    download_button.wait_for()
    settle(page, 1900)
    page.screenshot(path=str(SCREENSHOTS / "case-photos.png"))
    with page.expect_download() as waiting:
        download_button.click()
    pack = zipfile.ZipFile(waiting.value.path())
    page.close()

    assert pack.read("photos/01-lid.jpg") == photo
    facts = json.loads(pack.read("case.json"))
    assert facts["case"]["order_id"] == INSPECTED_ORDER
    assert [(d["choice"], d["fields"]) for d in facts["decisions"]] == [
        ("inspected", {"condition": "damaged_by_buyer"})
    ]
    assert facts["photos"][0]["step"] == "item-condition"
    with session_scope(inspection_inbox["store"]) as s:
        logged = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert logged[-3:] == ["decision", "photos-attached", "claim-pack-exported"]


def test_the_dashboard_and_a_notification_for_the_docs(
    inspection_inbox: dict[str, Any],
    browser: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prefect_server: Any,
) -> None:
    """The pictures of the dashboard and of a notification e-mail (the digest of new waiting
    cases as the demo's mail catcher received it, shown as a mail program would)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = signed_in_page(browser, inspection_inbox["url"])
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    settle(page, 1900)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"))
    page.close()

    from tests.test_notifications import NOW, waiting

    with MailCatcher(port=0) as catcher:
        for name, value in {
            "HENPIN_HOME": str(tmp_path),
            "HENPIN_POLICIES": str(REPO / "policies.yaml"),
            "HENPIN_SMTP_HOST": "127.0.0.1",
            "HENPIN_SMTP_PORT": str(catcher.port),
            "HENPIN_NOTIFY_DEMO_CATCHER": "true",
            "HENPIN_INBOX_URL": "http://127.0.0.1:8501",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HENPIN_NOTIFY_URLS", raising=False)
        reset_process_caches()
        try:
            from henpin.context import store_url
            from tasks.notifications import send_notifications

            migrate(store_url())
            for n in range(3):
                waiting(store_url(), f"503-0000000-00000{n}1", hours_left=30 + n)
            send_notifications.fn(now=NOW)
            [mail] = catcher.wait_for(1)
        finally:
            reset_process_caches()
    assert mail.subject == "Henpin: 3 new case(s) wait for an operator"
    page = browser.new_page(viewport={"width": 900, "height": 520}, locale="en-US")
    page.set_content(mail_as_html(mail))
    page.get_by_text(mail.subject).first.wait_for()
    page.screenshot(path=str(SCREENSHOTS / "notification.png"))
    page.close()


def mail_as_html(mail: CaughtMail) -> str:
    """The e-mail as a mail program shows it: its headers, then its text."""
    headers = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(mail.message[name] or ''))}</td></tr>"
        for name in ("From", "To", "Date", "Subject")
    )
    return (
        "<html><body style='font-family: sans-serif; margin: 24px; color: #222'>"
        "<div style='font-size: 13px; color: #666'>Demo mail catcher · "
        f"{html.escape(mail.path.name if mail.path else 'received mail')}</div>"
        f"<h2>{html.escape(mail.subject)}</h2>"
        "<table style='font-size: 14px; border-spacing: 12px 4px; margin-left: -12px'>"
        f"{headers}</table><hr>"
        f"<pre style='font-size: 14px; white-space: pre-wrap'>{html.escape(mail.body)}</pre>"
        "</body></html>"
    )


def test_screenshots_are_where_the_docs_say() -> None:
    """Every picture README and docs/inbox.md show is one this file takes, and is committed."""
    taken = set(re.findall(r'SCREENSHOTS / "([\w.-]+\.png)"', Path(__file__).read_text()))
    shown = {}
    for doc, prefix in ((REPO / "docs" / "inbox.md", ""), (REPO / "README.md", "docs/")):
        shown[doc.name] = set(
            re.findall(rf"\({prefix}screenshots/([\w.-]+\.png)\)", doc.read_text())
        )
        assert shown[doc.name] <= taken, f"{doc.name} shows pictures no test takes"
        for name in shown[doc.name]:
            assert (DOCS_SCREENSHOTS / name).is_file(), (
                f"{doc.name} shows {name}: not in docs/screenshots"
            )
    assert {"inbox.png", "case.png", "dashboard.png", "notification.png"} <= shown["README.md"]
    assert {"inbox.png", "case.png", "case-photos.png", "dashboard.png", "notification.png"} <= (
        shown["inbox.md"]
    )
    assert "/screenshots/" in (REPO / ".gitignore").read_text().splitlines()
    assert {p.name for p in DOCS_SCREENSHOTS.glob("*.png")} <= taken  # none left from before


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
    found = '[class*="st-key-inbox-table-"] [data-testid="stDataFrameResizable"]'
    # While Streamlit redraws the list (a search, a filter), the table of the run before can
    # stay on the page a moment beside the new one: wait until one is left.
    page.wait_for_function(f"document.querySelectorAll({found!r}).length === 1")
    table = page.locator(found)
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
    idle(page)
    table = page.locator('[class*="st-key-inbox-table-"]')
    table.scroll_into_view_if_needed()
    page.wait_for_timeout(600)  # the table draws after the script ends
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
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


#: The idle limit of `short_session_inbox`: 36 s, so the test waits seconds, not minutes.
SHORT_SESSION_HOURS = "0.01"


@pytest.fixture
def short_session_inbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An inbox of its own whose sessions end after 36 idle seconds (HENPIN_SESSION_HOURS=0.01,
    below production's 3-minute floor, which HENPIN_SESSION_MIN_HOURS lowers for this test) and
    whose list refreshes itself every 2 seconds: about 18 refreshes before the session ends."""
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'henpin.db'}"
    migrate(url)
    add_operator(url, "alice", PASSWORD)
    waiting_case(url, "113-0000000-0000801", timedelta(hours=5))
    engine_for(url).dispose()
    settings = {
        "HENPIN_SESSION_HOURS": SHORT_SESSION_HOURS,
        "HENPIN_SESSION_MIN_HOURS": SHORT_SESSION_HOURS,
        "HENPIN_INBOX_REFRESH_SECONDS": "2",
    }
    with served_inbox(home, **settings) as base:
        yield {"url": base, "store": url}


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
    # ... and still, with no click for 36 seconds, the session ends and says why.
    signed_out = f"You were signed out after {SHORT_SESSION_HOURS} h without activity"
    page.get_by_text(signed_out).wait_for(timeout=300_000)
    assert page.get_by_role("textbox", name="Password").count() == 1
    page.close()
    with session_scope(short_session_inbox["store"]) as s:
        logged = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert logged[-1] == "session-expired"


def test_a_link_to_a_case_opens_it_after_sign_in(inbox: dict[str, Any], browser: Any) -> None:
    """A notification links `/case?case=N`: signed out, that address shows the sign-in page and,
    once signed in, the case (not "Page not found", not the inbox)."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="en-US")
    page.set_default_timeout(20_000)
    page.goto(f"{inbox['url']}/case?case={inbox['jp_case_id']}")
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_role("textbox", name="Name").fill("alice")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Cancel request · 113-0000000-0000703").wait_for()
    assert "/case" in page.url and f"case={inbox['jp_case_id']}" in page.url
    page.close()


def test_every_signed_in_page_has_a_signed_out_address() -> None:
    """Each page's address in ui/inbox.py is in SIGNED_IN_PATHS, so a link to it survives sign-in."""
    source = (REPO / "ui" / "inbox.py").read_text()
    addresses = set(re.findall(r'url_path="(\w+)"', source)) - {"login"}
    listed = re.search(r"SIGNED_IN_PATHS = \(([^)]*)\)", source)
    assert listed is not None
    assert set(re.findall(r'"(\w+)"', listed.group(1))) == addresses


def test_a_japanese_operator_reads_reason_timeline_and_yen_in_japanese(
    inbox: dict[str, Any], browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: a Japanese operator sees the recommendation's reason and the timeline in
    Japanese, yen as amazon.co.jp writes them, and times in Japan time (UTC a switch away)."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from henpin.cases.cancel_request import cancel_request_question
    from henpin.context import Context, install
    from henpin.domain import FulfillmentStatus, Money, Order, OrderItem
    from henpin.policy import load_policy
    from henpin.settings import Settings
    from henpin.store.models import Operator
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
    install(Context(Settings(database_url=url)))
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
    page.goto(f"{inbox['url']}/case?case={case_id}")  # as a notification links it
    page.get_by_role("textbox", name="名前").fill("hanako")
    page.get_by_role("textbox", name="パスワード").fill(PASSWORD)
    page.get_by_role("button", name="サインイン").click()
    page.get_by_role("heading", name=f"キャンセルリクエスト · {order_id}").wait_for()
    settle(page, 2800)  # the whole case page: tables below the window draw no canvas
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
    settle(page, 2800)
    assert " JST" not in page.inner_text("body")
    page.close()
