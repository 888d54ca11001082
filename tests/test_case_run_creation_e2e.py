"""A case's flow run is created from its deployment (henpin/runs.py `create_flow_run`), whose id
is read from the Prefect API once per process, not for every case opened, and read again once
the deployment was made anew under another id. On a real Prefect server (`prefect_server`)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from prefect import flow

pytestmark = [pytest.mark.e2e]

FLOW = "henpin-test-run-creation"
DEPLOYMENT = f"{FLOW}/henpin"


@flow(name=FLOW)
def a_case_flow(case_id: int) -> int:
    return case_id


def test_the_deployment_is_read_once_and_again_after_it_was_made_anew(
    prefect_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import SyncPrefectClient, get_client

    from henpin.runs import create_flow_run

    reads: list[str] = []
    read = SyncPrefectClient.read_deployment_by_name

    def counted(self: SyncPrefectClient, name: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(name)
        return read(self, name, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "read_deployment_by_name", counted)
    batch = uuid4().hex

    def open_case(case_id: int) -> Any:
        return create_flow_run(
            DEPLOYMENT,
            {"case_id": case_id},
            name=f"case {case_id}",
            tags=["case:test"],
            idempotency_key=f"{batch}:{case_id}",
        )

    first = a_case_flow.to_deployment(name="henpin").apply()
    reads.clear()  # Prefect's apply() reads it too
    runs = [open_case(case_id) for case_id in (1, 2, 3)]
    assert [run.deployment_id for run in runs] == [first] * 3
    assert [run.parameters for run in runs] == [{"case_id": 1}, {"case_id": 2}, {"case_id": 3}]
    assert reads == [DEPLOYMENT]  # once, not per run

    with get_client(sync_client=True) as client:
        client.delete_deployment(first)
    second = a_case_flow.to_deployment(name="henpin").apply()
    assert second != first
    reads.clear()

    run = open_case(4)
    assert run.deployment_id == second  # the id kept was gone: read again, and the run made
    assert reads == [DEPLOYMENT]
    assert open_case(5).deployment_id == second
    assert reads == [DEPLOYMENT]
