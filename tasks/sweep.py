"""Housekeeping's steps as Prefect tasks: record runs cancelled in Prefect, send Amazon actions, wake cases whose answer is in,
apply passed deadlines, start and restart what a stopped process left, purge old buyer data.

Each is a thin wrapper of its plain function in henpin/housekeeping.py, given the process's
store, adapter and policy; flows/housekeeping.py lists them in the round's order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from henpin import housekeeping
from henpin.context import adapter, policy_in_force, settings, store_url
from henpin.decisions import record_deadline_answers
from henpin.housekeeping import OutboxRound
from tasks.ingest import start_case_flow
from tasks.kinds import amazon_task, store_task


@store_task("record-cancelled-runs", fresh=True)
def record_cancelled_runs() -> list[int]:
    """Withdraw the unsent Amazon actions of cases whose flow run was cancelled in Prefect, and
    flag those cases "needs attention"."""
    return housekeeping.record_cancelled_runs(store_url())


@amazon_task("send-amazon-actions", fresh=True)
def send_amazon_actions() -> OutboxRound:
    """Reconcile, send pending actions as batched feeds, and record finished feeds' results."""
    settle = timedelta(seconds=settings().outbox_settle_s)
    return housekeeping.send_amazon_actions(store_url(), adapter(), settle=settle)


@store_task("wake-cases-with-amazon-results", fresh=True)
def wake_cases_with_amazon_results() -> list[int]:
    """Resume acting cases all of whose Amazon actions have a recorded result."""
    return housekeeping.wake_cases_with_amazon_results(store_url())


@store_task("apply-passed-deadlines", fresh=True)
def apply_passed_deadlines(now: datetime | None = None) -> list[int]:
    """Answer overdue questions with their named timeout choice, then resume those runs.

    An operator's answer racing the deadline is settled by the decision record: one winner.
    """
    record_deadline_answers(store_url(), now)
    return resume_decided_cases.fn()


@store_task("resume-decided-cases", fresh=True)
def resume_decided_cases() -> list[int]:
    """Resume waiting runs whose question already has a recorded answer (a resume that failed
    or came before the run had suspended)."""
    return housekeeping.resume_decided_cases(store_url())


@store_task("start-unstarted-cases", fresh=True)
def start_unstarted_cases(now: datetime | None = None) -> list[int]:
    """Start the flow run of a case opened by a process that stopped before starting it."""
    unstarted = housekeeping.unstarted_cases(store_url(), now or datetime.now(UTC))
    for case_id in unstarted:
        start_case_flow(case_id)
    return unstarted


@store_task("restart-stranded-runs", fresh=True)
def restart_stranded_runs(now: datetime | None = None) -> list[int]:
    """Start again the runs of open cases that a dead runner, worker or flow process left
    behind; a case whose run keeps dying is flagged "needs attention" instead."""
    stale = timedelta(seconds=settings().stale_run_s)
    return housekeeping.restart_stranded_runs(store_url(), now=now, stale_running=stale)


@store_task("purge-buyer-data", fresh=True)
def purge_buyer_data(now: datetime | None = None) -> list[int]:
    """Remove buyers' personal data from cases closed longer ago than the policy's retention."""
    days = policy_in_force().retention.buyer_data_days
    now = now or datetime.now(UTC)
    return housekeeping.purge_buyer_data_now(store_url(), now, days).case_ids
