"""Housekeeping, every few seconds: Amazon actions out and results in, deadlines, stragglers,
and telling people what needs them."""

from __future__ import annotations

from prefect import flow

from tasks.notifications import send_notifications
from tasks.sweep import (
    apply_passed_deadlines,
    purge_buyer_data,
    restart_stranded_runs,
    resume_decided_cases,
    send_amazon_actions,
    start_unstarted_cases,
    wake_cases_with_amazon_results,
)


@flow(name="housekeeping", log_prints=True)
def housekeeping() -> dict[str, int]:
    outbox_round = send_amazon_actions()
    woken = wake_cases_with_amazon_results()
    overdue = apply_passed_deadlines()
    resumed = resume_decided_cases()
    started = start_unstarted_cases()
    restarted = restart_stranded_runs()
    purged = purge_buyer_data()
    told = send_notifications()
    return {
        "feeds_sent": outbox_round.feeds_sent,
        "actions_finished": outbox_round.actions_finished,
        "cases_woken": len(woken),
        "deadlines_applied": len(overdue),
        "cases_resumed": len(resumed),
        "cases_started": len(started),
        "runs_restarted": len(restarted),
        "buyer_data_purged": len(purged),
        "notifications": len(told),
    }
