"""P1: an operator's decision → the resumed flow has stored its Amazon action in the outbox.

Decisions go through `henpin.app.decide.decide` (the inbox's and `henpin decide`'s code path: record
the one winner, resume the suspended run). The latency of one decision runs from just before
`decide` to the `created_at` the resumed run wrote on its outbox action (both on this machine's
clock). Decisions are made one every `gap_s` seconds, as a small team of operators would.

Executors compared on the same kind of waiting cases, in one run:
- `resident`: `henpin runner` as `henpin up` runs it, the resident executor (henpin/resident.py):
  one long-lived process claims the resumed run (woken by Prefect's Resuming/Scheduled event,
  else its HENPIN_RUNNER_QUERY_S poll) and runs it in a thread;
- `runner_poll_<N>s`: the former runner, `henpin runner --process-per-run --limit 4`, at
  PREFECT_RUNNER_POLL_FREQUENCY=N: each resumed run is a new process.
The burst case (a finished feed waking many cases at once) is bench/p1_burst.py.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from common import log, percentile, wait_until
from single import SingleStack


def waiting_cases(store: str, order_prefix: str = "") -> list[int]:
    """Waiting cases (of orders whose id starts with `order_prefix`), oldest first."""
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(store) as s:
        return list(
            s.scalars(
                select(Case.id)
                .where(Case.state == "waiting", Case.order_id.startswith(order_prefix))
                .order_by(Case.id)
            )
        )


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
    phases = breakdown(stack, {c: (decided_at[c], stored[c]) for c in cases})
    return {
        "decisions": len(cases),
        "gap_s": gap_s,
        "p50_s": round(percentile(latencies, 50), 2),
        "p95_s": round(percentile(latencies, 95), 2),
        "max_s": round(max(latencies), 2),
        "decide_call_p50_s": round(percentile(resume_call_s, 50), 3),
        # Where the time goes (median s of each phase, from Prefect's state and task-run times).
        "phases_p50_s": phases,
        # Each decision in order, seconds from the start of the series and its latency: a tail
        # shows whether slow decisions came together (a burst of woken runs) or alone.
        "series": [
            [round(decided_at[c] - decided_at[cases[0]], 1), round(stored[c] - decided_at[c], 2)]
            for c in cases
        ],
    }


#: Phases of one decision, in order: the decision and the resume call; the executor claiming
#: the resumed run; submitting it (the worker's Pending and Submitting proposals, its job
#: configuration, labels); Prefect's engine starting the flow; the flow replaying its finished
#: steps from cached results up to the step that acts; that step storing the action.
PHASES = ("decide_resume", "claim", "submit", "engine_start", "replay_cached_steps", "act")
ACTING_TASK = "queue-cancellation"


def breakdown(stack: SingleStack, times: dict[int, tuple[float, float]]) -> dict[str, float]:
    """Median seconds of each of PHASES over the decided cases (`times`: case → decided at,
    action stored at), read from Prefect's flow-run states and task runs; phases a run does not
    show (a process-per-run runner has no Submitting) are left out."""
    import statistics

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from sqlalchemy import select

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(stack.store) as s:
        runs = dict(s.execute(select(Case.id, Case.flow_run_id).where(Case.id.in_(times))).all())
    found: dict[str, list[float]] = {p: [] for p in PHASES}
    with stack.settings(), get_client(sync_client=True) as client:
        for case_id, (decided, stored) in times.items():
            run_id = runs.get(case_id)
            if not run_id:
                continue
            at: dict[str, float] = {}
            for state in client.read_flow_run_states(run_id):
                t = state.timestamp.timestamp()
                if t >= decided - 0.5 and state.name not in at:
                    at[state.name] = t
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            )
            # When each task began, by the run's own clock: its start, else when it was
            # expected to (a step replayed from its cached result never runs). Not `created`:
            # Prefect's server creates a task run's record from the events the run sends, so
            # that time can come after the task stored its action (the "act" phase came out
            # negative with it).
            created = sorted(
                (began.timestamp(), t.name)
                for t in tasks
                if (began := t.start_time or t.expected_start_time or t.created) is not None
            )
            after = [(t, name) for t, name in created if t >= at.get("Running", stored)]
            first = after[0][0] if after else None
            acting = next((t for t, name in after if name.startswith(ACTING_TASK)), None)
            marks = [
                decided,
                at.get("Resuming") or at.get("Scheduled"),
                at.get("Pending"),
                at.get("Running"),
                first,
                acting,
                stored,
            ]
            for phase, (a, b) in zip(PHASES, itertools.pairwise(marks), strict=True):
                if a is not None and b is not None:
                    found[phase].append(b - a)
    return {p: round(statistics.median(v), 3) for p, v in found.items() if v}


def run(
    stack: SingleStack, *, decisions: dict[str, int], gap_s: float, order_prefix: str = ""
) -> dict[str, Any]:
    """`decisions`: how many decisions per executor, keyed `resident` or `runner_poll_<N>s`
    (in that order of the dict); on waiting cases of orders starting with `order_prefix`. The
    resident executor is running again at the end."""
    cases = waiting_cases(stack.store, order_prefix)
    needed = sum(decisions.values())
    if len(cases) < needed:
        raise RuntimeError(f"P1 needs {needed} waiting cases, {len(cases)} are waiting")
    results: dict[str, Any] = {}
    for label, count in decisions.items():
        batch, cases = cases[:count], cases[count:]
        if label == "resident":
            stack.start_runner()
            what = "resident executor (henpin runner)"
        else:
            poll = int(label.removeprefix("runner_poll_").removesuffix("s"))
            stack.start_runner(poll)
            what = f"process-per-run runner, poll {poll} s"
        log(f"P1 {what}: {len(batch)} decisions, one every {gap_s} s")
        results[label] = decide_and_measure(stack, batch, gap_s, timeout=300)
        results[label]["executor"] = what
        log(f"P1 {what}: {results[label]}")
    stack.start_runner()
    return results
