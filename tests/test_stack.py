"""`henpin up` for real: the whole stack as a user starts it, driven through the CLI's --json.

Starts the Prefect server, the emulator with demo data, the runner and the inbox as child
processes in a temp HENPIN_HOME, then checks the CLI contract end to end and a clean stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent


def henpin(home: Path, *args: str, check: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HENPIN_HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, "-m", "henpin.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"henpin {' '.join(args)} failed: {out.stdout}\n{out.stderr}")
    return json.loads(out.stdout) if "--json" in args and out.stdout.strip() else out


def wait_for(what: str, probe: Any, timeout: float = 150.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "HENPIN_HOME": str(home),
            "HENPIN_EMULATOR_TIME_SCALE": "20",
            "HENPIN_OUTBOX_INTERVAL_S": "3",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "henpin.cli", "up"],
        env=env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_make_up_demo_then_decide_then_stop(stack: tuple[Path, subprocess.Popen[str]]) -> None:
    home, proc = stack
    status = wait_for(
        "the stack to be ready",
        lambda: (s := henpin(home, "status", "--json", check=False)) and s["ready"] and s,
    )
    assert status["emulator"].startswith("http://127.0.0.1:")
    assert status["prefect_api"].startswith("http://127.0.0.1:") and status["inbox"].startswith(
        "http://127.0.0.1:"
    )
    assert httpx.get(f"{status['inbox']}/_stcore/health", timeout=5).status_code == 200

    waiting = wait_for(
        "a case waiting for an operator",
        lambda: [
            c
            for c in henpin(home, "cases", "list", "--state", "waiting", "--json")
            if c["type"] == "cancel-request"
        ],
    )
    case = next(c for c in waiting if c["type"] == "cancel-request")
    # Demo mode logs in per region with region-bound demo tokens; every region gets through.
    regions = wait_for(
        "every region's login to be used",
        lambda: (
            (r := henpin(home, "status", "--json", check=False)["regions"])
            and all(entry["auth"] == "ok" for entry in r.values())
            and r
        ),
    )
    assert regions["EU"]["marketplaces"] == ["A1F83G8C2ARO7P", "A1PA6795UKMFR9"]
    assert set(regions) == {"NA", "EU", "FE"}
    assert {
        "id",
        "type",
        "order_id",
        "marketplace_id",
        "state",
        "outcome",
        "choices",
        "deadline",
    } <= set(case)
    assert (
        case["type"] == "cancel-request"
        and case["state"] == "waiting"
        and "cancel" in case["choices"]
    )

    # All five case types, among them the buyer who asked by e-mail to cancel (the demo opens
    # that case from the emulator's buyer message, as an operator would).
    every_type = {
        "cancel-request",
        "return-request",
        "cancel-by-message",
        "refused-delivery",
        "address-error",
    }
    wait_for(
        "a case of every type",
        lambda: every_type <= {c["type"] for c in henpin(home, "cases", "list", "--json")},
    )
    [asked] = httpx.get(f"{status['emulator']}/_emulator/buyer-messages", timeout=5).json()
    by_message = next(
        c
        for c in henpin(home, "cases", "list", "--json")
        if c["type"] == "cancel-by-message" and c["order_id"] == asked["orderId"]
    )
    assert by_message["details"]["buyer_message"] == asked["text"]
    # The demo application has Amazon's restricted role: the German reply goes to the mail
    # catcher's folder, addressed to the buyer's relay address.
    wait_for(
        "the reply to the buyer's message in the demo mailbox",
        lambda: [
            m
            for m in (home / "mail").glob("*.eml")
            if asked["from"] in (text := m.read_text(errors="replace")) and "Stornierung" in text
        ],
    )

    decided = henpin(
        home, "decide", str(case["id"]), "--choice", "cancel", "--operator", "demo", "--json"
    )  # the demo admin: `henpin decide` takes an active operator's or admin's name only
    assert decided["accepted"] is True

    def closed() -> Any:
        shown = henpin(home, "cases", "show", str(case["id"]), "--json")
        return shown if shown["state"] == "closed" else None

    shown = wait_for("the decided case to close", closed, timeout=240)
    assert shown["outcome"] == "cancelled-buyer-canceled"
    assert shown["decisions"][0]["operator"] == "demo"
    order = httpx.get(f"{status['emulator']}/_emulator/orders/{case['order_id']}", timeout=5).json()
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"

    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert henpin(home, "status", "--json", check=False)["ready"] is False
