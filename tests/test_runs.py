"""Which case runs the housekeeper starts again: only those that cannot move by themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from henpin.runs import RunState, why_stranded

NOW = datetime.now(UTC)


def state(type_: str, name: str, ago: timedelta) -> RunState:
    return RunState(type_, name, NOW - ago)


def test_waiting_scheduled_finished_and_cancelled_runs_are_left_alone() -> None:
    for type_, name in [
        ("PAUSED", "Suspended"),
        ("SCHEDULED", "Scheduled"),
        ("SCHEDULED", "AwaitingRetry"),
        ("COMPLETED", "Completed"),
        ("CANCELLED", "Cancelled"),  # someone cancelled it in the Prefect UI on purpose
    ]:
        assert why_stranded(state(type_, name, timedelta(days=3)), NOW) is None, name


def test_a_run_that_was_being_started_is_stranded_after_a_minute() -> None:
    assert why_stranded(state("PENDING", "Submitting", timedelta(seconds=30)), NOW) is None
    why = why_stranded(state("PENDING", "Submitting", timedelta(seconds=90)), NOW)
    assert why is not None and "never began" in why


def test_a_running_run_is_stranded_only_after_the_stale_time() -> None:
    running = state("RUNNING", "Running", timedelta(minutes=10))
    assert why_stranded(running, NOW) is None  # the default is 15 minutes
    assert why_stranded(state("RUNNING", "Running", timedelta(minutes=16)), NOW) == (
        "its flow run has been running for 16 min"
    )
    assert why_stranded(running, NOW, stale_running=timedelta(minutes=5)) is not None


def test_failed_runs_are_stranded_at_once_crashed_ones_once_the_crash_has_lasted() -> None:
    """A crash being reported may be a cancellation the executor is finishing (CRASH_SETTLE)."""
    assert why_stranded(state("FAILED", "Failed", timedelta(0)), NOW) == "its flow run ended Failed"
    assert why_stranded(state("CRASHED", "Crashed", timedelta(0)), NOW) is None
    assert why_stranded(state("CRASHED", "Crashed", timedelta(seconds=14)), NOW) is None
    assert why_stranded(state("CRASHED", "Crashed", timedelta(seconds=15)), NOW) == (
        "its flow run ended Crashed"
    )


def test_cancelling_runs_are_left_alone_too() -> None:
    assert why_stranded(state("CANCELLING", "Cancelling", timedelta(days=3)), NOW) is None
