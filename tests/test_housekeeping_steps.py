"""Housekeeping's round is written once (flows/housekeeping.py `STEPS`): the flow and the runner's
housekeeper thread run the same tasks in the same order and report the same counts under the
names operators and logs know. Run end to end: test_cancel_request_e2e.py."""

from __future__ import annotations

from flows.housekeeping import STEPS
from henpin.housekeeping import OutboxRound


def test_the_round_runs_its_steps_in_order() -> None:
    assert [step.task.name for step in STEPS] == [
        "record-cancelled-runs",  # first: nothing a cancelled run queued is sent
        "send-amazon-actions",
        "wake-cases-with-amazon-results",
        "apply-passed-deadlines",
        "resume-decided-cases",
        "start-unstarted-cases",
        "restart-stranded-runs",
        "purge-buyer-data",
        "send-notifications",
    ]


def test_the_round_reports_each_count_under_its_name() -> None:
    report: dict[str, int] = {}
    for step in STEPS:
        done = OutboxRound(feeds_sent=2, actions_finished=3) if step is STEPS[1] else [7]
        report |= step.counts(done)
    assert report == {
        "runs_cancelled": 1,
        "feeds_sent": 2,
        "actions_finished": 3,
        "cases_woken": 1,
        "deadlines_applied": 1,
        "cases_resumed": 1,
        "cases_started": 1,
        "runs_restarted": 1,
        "buyer_data_purged": 1,
        "notifications": 1,
    }
    assert list(report) == [
        "runs_cancelled",
        "feeds_sent",
        "actions_finished",
        "cases_woken",
        "deadlines_applied",
        "cases_resumed",
        "cases_started",
        "runs_restarted",
        "buyer_data_purged",
        "notifications",
    ]
