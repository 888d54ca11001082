"""A case flow that runs again (resumed, or started again after a crash) takes the results of
its finished steps from the result store, without a new task run (tasks/kinds.py `CaseStep`);
a step whose inputs changed, or that failed, runs again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def task_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every task run Prefect's engine starts in this process (`Task.__call__` goes through
    `prefect.task_engine.run_task`), by task name; it runs as it would."""
    import prefect.task_engine

    started: list[str] = []
    run_task = prefect.task_engine.run_task

    def counted(task: Any, *args: Any, **kwargs: Any) -> Any:
        started.append(task.name)
        return run_task(task, *args, **kwargs)

    monkeypatch.setattr(prefect.task_engine, "run_task", counted)
    return started


@pytest.mark.e2e
def test_a_run_again_takes_finished_steps_from_the_result_store_with_no_task_run(
    prefect_server: Any, tmp_path: Path, task_runs: list[str]
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.states import AwaitingRetry

    from henpin.domain import Money
    from tasks.kinds import case_step, store_task

    ran: list[str] = []

    @store_task("price-of")
    def price_of(order_id: str) -> Money:
        ran.append(f"price-of {order_id}")
        return Money(amount=1200, currency="JPY")

    @case_step("flaky", timeout_seconds=10)
    def flaky(order_id: str) -> str:
        ran.append(f"flaky {order_id}")
        if ran.count(f"flaky {order_id}") == 1:
            raise RuntimeError("not this time")
        return "ok"

    @store_task("now", fresh=True)
    def now(mark: str) -> str:
        ran.append(f"now {mark}")
        return mark

    seen: list[Money] = []

    @flow(name="a-case-run-twice", persist_result=True)
    def a_case(case_id: int, order_id: str, second: str) -> None:
        seen.append(price_of(order_id))
        price_of(second)
        now(f"mark {len(seen)}")
        flaky(order_id)

    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "storage")}):
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(
                a_case, parameters={"case_id": 7, "order_id": "1", "second": "2"}
            )
        assert run_flow(a_case, flow_run=run, return_type="state").is_failed()  # flaky failed
        assert task_runs == ["price-of", "price-of", "now", "flaky"]

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            run = client.read_flow_run(run.id)
            client.update_flow_run(run.id, parameters={**run.parameters, "second": "3"})
            run = client.read_flow_run(run.id)
        task_runs.clear()
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()

    # Run again: price-of "1" came from the store, the same value, with no task run; "3" is
    # new and ran; the fresh read and the step that had failed ran again.
    assert seen == [Money(amount=1200, currency="JPY")] * 2
    assert task_runs == ["price-of", "now", "flaky"]
    first_run = ["price-of 1", "price-of 2", "now mark 1", "flaky 1"]
    assert ran == [*first_run, "price-of 3", "now mark 2", "flaky 1"]


@pytest.mark.e2e
def test_a_policy_step_makes_no_task_run_and_a_run_again_reuses_what_it_said(
    prefect_server: Any, tmp_path: Path, task_runs: list[str]
) -> None:
    """A step that only computes what policy says (`policy_step`: a recommendation reads the
    clock) runs without a task run, keeps its result with the case, and a run again takes that
    result even though computing it now would say something else."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.states import AwaitingRetry

    from tasks.kinds import policy_step

    computed: list[str] = []

    @policy_step("advice")
    def advice(order_id: str) -> dict[str, str]:
        computed.append(order_id)
        return {"action": "ask_operator" if len(computed) == 1 else "cancel"}

    said: list[dict[str, str]] = []

    @flow(name="a-case-with-a-policy-step", persist_result=True)
    def a_case(case_id: int, order_id: str) -> None:
        said.append(advice(order_id))

    storage = tmp_path / "storage"
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(storage)}):
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(a_case, parameters={"case_id": 8, "order_id": "1"})
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            run = client.read_flow_run(run.id)
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()

    assert task_runs == []
    assert computed == ["1"]  # once: the run again read it back
    assert said == [{"action": "ask_operator"}] * 2
    filed = list((storage / "cases" / "8").iterdir())  # filed with the case, purged with it
    assert len(filed) == 1


@pytest.mark.e2e
def test_a_run_waiting_across_the_upgrade_finds_what_the_step_said_as_a_task(
    prefect_server: Any, tmp_path: Path, task_runs: list[str]
) -> None:
    """Until 2026-12-07 policy's steps were tasks (`@case_step("<name>", timeout_seconds=30)`),
    and Prefect's key for a result hashes the step's source, its decorator line included. A
    case run that kept the recommendation then and runs again now takes that recommendation,
    not a new one."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.states import AwaitingRetry

    from tasks.kinds import case_step, policy_step

    computed: list[str] = []

    @case_step("advice", timeout_seconds=30)
    def advice(order_id: str) -> dict[str, str]:
        computed.append(order_id)
        return {"action": "ask_operator" if len(computed) == 1 else "cancel"}

    as_a_task = advice

    @policy_step("advice")  # type: ignore[no-redef]
    def advice(order_id: str) -> dict[str, str]:
        computed.append(order_id)
        return {"action": "ask_operator" if len(computed) == 1 else "cancel"}

    step = [as_a_task]
    said: list[dict[str, str]] = []

    @flow(name="a-case-across-the-upgrade", persist_result=True)
    def a_case(case_id: int, order_id: str) -> None:
        said.append(step[0](order_id))

    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "storage")}):
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(a_case, parameters={"case_id": 9, "order_id": "1"})
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()
        assert task_runs == ["advice"]  # the code before: a task run

        step[0] = advice  # the upgrade
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            run = client.read_flow_run(run.id)
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()

    assert task_runs == ["advice"]
    assert computed == ["1"]
    assert said == [{"action": "ask_operator"}] * 2
