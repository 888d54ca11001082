"""A case flow that runs again (resumed, or started again after a crash) takes the results of
its finished steps from the result store, without a new task run on Prefect's server
(tasks/kinds.py `CaseStep`); a step whose inputs changed, or that failed, runs again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_for


@pytest.mark.e2e
def test_a_run_again_takes_finished_steps_from_the_result_store_with_no_task_run(
    prefect_server: Any, tmp_path: Path
) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
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

    def task_runs(run_id: Any, when: Any) -> list[str] | None:
        """The names of the run's task runs on the server, once `when` holds of them."""
        with get_client(sync_client=True) as client:
            only = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
            found = client.read_task_runs(flow_run_filter=only, limit=50)
        names = sorted(t.name.rsplit("-", 1)[0] for t in found)
        return names if when(names) else None

    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "storage")}):
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(
                a_case, parameters={"case_id": 7, "order_id": "1", "second": "2"}
            )
        assert run_flow(a_case, flow_run=run, return_type="state").is_failed()  # flaky failed
        first = wait_for(
            lambda: task_runs(run.id, when=lambda names: "flaky" in names),
            "the first run's task runs on the server",
        )
        assert first == ["flaky", "now", "price-of", "price-of"]

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
            run = client.read_flow_run(run.id)
            client.update_flow_run(run.id, parameters={**run.parameters, "second": "3"})
            run = client.read_flow_run(run.id)
        assert run_flow(a_case, flow_run=run, return_type="state").is_completed()

    # Run again: "1" came from the store as the same value; "3" is new and ran; the fresh read
    # and the failed step ran again.
    assert seen == [Money(amount=1200, currency="JPY")] * 2
    first_run = ["price-of 1", "price-of 2", "now mark 1", "flaky 1"]
    assert ran == [*first_run, "price-of 3", "now mark 2", "flaky 1"]
    # On the server, the second run added task runs only for what ran: none for price-of "1".
    again = wait_for(
        lambda: task_runs(run.id, when=lambda names: names.count("flaky") == 2),
        "the second run's task runs on the server",
    )
    assert again == ["flaky", "flaky", "now", "now", "price-of", "price-of", "price-of"]
