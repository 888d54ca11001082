"""prefect.yaml's `prefect deploy --all` creates the deployments `henpin up --scale` creates, in
the resident executor's work pool."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from henpin.runner import deployments
from henpin.scale import POOL
from henpin.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def _flow_at(entrypoint: str) -> Any:
    """The flow object an entrypoint `path/to/file.py:function` names."""
    path, function = entrypoint.split(":")
    spec = importlib.util.spec_from_file_location(f"entry_{function}", REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)


def _interval_s(deployment: Any) -> float | None:
    schedules = deployment.schedules or []
    return schedules[0].schedule.interval.total_seconds() if schedules else None


def test_prefect_yaml_declares_the_deployments_of_the_scaled_layout() -> None:
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    from_yaml = {
        _flow_at(d["entrypoint"]).name: (
            d["name"],
            sorted(d["tags"]),
            d["work_pool"]["name"],
            d["schedules"][0]["interval"] if "schedules" in d else None,
        )
        for d in declared
    }
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    from_code = {
        d.flow_name: (d.name, sorted(d.tags), POOL, _interval_s(d)) for d in deployments(settings)
    }
    assert len(declared) == len(from_yaml), "one deployment per flow"
    assert from_yaml == from_code


@pytest.mark.e2e
def test_prefect_deploy_all_creates_them_on_a_real_server(
    prefect_server: object, tmp_path: Path
) -> None:
    """`prefect deploy --all` itself, against the session's Prefect server, with the pool made
    as `henpin up --scale` makes it (`henpin.runner.deploy_to_work_pool`): of the resident
    executor's type, with its job template."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName
    from prefect.exceptions import ObjectAlreadyExists

    from henpin.resident import WORKER_TYPE, ResidentWorker

    pool = "henpin-yaml-check"
    text = (REPO / "prefect.yaml").read_text(encoding="utf-8")
    config = tmp_path / "prefect.yaml"
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(
            WorkPoolCreate(
                name=pool,
                type=WORKER_TYPE,
                base_job_template=ResidentWorker.get_default_base_job_template(),
            )
        )
    config.write_text(
        text.replace("work_pool:\n      name: henpin", f"work_pool:\n      name: {pool}")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prefect",
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            str(config),
        ],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with get_client(sync_client=True) as client:
        made = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool]))
        )
        names = {client.read_flow(d.flow_id).name for d in made}
        assert client.read_work_pool(pool).type == WORKER_TYPE
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert names == {d.flow_name for d in deployments(settings)}
