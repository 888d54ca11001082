"""`henpin up` for real: the whole stack as a user starts it, driven through the CLI's --json.

One demo stack (Prefect server, emulator with demo data, mail catcher, runner, inbox, as child
processes of `henpin up` in a temp HENPIN_HOME) serves the tests of this module in order: the
CLI contract end to end, a second `henpin up` on its folder refused, its runner killed mid-run
and started again, and last a stop under load. A second, short-lived stack is killed with
`kill -9` to show that nothing outlives `henpin up`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from henpin.stack import StackLock, lock_holder, read_status
from tests.processes import (
    alive,
    collect_zombies,
    command_line,
    descendants,
    start_guarded,
    stop_group,
    wait_gone,
)
from tests.support import order_json, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
STOP_BOUND_S = 10.0  # the promise: Ctrl-C or SIGTERM stops everything within 10 s
ORPHAN_BOUND_S = 5.0  # after `kill -9` of `henpin up`, no child remains after 5 s


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


def store(home: Path) -> str:
    """The stack's case store (SQLite in its data folder), read here to see when to ask the CLI."""
    return f"sqlite:///{(home / 'henpin.db').resolve()}"


def cases_in(home: Path, state: str | None = None) -> list[Any]:
    """The stack's cases, read in this process: a cheap look before the CLI (a `henpin` process
    costs 2-3 s of imports, taken from the stack it waits for on a 2-core machine) is asked for
    what the test checks."""
    from henpin.app.cases import list_cases

    try:
        return list_cases(store(home), state=state)
    except Exception:  # not made yet
        return []


@dataclass
class Up:
    """A running `henpin up` and its data folder."""

    home: Path
    proc: subprocess.Popen[bytes]
    output: Path

    def status(self) -> dict[str, Any]:
        return dict(henpin(self.home, "status", "--json", check=False))

    def wait_ready(self) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (
                    self.proc.poll() is None
                    and read_status(self.home)["ready"]
                    and (s := self.status())["ready"]
                    and s
                ),
                "the stack to be ready",
                timeout=150.0,
                every=1.0,
            )
        )

    def part(self, command: str) -> int:
        """The pid of the child of `henpin up` whose command line has `command`."""
        return next(p for p in descendants(self.proc.pid) if command in command_line(p))


def start_up(home: Path, *args: str, **env: str) -> Up:
    """`henpin up` as a user starts it, in a process group of its own that dies with the
    session (tests/processes.py); its terminal output goes to a file next to the home."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base.update({"HENPIN_HOME": str(home), "HENPIN_EMULATOR_TIME_SCALE": "20", **env})
    output = home.with_name(home.name + "-up.out")
    with output.open("wb") as out:  # the child has its own copy
        proc = start_guarded(
            [sys.executable, "-m", "henpin.cli", "up", *args],
            env=base,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Up(home, proc, output)


def stop_and_check_nothing_left(up: Up) -> None:
    """Teardown on every path (failure and timeout included): stop `henpin up`, and make sure
    none of its processes is left (SIGKILL what is)."""
    family = descendants(up.proc.pid)
    stop_group(up.proc, grace=30)
    left = wait_gone(family, ORPHAN_BOUND_S)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    collect_zombies()
    assert not left, f"left running: {[command_line(p) for p in left]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("stack") / "home"
    # A killed flow run is RUNNING for good: housekeeping starts it again after this long.
    up = start_up(home, HENPIN_OUTBOX_INTERVAL_S="3", HENPIN_STALE_RUN_S="60")
    try:
        yield up
    finally:
        stop_and_check_nothing_left(up)


def test_make_up_demo_then_decide(stack: Up) -> None:
    home = stack.home
    status = stack.wait_ready()
    assert status["emulator"].startswith("http://127.0.0.1:")
    assert status["prefect_api"].startswith("http://127.0.0.1:") and status["inbox"].startswith(
        "http://127.0.0.1:"
    )
    assert httpx.get(f"{status['inbox']}/_stcore/health", timeout=5).status_code == 200
    # The server writes task runs and events in batches (henpin/supervisor/parts.py).
    served = httpx.get(f"{status['prefect_api']}/admin/settings", timeout=10).json()
    recorder = served["server"]["services"]["task_run_recorder"]
    assert (recorder["batch_size"], recorder["flush_interval"]) == (200, 1.0)

    waiting = wait_for(
        lambda: (
            any(c.type == "cancel-request" for c in cases_in(home, "waiting"))
            and [
                c
                for c in henpin(home, "cases", "list", "--state", "waiting", "--json")
                if c["type"] == "cancel-request"
            ]
        ),
        "a case waiting for an operator",
        timeout=150.0,
        every=1.0,
    )
    case = next(c for c in waiting if c["type"] == "cancel-request")
    # Demo mode logs in per region with region-bound demo tokens; every region gets through.
    regions = wait_for(
        lambda: (
            (r := henpin(home, "status", "--json", check=False)["regions"])
            and all(entry["auth"] == "ok" for entry in r.values())
            and r
        ),
        "every region's login to be used",
        timeout=150.0,
        every=1.0,
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
        lambda: (
            every_type <= {c.type for c in cases_in(home)}
            and every_type <= {c["type"] for c in henpin(home, "cases", "list", "--json")}
        ),
        "a case of every type",
        timeout=150.0,
        every=1.0,
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
        lambda: [
            m
            for m in (home / "mail").glob("*.eml")
            if asked["from"] in (text := m.read_text(errors="replace")) and "Stornierung" in text
        ],
        "the reply to the buyer's message in the demo mailbox",
        timeout=150.0,
        every=1.0,
    )

    decided = henpin(
        home, "decide", str(case["id"]), "--choice", "cancel", "--operator", "demo", "--json"
    )  # the demo admin: `henpin decide` takes an active operator's or admin's name only
    assert decided["accepted"] is True

    def closed() -> Any:
        if not any(c.id == case["id"] and c.state == "closed" for c in cases_in(home, "closed")):
            return None
        shown = henpin(home, "cases", "show", str(case["id"]), "--json")
        return shown if shown["state"] == "closed" else None

    shown = wait_for(closed, "the decided case to close", timeout=480, every=1.0)
    assert shown["outcome"] == "cancelled-buyer-canceled"
    assert shown["decisions"][0]["operator"] == "demo"
    order = httpx.get(f"{status['emulator']}/_emulator/orders/{case['order_id']}", timeout=5).json()
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    # The parts' output goes to their logs in the data folder.
    prefect_log = (home / "logs" / "prefect.log").read_text(errors="replace")
    assert f"Check out the dashboard at {status['prefect_ui']}" in prefect_log


def test_a_second_up_on_the_folder_refuses_naming_the_running_stack(stack: Up) -> None:
    status = stack.wait_ready()
    second = henpin(stack.home, "up", check=False)
    assert second.returncode == 3
    assert f"pid {stack.proc.pid}" in second.stderr
    assert f"inbox {status['inbox']}" in second.stderr
    assert f"Prefect UI {status['prefect_ui']}" in second.stderr
    assert "Starting Henpin" not in second.stdout  # nothing was started
    # `henpin status` names the holder of the folder's lock: the first stack.
    holder = stack.status()["lock"]
    assert holder["pid"] == stack.proc.pid
    assert (holder["inbox"], holder["prefect_ui"]) == (status["inbox"], status["prefect_ui"])
    assert Path(holder["home"]) == stack.home.resolve()
    assert stack.proc.poll() is None and stack.status()["ready"]
    # Only the first stack's parts run: one each.
    parts = ("henpin.prefect_serve", "henpin.cli runner", "streamlit", "henpin.cli emulator")
    assert sum(
        any(p in command_line(pid) for p in parts) for pid in descendants(stack.proc.pid)
    ) == len(parts)


def cheap_orders(emulator: str, prefix: str, count: int) -> list[str]:
    """Buyer cancel requests the policy cancels at once, updated now (the next poll sees them)."""
    now = datetime.fromisoformat(httpx.get(f"{emulator}/_emulator/clock", timeout=5).json()["now"])
    ids = [f"{prefix}-{n:07d}" for n in range(1, count + 1)]
    orders = []
    for order_id in ids:
        order = order_json(order_id, price="19.99", created=now - timedelta(hours=2))
        order["lastUpdatedTime"] = (
            (now - timedelta(seconds=30)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        orders.append(order)
    httpx.post(f"{emulator}/_emulator/orders", json=orders, timeout=10).raise_for_status()
    return ids


RUNNER_NAME = "henpin-runner"  # `henpin runner`'s name in Prefect, as `henpin up` starts it


def runs_in_the_runner(status: dict[str, Any], orders: Iterable[str] = ()) -> list[str]:
    """Flow runs the runner is executing (threads of its one process, the resident executor):
    RUNNING in Prefect and claimed under its name; with `orders`, only those orders' runs."""
    body = {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}, "limit": 200}
    runs = httpx.post(f"{status['prefect_api']}/flow_runs/filter", json=body, timeout=10).json()
    wanted = tuple(orders)
    return [
        str(r["id"])
        for r in runs
        if (r.get("labels") or {}).get("prefect.worker.name") == RUNNER_NAME
        and (not wanted or str(r["name"]).endswith(wanted))
    ]


def run_states(status: dict[str, Any], flow_run_id: str) -> list[dict[str, Any]]:
    """The run's state history, as Prefect's API gives it."""
    states: list[dict[str, Any]] = httpx.get(
        f"{status['prefect_api']}/flow_run_states/",
        params={"flow_run_id": flow_run_id},
        timeout=10,
    ).json()
    return states


def last_state_before(status: dict[str, Any], flow_run_id: str, moment: datetime) -> str:
    """The type of the run's last state stamped at or before `moment`."""
    stamped = sorted(
        (datetime.fromisoformat(s["timestamp"]), str(s["type"]))
        for s in run_states(status, flow_run_id)
    )
    return [kind for at, kind in stamped if at <= moment][-1]


def crashed_by_the_runners_restart(status: dict[str, Any], flow_run_id: str) -> bool:
    """The run's history has the Crashed state a runner started again under the same name gives
    the runs it left running (henpin/resident.py), for housekeeping to start them again."""
    return any(
        s["type"] == "CRASHED" and f"({RUNNER_NAME}) stopped" in (s.get("message") or "")
        for s in run_states(status, flow_run_id)
    )


def test_a_runner_killed_mid_run_is_started_again_and_its_cases_finish(stack: Up) -> None:
    status = stack.wait_ready()
    runner = stack.part("henpin.cli runner")
    ids = cheap_orders(status["emulator"], "113-7100000", 6)
    # Each run reads its order again right before cancelling: 3 s there keeps it running long
    # enough to be seen (a run takes a fraction of a second, and its worker label follows it).
    slow = {
        "rules": [{"operations": ["getOrder"], "rate": 1.0, "fault": "slow", "delaySeconds": 3}]
    }
    httpx.put(f"{status['emulator']}/_emulator/faults", json=slow, timeout=10).raise_for_status()
    # The poll returns once ingestion is done, which reads some orders (return requests') with
    # the same slow getOrder: the cases' runs start meanwhile.
    polled = threading.Thread(target=henpin, args=(stack.home, "poll", "--json"))
    polled.start()
    wait_for(
        lambda: runs_in_the_runner(status, ids),
        "a case's run in the runner",
        timeout=120,
        every=0.1,
    )
    os.killpg(runner, signal.SIGKILL)  # the runner and the runs it was executing (its threads)
    killed_at = datetime.now(UTC)
    seen_running = runs_in_the_runner(status)  # RUNNING in Prefect, with no process behind them

    again = wait_for(
        lambda: (
            read_status(stack.home)["restarts"].get("runner", 0) >= 1
            and (r := stack.status()["restarts"]).get("runner", 0) >= 1
            and r
        ),
        "the runner to be started again",
        timeout=60,
        every=1.0,
    )
    assert again["runner"] == 1
    assert stack.part("henpin.cli runner") != runner
    assert "runner stopped (exit code -9); starting it again" in stack.output.read_text()
    assert "runner started again" in (stack.home / "logs" / "supervisor.log").read_text()
    polled.join(120)
    # A state the runner sent just before the kill (a suspension, the end) may have reached the
    # server after the read above. A state's timestamp is its sender's: the runs left running
    # are those whose last state stamped before the kill is RUNNING.
    left = [r for r in seen_running if last_state_before(status, r, killed_at) == "RUNNING"]
    assert left, "the runs seen executing a moment ago all ended before the kill"

    def outcomes() -> dict[str, Any] | None:
        if sum(c.order_id in ids for c in cases_in(stack.home, "closed")) < len(ids):
            return None
        cases = [c for c in henpin(stack.home, "cases", "list", "--json") if c["order_id"] in ids]
        done = {c["order_id"]: c["outcome"] for c in cases if c["state"] == "closed"}
        return done if len(done) == len(ids) else None

    done = wait_for(
        outcomes, "the killed runner's cases to reach their outcomes", timeout=480, every=1.0
    )
    assert done == dict.fromkeys(ids, "cancelled-buyer-canceled")
    # The runs it left running were marked Crashed by the runner started again (same name), not
    # left for housekeeping's stale-run time.
    assert [r for r in left if not crashed_by_the_runners_restart(status, r)] == []


def test_a_stop_under_load_ends_every_part_within_10_s(stack: Up) -> None:
    status = stack.wait_ready()
    runner = stack.part("henpin.cli runner")
    cheap_orders(status["emulator"], "113-7200000", 24)
    henpin(stack.home, "poll", "--json")
    wait_for(lambda: runs_in_the_runner(status), "the runner to be busy", timeout=120, every=0.1)
    family = descendants(stack.proc.pid)
    assert runner in family
    assert len(family) >= 6  # reaper, Prefect server, emulator, mail, runner, inbox

    started = time.monotonic()
    os.kill(stack.proc.pid, signal.SIGTERM)
    code = stack.proc.wait(timeout=60)
    took = time.monotonic() - started
    assert code == 0
    assert took <= STOP_BOUND_S, f"the stop took {took:.1f} s"
    assert wait_gone(family, 1.0) == []  # SIGKILLed ones may take a moment to exit
    collect_zombies()
    assert stack.status()["ready"] is False
    assert stack.status()["lock"] is None  # the folder is free again
    assert "Stopping Henpin" in stack.output.read_text()


def test_kill_9_of_up_leaves_no_child(tmp_path: Path) -> None:
    up = start_up(tmp_path / "home", "--no-demo-data")
    try:
        up.wait_ready()
        family = descendants(up.proc.pid)
        assert len(family) >= 5  # reaper, Prefect server, emulator, mail, runner, inbox
        os.kill(up.proc.pid, signal.SIGKILL)
        up.proc.wait()
        left = wait_gone(family, ORPHAN_BOUND_S)
        assert left == [], f"left running: {[command_line(p) for p in left]}"
        # The reaper held the folder's lock until the children were gone; it is free now.
        assert lock_holder(up.home) is None
    finally:
        stop_and_check_nothing_left(up)


def test_a_stale_lock_is_taken_over_with_a_line_saying_so(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "stack.lock").write_text(json.dumps({"pid": gone.pid, "since": "yesterday"}))
    said: list[str] = []
    lock = StackLock(tmp_path)
    lock.acquire(say=said.append)
    try:
        assert said == [
            "henpin up: taking over the lock of a stack that is no longer running "
            f"(pid {gone.pid}, since yesterday)"
        ]
        holder = lock_holder(tmp_path)
        assert holder is not None and holder["pid"] == os.getpid()
    finally:
        lock.release()
    assert lock_holder(tmp_path) is None


HANGING_TEST = """
import sys, time
from pathlib import Path
from tests.processes import start_guarded

def test_hangs(tmp_path):
    child = start_guarded([sys.executable, "-c", "import time; time.sleep(600)"])
    Path({pid_file!r}).write_text(str(child.pid))
    time.sleep(600)  # until the session is killed, as a timeout kills it
"""


def test_a_test_session_killed_on_timeout_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    (tmp_path / "test_hangs.py").write_text(HANGING_TEST.format(pid_file=str(pid_file)))
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        child = int(
            wait_for(
                lambda: pid_file.exists() and pid_file.read_text(),
                "the hanging test's process",
                60,
                every=1.0,
            )
        )
        assert alive(child)
        os.kill(session.pid, signal.SIGKILL)  # what a CI timeout does
        session.wait()
        assert wait_gone([child], ORPHAN_BOUND_S) == []
    finally:
        stop_group(session, grace=1)
        collect_zombies()
