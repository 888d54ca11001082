"""Housekeeping, every few seconds: Amazon actions out and results in, deadlines, stragglers,
and telling people what needs them.

The round, in order (`STEPS`, written once):
1. withdraw the unsent Amazon actions of cases whose run was cancelled in Prefect, and flag
   those cases (first, so that nothing such a run queued is sent);
2. send the Amazon actions the cases queued, and record the results Amazon has finished;
3. wake the acting cases whose Amazon results are all in;
4. answer the questions whose deadline passed with their named timeout choice;
5. resume the waiting runs whose question already has an answer;
6. start the runs of cases a stopped process opened but never started;
7. start again the runs a dead process left behind (or flag the case after too many);
8. take buyers' personal data out of cases closed longer ago than the retention;
9. tell people what needs them.

The flow runs each step as a Prefect task run (a run started by hand in the Prefect UI); the
runner's housekeeper thread runs the same steps every few seconds without a flow run each time
(`housekeeping_round`). Both report the same counts under the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from typing import Any, NamedTuple

from prefect import Task, flow

from henpin.housekeeping import OutboxRound
from tasks.notifications import send_notifications
from tasks.sweep import (
    apply_passed_deadlines,
    purge_buyer_data,
    record_cancelled_runs,
    restart_stranded_runs,
    resume_decided_cases,
    send_amazon_actions,
    start_unstarted_cases,
    wake_cases_with_amazon_results,
)

Report = dict[str, int]


class Step(NamedTuple):
    """One housekeeping step: its task, and what the round's report counts of its result.
    (Not a dataclass: Prefect loads this file by its path, under a module name that is not in
    `sys.modules`, where a dataclass cannot resolve its annotations.)"""

    task: Task[..., Any]
    counts: Callable[[Any], Report]


def counted(name: str) -> Callable[[Sized], Report]:
    """The report counts the cases (or messages) the step handled, under `name`."""
    return lambda done: {name: len(done)}


def outbox_counts(done: OutboxRound) -> Report:
    return {"feeds_sent": done.feeds_sent, "actions_finished": done.actions_finished}


STEPS: tuple[Step, ...] = (
    Step(record_cancelled_runs, counted("runs_cancelled")),
    Step(send_amazon_actions, outbox_counts),
    Step(wake_cases_with_amazon_results, counted("cases_woken")),
    Step(apply_passed_deadlines, counted("deadlines_applied")),
    Step(resume_decided_cases, counted("cases_resumed")),
    Step(start_unstarted_cases, counted("cases_started")),
    Step(restart_stranded_runs, counted("runs_restarted")),
    Step(purge_buyer_data, counted("buyer_data_purged")),
    Step(send_notifications, counted("notifications")),
)


def _round(run: Callable[[Task[..., Any]], Any]) -> Report:
    report: Report = {}
    for step in STEPS:
        report |= step.counts(run(step.task))
    return report


@flow(name="housekeeping", log_prints=True)
def housekeeping() -> Report:
    return _round(lambda task: task())


def housekeeping_round() -> Report:
    """One round outside Prefect (the runner's housekeeper thread): the same steps, in the
    same order, each called as the plain function its task wraps."""
    return _round(lambda task: task.fn())
