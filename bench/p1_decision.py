"""P1: an operator's decision → the resumed flow has stored its Amazon action in the outbox.

Decisions go through `henpin.app.decide.decide` (the inbox's and `henpin decide`'s code path: record
the one winner, resume the suspended run). The latency of one decision runs from just before
`decide` to the `created_at` the resumed run wrote on its outbox action (both on this machine's
clock). Decisions are made one every `gap_s` seconds, as a small team of operators would.

Executors compared on the same waiting cases:
- the served runner (`henpin runner`) at Prefect's default poll (10 s) and at a lowered
  PREFECT_RUNNER_POLL_FREQUENCY: each resumed run is a new process;
- a resident executor (bench/resident_executor.py): one long-lived process that looks for
  resumed runs every 0.2 s and runs them in-process, to show what removes the poll and the
  process start.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from common import ROOT, log, percentile, wait_until
from single import SingleStack


def waiting_cases(store: str) -> list[int]:
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(store) as s:
        return list(s.scalars(select(Case.id).where(Case.state == "waiting").order_by(Case.id)))


def action_times(store: str, case_ids: list[int]) -> dict[int, float]:
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Action

    with session_scope(store) as s:
        rows = s.execute(
            select(Action.case_id, Action.created_at).where(Action.case_id.in_(case_ids))
        ).all()
    return {int(c): at.timestamp() for c, at in rows if c is not None}


def decide_and_measure(
    stack: SingleStack, cases: list[int], gap_s: float, timeout: float
) -> dict[str, Any]:
    from henpin.app.decide import decide

    decided_at: dict[int, float] = {}
    resume_call_s: list[float] = []
    with stack.settings():
        for case_id in cases:
            started = time.time()
            result = decide(stack.store, case_id, choice="cancel", operator="bench", source="cli")
            resume_call_s.append(time.time() - started)
            if not result.resumed:
                log(f"P1: case {case_id} was not resumed at once: {result.message}")
            decided_at[case_id] = started
            time.sleep(gap_s)
    stored = wait_until(
        "every decided case to store its action",
        lambda: (t := action_times(stack.store, cases)) and len(t) == len(cases) and t,
        timeout=timeout,
    )
    latencies = [stored[c] - decided_at[c] for c in cases]
    return {
        "decisions": len(cases),
        "gap_s": gap_s,
        "p50_s": round(percentile(latencies, 50), 2),
        "p95_s": round(percentile(latencies, 95), 2),
        "max_s": round(max(latencies), 2),
        "decide_call_p50_s": round(percentile(resume_call_s, 50), 3),
        # Each decision in order, seconds from the start of the series and its latency: a tail
        # shows whether slow decisions came together (a burst of woken runs) or alone.
        "series": [
            [round(decided_at[c] - decided_at[cases[0]], 1), round(stored[c] - decided_at[c], 2)]
            for c in cases
        ],
    }


def run(stack: SingleStack, *, decisions: dict[str, int], gap_s: float) -> dict[str, Any]:
    """`decisions`: how many decisions per executor, keyed `runner_poll_<N>s` or
    `resident_executor`."""
    cases = waiting_cases(stack.store)
    needed = sum(decisions.values())
    if len(cases) < needed:
        raise RuntimeError(f"P1 needs {needed} waiting cases, P4 left {len(cases)}")
    results: dict[str, Any] = {}
    for label, count in decisions.items():
        batch, cases = cases[:count], cases[count:]
        if label == "resident_executor":
            results[label] = resident(stack, batch, gap_s)
            continue
        poll = int(label.removeprefix("runner_poll_").removesuffix("s"))
        stack.start_runner(poll)
        log(f"P1 runner poll {poll} s: {len(batch)} decisions, one every {gap_s} s")
        results[label] = decide_and_measure(stack, batch, gap_s, timeout=300)
        log(f"P1 runner poll {poll} s: {results[label]}")
    return results


def resident(stack: SingleStack, batch: list[int], gap_s: float) -> dict[str, Any]:
    stack.stop_runner()
    stack.children.spawn(
        "resident-executor",
        [sys.executable, str(ROOT / "bench" / "resident_executor.py")],
        stack.henpin_env(),
    )
    wait_until(
        "the resident executor to be ready",
        lambda: "ready" in (stack.children.logs / "resident-executor.log").read_text(),
        timeout=120,
    )
    log(f"P1 resident executor: {len(batch)} decisions")
    result = decide_and_measure(stack, batch, gap_s, timeout=120)
    log(f"P1 resident executor: {result}")
    stack.wait_idle()  # stopping it mid-run would leave a run Running for good
    stack.children.stop("resident-executor")
    return result
