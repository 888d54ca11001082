"""`make soak`: many buyer cancel requests under random SP-API faults and random crashes.

Starts its own stack in a temporary HENPIN_HOME (Prefect server, the SP-API emulator with a state
file, `henpin runner`: the resident executor, flow runs as threads of one process; all on
127.0.0.1), loads merchant-fulfilled UNSHIPPED orders with buyer
cancel requests in two marketplaces (high-value ones go to an operator under policies.yaml's
`high-value` rule, cheap ones the policy cancels by itself), puts random fault modes in force,
and runs ingestion (`henpin poll`) repeatedly. Waiting cases are decided with `henpin decide
--json` (the inbox's code path): cancel or keep_order, some twice (a double click) or by two
operators at the same moment (only one may win). Meanwhile it SIGKILLs the runner and the
Prefect server at chosen moments, watching Prefect and the case store's outbox: while the runner
executes flow runs (RUNNING in Prefect under its name), while an action is stored but not
submitted, while a feed is `sending`, while a feed is `submitted` but its result not recorded,
while cases are mid-way, while operators decide. Then restarts them (and the emulator once, from
its state file); the runner under the same name, so it marks the runs it left running Crashed
(each kill's line says how many, and how many its restart marked). A part that stops by itself
(the runner after its server was gone too long, or recycling with exit 75) is started again by
the supervisor, as in `henpin up`.

At the end (every case closed, or the time limit) it checks from the emulator's side and the
case store that every case has one outcome, the right one for its decision; that every due
cancellation was applied exactly once at Amazon (successful BuyerCanceled messages per order in
`GET /_emulator/feeds`); and that every decision it saw accepted is stored. Last line:

    soak: C cases, L lost, D duplicated, K/N decisions kept

Exit 0 only when L = D = 0, K = N, and no case is unfinished or wrong.

    python bench/soak.py                       # 200 cases, at most 40 minutes
    SOAK_CASES=12 SOAK_SECONDS=240 python bench/soak.py
    python bench/soak.py --cases 12 --seconds 240 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_checks import AcceptedDecision, Seeded, Verdict, judge
from soak_stack import SoakStack

US, UK = "ATVPDKIKX0DER", "A1F83G8C2ARO7P"
MARKETS = {US: ("113", "USD", 200), UK: ("204", "GBP", 150)}  # id prefix, currency, high-value line
OPERATORS = ("aiko", "ben", "chika", "dai")
SETTLE_S = 600  # HENPIN_OUTBOX_SETTLE_S's default: a feed left `sending` is looked up after it
# What a short soak sets instead, so a runner killed mid-createFeed is seen within it: the soak
# runs against the emulator (demo mode), whose createFeed answers at once, so henpin/settings.py
# lets it settle sooner than against Amazon.
SHORT_SETTLE_S = 60
STALE_RUN_S = 60  # HENPIN_STALE_RUN_S for the soak (default 900): its flows run for seconds
REASONS = ("Ordered by mistake", "Found a better price", "Delivery date too late", "Duplicate")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --- configuration ------------------------------------------------------------------------------


@dataclass
class Config:
    cases: int
    seconds: float
    seed: int
    time_scale: float
    outbox_interval_s: float
    runner_kills: int
    server_kills: int
    emulator_restarts: int
    runner_limit: int
    waves: int
    keep: bool

    @property
    def long(self) -> bool:
        """Long enough for a feed left `sending` to be reconciled (outbox SETTLE) and resolved."""
        return self.seconds >= SETTLE_S + 300

    @property
    def settle_s(self) -> float:
        """HENPIN_OUTBOX_SETTLE_S for this soak: the default in a long one, shorter in a short
        one (its createFeed attempts last seconds: no lost answers, at most 4 s slow)."""
        return SETTLE_S if self.long else SHORT_SETTLE_S


def parse_args(argv: list[str] | None = None) -> Config:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=int(env.get("SOAK_CASES", 200)))
    p.add_argument("--seconds", type=float, default=float(env.get("SOAK_SECONDS", 2400)))
    p.add_argument("--seed", type=int, default=int(env.get("SOAK_SEED", time.time_ns() % 10**6)))
    p.add_argument("--time-scale", type=float, default=20.0, help="emulator simulated s per s")
    p.add_argument("--outbox-interval", type=float, default=2.0, help="HENPIN_OUTBOX_INTERVAL_S")
    p.add_argument("--runner-kills", type=int, default=None)
    p.add_argument("--server-kills", type=int, default=None)
    p.add_argument("--emulator-restarts", type=int, default=None)
    p.add_argument(
        "--runner-limit",
        type=int,
        default=4,
        help="henpin runner --limit (HENPIN_RUNNER_LIMIT)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary HENPIN_HOME")
    a = p.parse_args(argv)
    if not 1 <= a.cases <= 5000 or not 60 <= a.seconds <= 4 * 3600:
        p.error("--cases must be 1..5000 and --seconds 60..14400")
    return Config(
        cases=a.cases,
        seconds=a.seconds,
        seed=a.seed,
        time_scale=a.time_scale,
        outbox_interval_s=a.outbox_interval,
        runner_kills=a.runner_kills
        if a.runner_kills is not None
        else max(1, min(8, a.cases // 30)),
        server_kills=a.server_kills
        if a.server_kills is not None
        else max(1, min(5, a.cases // 50)),
        emulator_restarts=(
            a.emulator_restarts if a.emulator_restarts is not None else int(a.cases >= 50)
        ),
        runner_limit=a.runner_limit,
        waves=1 if a.cases < 30 else 3,
        keep=a.keep,
    )


# --- orders and faults --------------------------------------------------------------------------


def make_orders(cfg: Config, rng: random.Random) -> tuple[list[Seeded], list[dict[str, Any]]]:
    """UNSHIPPED merchant-fulfilled orders, every item with the buyer's cancel request; about
    half above the policy's high-value line."""
    seeded, orders = [], []
    now = datetime.now(UTC)
    for i in range(cfg.cases):
        market = US if i % 2 == 0 else UK
        prefix, currency, line = MARKETS[market]
        order_id = f"{prefix}-{cfg.seed % 10**7:07d}-{i:07d}"
        high = rng.random() < 0.5
        if high:
            prices = [rng.randint(line + 30, line * 4)]
        else:
            prices = [rng.randint(5, (line // 2) - 10) for _ in range(rng.choice((1, 1, 2)))]
        reason = rng.choice(REASONS)
        items = [
            {
                "orderItemId": f"{i:07d}{n:02d}{cfg.seed % 1000:03d}",
                "quantityOrdered": 1,
                "product": {
                    "asin": f"B0SOAK{n:04d}",
                    "title": f"Soak item {n}",
                    "sellerSku": f"SOAK-{n:03d}",
                    "price": {"unitPrice": {"amount": f"{price}.99", "currencyCode": currency}},
                },
                "cancellation": {
                    "cancellationRequest": {"requester": "BUYER", "cancelReason": reason}
                },
            }
            for n, price in enumerate(prices, start=1)
        ]
        created = (now - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        orders.append(
            {
                "orderId": order_id,
                "createdTime": created,
                "lastUpdatedTime": created,
                "salesChannel": {"channelName": "AMAZON", "marketplaceId": market},
                "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
                "orderItems": items,
            }
        )
        seeded.append(Seeded(order_id, market, high))
    return seeded, orders


def fault_settings(cfg: Config, rng: random.Random) -> dict[str, Any]:
    """Random fault modes (emulator `PUT /_emulator/faults`).

    Rules marked `answerLost` make createFeed's answer go missing (applied at Amazon, then a 500
    or a dropped connection; or a 503 the client cannot tell from one). Henpin then leaves the
    feed `sending` and looks it up only after the outbox's SETTLE (10 minutes), holding back
    that marketplace's feeds meanwhile, so these rules are used only in runs long enough, and
    lifted once a feed has been caught that way (`calm`)."""

    def r(lo: float, hi: float) -> float:
        return round(rng.uniform(lo, hi), 3)

    def rule(ops: str, rate: float, fault: str, **extra: Any) -> dict[str, Any]:
        return {"operations": ops.split(","), "rate": rate, "fault": fault, **extra}

    rules = [
        rule("searchOrders", r(0.05, 0.15), rng.choice(["500", "503"])),
        rule("searchOrders", r(0.05, 0.2), "slow", delaySeconds=2),
        rule("getOrder", r(0.03, 0.08), "429"),
        rule("getOrder", r(0.03, 0.08), rng.choice(["500", "503"])),
        rule("getOrder", r(0.01, 0.04), "malformed_json"),
        rule("getOrder", r(0.01, 0.03), "timeout", delaySeconds=2, then="drop"),
        rule("createFeedDocument", r(0.05, 0.15), "503"),
        rule("createFeed", r(0.05, 0.15), "429"),
        rule("createFeed", r(0.25, 0.4), "slow", delaySeconds=4),  # a window to crash in
        # The safety read right before acting, inside a case's flow run: a window to kill the
        # runner while it executes runs.
        rule("getOrder", r(0.2, 0.35), "slow", delaySeconds=3),
    ]
    if cfg.long:
        rules += [
            rule("createFeed", r(0.08, 0.15), "500", afterApply=True, answerLost=True),
            rule("createFeed", r(0.04, 0.08), "timeout", delaySeconds=3, then="drop")
            | {"afterApply": True, "answerLost": True},
            rule("createFeed", r(0.03, 0.06), "503", answerLost=True),
            rule("getFeeds", r(0.05, 0.15), "500"),
        ]
    rules += [
        rule("getFeed", r(0.05, 0.12), rng.choice(["500", "503"])),
        rule("getFeed", r(0.02, 0.06), "malformed_json"),
        rule("getFeed", r(0.02, 0.06), "429"),
        rule("getFeedDocument", r(0.03, 0.1), "503"),
        rule("*", r(0.01, 0.04), "slow", delaySeconds=1),
    ]
    return {
        "seed": cfg.seed,
        "rules": rules,
        "feeds": {"fatalRate": r(0.05, 0.15), "partialErrorRate": r(0.05, 0.15)},
        "reports": {"fatalRate": r(0.0, 0.1)},
    }


def for_emulator(faults: dict[str, Any], *, calm: bool = False) -> dict[str, Any]:
    """The settings to PUT: without the answer-lost rules when `calm`."""
    rules = [
        {k: v for k, v in rule.items() if k != "answerLost"}
        for rule in faults["rules"]
        if not (calm and rule.get("answerLost"))
    ]
    return {**faults, "rules": rules}


# --- the case store, read as it moves -----------------------------------------------------------


@dataclass
class StoreView:
    cases: list[dict[str, Any]] = field(default_factory=list)
    feed_states: Counter[str] = field(default_factory=Counter)
    pending_actions: int = 0

    def by_state(self) -> Counter[str]:
        return Counter(c["state"] for c in self.cases)


def read_store(path: Path, *, full: bool = False) -> tuple[StoreView, list[dict[str, Any]]]:
    """Cases, feed states and pending actions (and decisions when `full`); empty until the
    runner has created the store."""
    view, decisions = StoreView(), list[dict[str, Any]]()
    if not path.exists():
        return view, decisions
    try:
        db = sqlite3.connect(path, timeout=10)
        db.row_factory = sqlite3.Row
        try:
            view.cases = [
                dict(r)
                for r in db.execute(
                    "SELECT id, type, order_id, state, outcome, waiting_step, flow_run_id, "
                    "needs_attention, recommendation, run_to_finish FROM cases"
                )
            ]
            view.feed_states = Counter(
                {r[0]: r[1] for r in db.execute("SELECT status, count(*) FROM feeds GROUP BY 1")}
            )
            view.pending_actions = db.execute(
                "SELECT count(*) FROM actions WHERE status = 'pending'"
            ).fetchone()[0]
            if full:
                decisions = [
                    dict(r)
                    for r in db.execute(
                        "SELECT case_id, step, choice, operator, source, at FROM decisions"
                    )
                ]
        finally:
            db.close()
    except sqlite3.OperationalError:  # not migrated yet, or locked for longer than 10 s
        pass
    return view, decisions


# --- operators ----------------------------------------------------------------------------------


@dataclass
class DecideCall:
    case_id: int
    operator: str
    choice: str
    style: str
    rc: int
    accepted: bool
    message: str
    seconds: float


class Operators:
    """Decides waiting cases through `henpin decide --json`, some twice or two at once."""

    def __init__(self, stack: SoakStack, seed: int) -> None:
        self.stack = stack
        self.seed = seed
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="operator")
        self.lock = threading.Lock()
        self.calls: list[DecideCall] = []
        self.claimed: Counter[int] = Counter()  # case id -> decision jobs started
        self.jobs: dict[int, Future[None]] = {}
        self.signed_up = False

    def sign_up(self) -> None:
        """The soak's operators, as an admin adds them: `henpin decide` takes only the name of
        an active operator or admin (the store exists once a case is waiting)."""
        if self.signed_up:
            return
        from henpin.accounts import add_operator

        for name in OPERATORS:
            add_operator(f"sqlite:///{self.stack.store_path}", name)
        self.signed_up = True

    def in_flight(self) -> int:
        return sum(1 for j in self.jobs.values() if not j.done())

    def decide_waiting(self, waiting: list[dict[str, Any]], decided: set[int]) -> None:
        """Start deciding waiting cases (two jobs at a time; a case whose attempts all failed
        without a recorded decision is tried again, at most three times)."""
        if waiting:
            self.sign_up()
        for case in waiting:
            cid = case["id"]
            if self.in_flight() >= 2:
                return
            job = self.jobs.get(cid)
            if cid in decided or self.claimed[cid] >= 3 or (job is not None and not job.done()):
                continue
            self.claimed[cid] += 1
            self.jobs[cid] = self.pool.submit(self._job, cid, self.claimed[cid])

    def _job(self, case_id: int, attempt: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + case_id * 7 + attempt)
        style = rng.choices(["single", "double-click", "two-operators"], [0.55, 0.15, 0.3])[0]
        first = rng.choice(OPERATORS)
        choice = rng.choices(["cancel", "keep_order"], [0.6, 0.4])[0]
        if style == "single":
            plan = [(first, choice)]
        elif style == "double-click":
            plan = [(first, choice), (first, choice)]
        else:
            second = rng.choice([o for o in OPERATORS if o != first])
            plan = [(first, choice), (second, rng.choice(["cancel", "keep_order"]))]
        started = time.monotonic()
        procs = [
            (op, ch, self.stack.henpin_start(
                "decide", str(case_id), "--choice", ch, "--operator", op,
                "--note", f"soak {style}", "--json",
            ))
            for op, ch in plan
        ]  # fmt: skip
        for op, ch, proc in procs:
            try:
                out, err = proc.communicate(timeout=240)
            except Exception:
                proc.kill()
                out, err = proc.communicate()
            accepted, message = False, ""
            try:
                answer = json.loads(out)
                accepted = answer.get("accepted") is True
                message = answer.get("message") or answer.get("error") or ""
            except (json.JSONDecodeError, AttributeError):
                message = "no JSON answer: " + (err or out).strip()[-300:]
            with self.lock:
                self.calls.append(
                    DecideCall(
                        case_id, op, ch, style, proc.returncode, accepted, message,
                        round(time.monotonic() - started, 1),
                    )
                )  # fmt: skip

    def accepted(self) -> list[AcceptedDecision]:
        with self.lock:
            return [
                AcceptedDecision(c.case_id, c.operator, c.choice) for c in self.calls if c.accepted
            ]

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# --- crashes ------------------------------------------------------------------------------------


@dataclass
class Kill:
    target: str  # runner, prefect, emulator
    trigger: str  # pending, sending, submitted, running, deciding, any
    fired_on: str = ""  # the trigger, or "... (not seen: any time)" after its patience
    at_s: float = 0.0
    processes: int = 0
    restart_s: float = 0.0
    snapshot: str = ""
    # A runner kill: the flow runs it left RUNNING, and how many of them its restart (same name)
    # marked Crashed for housekeeping to start again.
    left_running: list[str] = field(default_factory=list)
    marked_crashed: int = 0


def plan_kills(cfg: Config) -> list[Kill]:
    """Runner kills: first while it executes flow runs, then through the outbox's risky moments
    (`sending` early, so its reconcile is seen through); Prefect server kills hit flow runs and decisions in progress; the
    emulator restarts once from its state file while feeds are being processed."""
    runner_cycle = ["executing", "submitted", "sending", "pending", "running", "submitted"]
    if not cfg.long:
        runner_cycle.remove("sending")
    server_cycle = ["running", "deciding", "submitted", "any"]
    runner = [Kill("runner", runner_cycle[i % len(runner_cycle)]) for i in range(cfg.runner_kills)]
    server = [Kill("prefect", server_cycle[i % len(server_cycle)]) for i in range(cfg.server_kills)]
    others = server[:1] + [Kill("emulator", "submitted") for _ in range(cfg.emulator_restarts)]
    others += server[1:]
    plan: list[Kill] = []
    while runner or others:
        if runner:
            plan.append(runner.pop(0))
        if others:
            plan.append(others.pop(0))
    return plan


def trigger_holds(trigger: str, view: StoreView, deciding: int, executing: int = 0) -> bool:
    states = view.by_state()
    if trigger == "executing":  # the runner executes flow runs (RUNNING in Prefect, its name)
        return executing > 0
    if trigger == "pending":  # an action stored, not yet submitted to Amazon
        return view.pending_actions > 0 or view.feed_states["preparing"] > 0
    if trigger == "sending":  # createFeed under way: maybe at Amazon, feedId not recorded
        return view.feed_states["sending"] > 0
    if trigger == "submitted":  # at Amazon, its result not yet recorded
        return view.feed_states["submitted"] > 0
    if trigger == "running":  # flow runs mid-way (case opened or acting)
        return states["open"] + states["acting"] > 0
    if trigger == "deciding":
        return deciding > 0
    return True


# --- the run ------------------------------------------------------------------------------------


class Soak:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.home = Path(tempfile.mkdtemp(prefix="henpin-soak-"))
        self.stack = SoakStack(
            home=self.home,
            time_scale=cfg.time_scale,
            outbox_interval_s=cfg.outbox_interval_s,
            marketplaces=[US, UK],
            runner_limit=cfg.runner_limit,
            settle_s=cfg.settle_s,
            stale_run_s=STALE_RUN_S,
        )
        self.started = time.monotonic()
        self.deadline = self.started + cfg.seconds
        self.seeded, self.orders = make_orders(cfg, self.rng)
        self.waves = [self.orders[i :: cfg.waves] for i in range(cfg.waves)]
        self.seeded_waves = 0
        self.operators = Operators(self.stack, cfg.seed)
        self.kills = plan_kills(cfg)
        self.kills_done: list[Kill] = []
        self.polls: list[dict[str, Any]] = []
        self.poll_thread: threading.Thread | None = None
        self.faults: dict[str, Any] = {}
        self.calm = False  # answer-lost createFeed faults lifted
        self.stuck: dict[str, list[int]] = {}  # flow-run state -> unfinished case ids
        self.phase_s: dict[str, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.deadline - time.monotonic()

    # -- start

    def start(self) -> None:
        log(f"HENPIN_HOME {self.home}; seed {self.cfg.seed}")
        self.stack.start("prefect")
        self.stack.start("emulator")
        self.faults = fault_settings(self.cfg, self.rng)
        self.stack.control("PUT", "/faults", json=for_emulator(self.faults))
        self.stack.start("runner")
        self.phase_s["start"] = round(self.elapsed(), 1)
        log(
            f"stack up in {self.phase_s['start']} s: prefect {self.stack.api}, emulator "
            f"{self.stack.emulator_url}; {len(self.faults['rules'])} fault rules, feeds "
            f"{self.faults['feeds']}"
        )

    def seed_wave(self) -> None:
        wave = self.waves[self.seeded_waves]
        # Updated a few minutes ago: inside the next poll's window (it reads up to 2 min ago).
        stamp = (datetime.now(UTC) - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for order in wave:
            order["lastUpdatedTime"] = stamp
        self.stack.control("POST", "/orders", json=wave)
        self.seeded_waves += 1
        log(f"wave {self.seeded_waves}/{len(self.waves)}: {len(wave)} orders loaded")
        self.poll_async()

    # -- ingestion, in the background

    def poll_async(self) -> None:
        if self.poll_thread is not None and self.poll_thread.is_alive():
            return

        def run() -> None:
            t = time.monotonic()
            rc, out, err = self.stack.henpin("poll", "--json", timeout=300)
            result: dict[str, Any] = {"rc": rc, "seconds": round(time.monotonic() - t, 1)}
            try:
                data = json.loads(out)
                result.update(found=data.get("found"), opened=len(data.get("opened", [])))
            except json.JSONDecodeError:
                lines = [x for x in err.strip().splitlines() if x.strip()]
                result["error"] = lines[-1][-200:] if lines else "no output"
            self.polls.append(result)
            log(f"poll: {result}")

        self.poll_thread = threading.Thread(target=run, name="poll", daemon=True)
        self.poll_thread.start()

    # -- crashes

    def fire(self, kill: Kill, fired_on: str, view: StoreView) -> None:
        kill.fired_on = fired_on
        kill.at_s = round(self.elapsed(), 1)
        states = view.by_state()
        kill.snapshot = (
            f"cases {dict(states)}; feeds {dict(view.feed_states)}; pending actions "
            f"{view.pending_actions}; deciding {self.operators.in_flight()}"
        )
        kill.processes = self.stack.kill(kill.target)
        if kill.target == "runner":  # its process is gone: what Prefect still has RUNNING
            kill.left_running = self.stack.executing()
            kill.snapshot += f"; flow runs left running {len(kill.left_running)}"
        log(f"KILL -9 {kill.target} ({kill.processes} processes) on '{fired_on}': {kill.snapshot}")
        time.sleep(self.rng.uniform(1, 4))
        t = time.monotonic()
        self.stack.start(kill.target)
        kill.restart_s = round(time.monotonic() - t, 1)
        log(f"{kill.target} restarted in {kill.restart_s} s")
        self.kills_done.append(kill)

    # -- main loop

    def run(self) -> Verdict:
        self.start()
        self.seed_wave()
        wave_gap = 90.0 if self.cfg.waves > 1 else 0.0
        next_wave = time.monotonic() + wave_gap
        next_poll = time.monotonic() + 45
        planned = len(self.kills)
        last_restart = time.monotonic()
        armed_at: float | None = None
        sending_since: float | None = None
        last_report = 0.0
        reserve = 20.0  # for the final checks
        while self.left() > reserve:
            # Parts that stopped by themselves (not the soak's kills) start again, as in
            # `henpin up`: the runner recycling (exit 75) or stopping without its server.
            if problem := self.stack.supervisor.check():
                log(f"supervisor: {problem}")
                break
            view, decisions = read_store(self.stack.store_path, full=True)
            now = time.monotonic()
            mine = [c for c in view.cases if c["type"] == "cancel-request"]
            states = Counter(c["state"] for c in mine)
            if now - last_report > 30:
                last_report = now
                log(
                    f"{self.elapsed():.0f} s: {len(mine)}/{self.cfg.cases} cases {dict(states)}; "
                    f"feeds {dict(view.feed_states)}; pending actions {view.pending_actions}; "
                    f"decide calls {len(self.operators.calls)}; kills {len(self.kills_done)}/"
                    f"{planned}"
                )
            all_seeded = self.seeded_waves == len(self.waves)
            if (
                all_seeded
                and states["closed"] == self.cfg.cases == len(mine)
                and not any(c["run_to_finish"] for c in mine)
                and self.operators.in_flight() == 0
            ):
                break
            if not all_seeded and now >= next_wave:
                self.seed_wave()
                next_wave = now + wave_gap
            if now >= next_poll:
                self.poll_async()
                next_poll = now + (45 if len(mine) < self.cfg.cases else 180)
            self.lift_answer_lost_faults(view, now, sending_since)
            sending_since = (sending_since or now) if view.feed_states["sending"] else None

            decided = {d["case_id"] for d in decisions}
            waiting = [c for c in mine if c["state"] == "waiting"]
            self.rng.shuffle(waiting)
            self.operators.decide_waiting(waiting, decided)

            # Kill i is armed once that share of the work is done, so work happens between
            # crashes and the last part of the run drains in peace.
            progress = (states["closed"] + 0.5 * (states["waiting"] + states["acting"])) / max(
                1, self.cfg.cases
            )
            due = (len(self.kills_done) + 1) / (planned + 1.5)
            quiet_end = min(150.0, 0.2 * self.cfg.seconds)  # no crash this close to the end
            if (
                self.kills
                and progress >= due
                and now - last_restart > 15
                and self.left() > quiet_end
            ):
                kill = self.kills[0]
                if kill.trigger == "sending" and self.left() < self.cfg.settle_s + 300:
                    kill.trigger = "submitted"  # too late to see a reconcile through
                armed_at = armed_at or now
                patience = 150 if kill.trigger == "sending" else 60
                executing = len(self.stack.executing()) if kill.trigger == "executing" else 0
                if trigger_holds(kill.trigger, view, self.operators.in_flight(), executing):
                    self.fire(self.kills.pop(0), kill.trigger, view)
                elif now - armed_at > patience:
                    self.fire(self.kills.pop(0), f"{kill.trigger} (not seen: any time)", view)
                else:
                    time.sleep(0.2)
                    continue
                armed_at = None
                last_restart = time.monotonic()
                continue
            time.sleep(0.5)
        self.phase_s["run"] = round(self.elapsed(), 1)
        return self.finish()

    def lift_answer_lost_faults(
        self, view: StoreView, now: float, sending_since: float | None
    ) -> None:
        """Once a feed has been left `sending` (an answer lost, or a crash mid-createFeed), or
        when too little time is left to reconcile another, stop losing createFeed answers."""
        if self.calm or not self.cfg.long:
            return
        caught = sending_since is not None and now - sending_since > 20
        if caught or self.left() < self.cfg.settle_s + 360:
            self.stack.control("PUT", "/faults", json=for_emulator(self.faults, calm=True))
            self.calm = True
            log(
                "createFeed answer-lost faults lifted ("
                + ("a feed is left 'sending'" if caught else "too late for another reconcile")
                + ")"
            )

    # -- verdict

    def finish(self) -> Verdict:
        log("stopping the runner; letting every feed at Amazon finish")
        self.operators.close()
        self.stack.kill("runner")
        if self.poll_thread is not None:
            self.poll_thread.join(timeout=30)
        self.stack.control("POST", "/clock/advance", json={"seconds": 600})
        orders = {o["orderId"]: o for o in self.stack.control("GET", "/orders")}
        feeds = self.stack.control("GET", "/feeds")
        fault_state = self.stack.control("GET", "/faults")
        calls = self.stack.control("GET", "/calls")
        view, decisions = read_store(self.stack.store_path, full=True)
        verdict = judge(
            self.seeded, orders, feeds, view.cases, decisions, self.operators.accepted()
        )
        self.stuck = self.run_states(
            [c for c in view.cases if c["state"] != "closed" or c["run_to_finish"]]
        )
        for kill in self.kills_done:
            kill.marked_crashed = sum(map(self.stack.crashed_by_restart, kill.left_running))
        self.phase_s["total"] = round(self.elapsed(), 1)
        self.report(verdict, feeds, fault_state, calls, view)
        return verdict

    def run_states(self, unfinished: list[dict[str, Any]]) -> dict[str, list[int]]:
        """Where the flow runs of unfinished cases stand in Prefect (Crashed, Running with no
        process, Late, Suspended, ...): tells a stuck case from a slow one."""
        stuck: dict[str, list[int]] = {}
        for case in unfinished[:300]:
            name = "no flow run"
            if case["flow_run_id"]:
                try:
                    run = httpx.get(f"{self.stack.api}/flow_runs/{case['flow_run_id']}", timeout=10)
                    state = run.json().get("state") or {}
                    name = f"{state.get('type')}/{state.get('name')}"
                except (httpx.HTTPError, ValueError):
                    name = "unknown (Prefect API)"
            stuck.setdefault(name, []).append(case["id"])
        return stuck

    def report(
        self,
        v: Verdict,
        feeds: list[dict[str, Any]],
        fault_state: dict[str, Any],
        calls: list[dict[str, Any]],
        view: StoreView,
    ) -> None:
        calls_by = self.operators.calls
        high = sum(1 for s in self.seeded if s.high_value)
        feed_status = Counter(f["processingStatus"] for f in feeds)
        kills = Counter(k.target for k in self.kills_done)
        injected = {
            k.removeprefix("injected:"): n for k, n in (fault_state.get("injected") or {}).items()
        }
        decide_results = Counter(
            "accepted"
            if c.accepted
            else "already decided"
            if "already decided" in c.message
            else "not waiting"
            if "not waiting" in c.message
            else "error"
            for c in calls_by
        )
        rows = [
            ("seed / time scale", f"{self.cfg.seed} / {self.cfg.time_scale:g}x"),
            ("cases (operator / policy)", f"{self.cfg.cases} ({high} / {self.cfg.cases - high})"),
            ("expected by decision", dict(v.expected)),
            ("case outcomes", dict(v.outcomes)),
            ("feeds at Amazon", f"{len(feeds)} {dict(feed_status)}"),
            ("feeds in case store", dict(view.feed_states)),
            ("SP-API calls", f"{len(calls)}, {sum(1 for c in calls if c.get('fault'))} faulted"),
            ("faults injected", injected),
            ("answer-lost faults lifted", self.calm),
            (
                "polls (rc 0 / all)",
                f"{sum(1 for p in self.polls if p['rc'] == 0)}/{len(self.polls)}",
            ),
            ("decide calls", f"{len(calls_by)} {dict(decide_results)}"),
            (
                "kills (done/planned)",
                f"{len(self.kills_done)}/{len(self.kills_done) + len(self.kills)} {dict(kills)}",
            ),
            (
                "runs left running by runner kills / marked Crashed by its restart",
                f"{sum(len(k.left_running) for k in self.kills_done)}/"
                f"{sum(k.marked_crashed for k in self.kills_done)}",
            ),
            ("restarts by the supervisor", dict(self.stack.supervisor.restarts)),
            ("wall time s", self.phase_s),
            ("lost", len(v.lost)),
            ("duplicated", len(v.duplicated)),
            ("wrong outcome", len(v.wrong)),
            ("unfinished", len(v.unfinished)),
            ("unfinished: flow run states", {k: len(ids) for k, ids in self.stuck.items()}),
            ("decisions kept", f"{v.decisions_kept}/{v.decisions_accepted}"),
        ]
        print()
        for k in self.kills_done:
            print(
                f"  kill {k.target:<8} at {k.at_s:>6.0f} s on {k.fired_on:<28} "
                f"({k.processes} proc, back in {k.restart_s} s): {k.snapshot}"
                + (
                    f"; {k.marked_crashed} of them marked Crashed by its restart"
                    if k.target == "runner"
                    else ""
                )
            )
        for name, problems in (
            ("LOST", v.lost),
            ("DUPLICATED", v.duplicated),
            ("WRONG", v.wrong),
            ("UNFINISHED", v.unfinished),
        ):
            for problem in problems[:25]:
                print(f"  {name}: {problem}")
            if len(problems) > 25:
                print(f"  {name}: ... and {len(problems) - 25} more")
        for state, ids in self.stuck.items():
            print(f"  unfinished cases whose flow run is {state}: {ids[:20]}")
        errors = [c for c in calls_by if not c.accepted and "already decided" not in c.message]
        for c in errors[:5]:
            print(f"  decide {c.case_id} {c.operator} {c.choice}: rc {c.rc}: {c.message[:160]}")
        print()
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        result = {
            "config": asdict(self.cfg),
            "rows": {name: value for name, value in rows},
            "kills": [asdict(k) for k in self.kills_done],
            "polls": self.polls,
            "decide_calls": [asdict(c) for c in calls_by],
            "lost": v.lost,
            "duplicated": v.duplicated,
            "wrong": v.wrong,
            "unfinished": v.unfinished,
            "unfinished_flow_runs": self.stuck,
            "last_line": v.last_line(),
        }
        out = self.home / "soak-result.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"  details: {out}; logs: {self.home / 'logs'}")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    soak = Soak(cfg)
    verdict: Verdict | None = None
    try:
        verdict = soak.run()
    except KeyboardInterrupt:
        log("interrupted")
    except Exception:
        traceback.print_exc()
    finally:
        soak.stack.stop_all()
    if verdict is None:
        print(f"soak: {cfg.cases} cases, ? lost, ? duplicated, ?/? decisions kept")
        return 2
    if verdict.ok and not cfg.keep:
        shutil.rmtree(soak.home, ignore_errors=True)
        print("  (temporary HENPIN_HOME removed; --keep keeps it)")
    print(verdict.last_line())
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
