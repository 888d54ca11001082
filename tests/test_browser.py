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

from henpin.mailcatcher import CaughtMail, MailCatcher
from henpin.service import add_operator
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
SCREENSHOTS = REPO / "docs" / "screenshots"
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
    with served_inbox(home) as base:
        yield {"url": base, "store": url, "case_id": case_id, "address_case_id": address_case_id}


@contextmanager
def served_inbox(home: Path) -> Iterator[str]:
    """`streamlit run ui/inbox.py` on 127.0.0.1 over the data folder `home`; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "HENPIN_HOME": str(home),
        "HENPIN_SESSION_HOURS": "8",
        "HENPIN_POLICIES": str(REPO / "policies.yaml"),  # as `henpin up` finds it
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


def settle(page: Any, height: int) -> None:
    """Wait until Streamlit has finished running the page, then size the window to show it all
    (Streamlit scrolls inside its own container, so a full-page screenshot would not)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')"
    )
    page.set_viewport_size({"width": 1440, "height": height})
    # Tables and charts draw after the script ends: first a grey placeholder (a skeleton),
    # then a table is a canvas.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid^=\"stSkeleton\"]') && "
        "[...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
        ".every(t => t.querySelector('canvas'))"
    )
    page.wait_for_timeout(600)


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


def test_a_photo_attached_at_inspection_appears_in_the_claim_pack(
    inspection_inbox: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
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
    page.locator(f".st-key-decide-{case_id}-field-condition").get_by_role("combobox").click()
    page.get_by_role("option").last.click()
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
    SCREENSHOTS.mkdir(exist_ok=True)
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
            from tasks.notifications import send_notifications
            from tasks.store import store_url

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
            assert (SCREENSHOTS / name).is_file(), (
                f"{doc.name} shows {name}: not in docs/screenshots"
            )
    assert {"inbox.png", "case.png", "dashboard.png", "notification.png"} <= shown["README.md"]
    assert {"inbox.png", "case.png", "case-photos.png", "dashboard.png", "notification.png"} <= (
        shown["inbox.md"]
    )
    assert "screenshots/" not in (REPO / ".gitignore").read_text().splitlines()
    assert {p.name for p in SCREENSHOTS.glob("*.png")} <= taken  # no picture left from before
