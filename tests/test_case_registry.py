"""The case-type registry (henpin/cases/registry.py) covers every `CaseType`, and each entry agrees
with its flow, its policy section, `Policy`, `prefect.yaml`, the runner and its openers."""

from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.registry import case_type_flows, load_flow
from henpin.cases.registry import CASE_TYPES, CaseTypeEntry, case_type_entry
from henpin.cli import build_parser
from henpin.domain import CaseType
from henpin.policy import Policy, load_policy
from henpin.runs import deployment_name
from henpin.settings import Settings

REPO = Path(__file__).resolve().parents[1]
ENTRIES = list(CASE_TYPES.values())


@dataclass
class _Case:
    id: int = 7
    order_id: str = "113-0000000-0000001"
    marketplace_id: str = "A1VC38T7YXB528"
    details: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def shipped_policy() -> Policy:
    return load_policy(REPO / "policies.yaml")


def test_every_case_type_has_one_entry() -> None:
    assert set(CASE_TYPES) == set(CaseType)
    assert all(t == e.case_type for t, e in CASE_TYPES.items())
    assert case_type_entry("cancel-request") is CASE_TYPES[CaseType.CANCEL_REQUEST]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.case_type.value)
def test_the_entrypoint_names_the_case_types_flow(entry: CaseTypeEntry) -> None:
    flow = load_flow(entry.flow)
    assert flow.name == entry.flow_name == entry.case_type.value
    assert f"{flow.fn.__module__}.{flow.fn.__name__}" == entry.flow.module_path
    assert deployment_name(entry.case_type) == f"{flow.name}/henpin"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.case_type.value)
def test_the_policy_section_is_the_flows_and_the_files(entry: CaseTypeEntry) -> None:
    flow = load_flow(entry.flow)
    assert typing.get_type_hints(flow.fn)["policy"] is entry.policy_model
    assert Policy.model_fields[entry.policy_key].annotation is entry.policy_model


def test_policy_has_a_section_per_case_type_and_no_other_case_section() -> None:
    not_case_types = {"schema_version", "retention", "notifications"}
    assert set(Policy.model_fields) - not_case_types == {e.policy_key for e in ENTRIES}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.case_type.value)
def test_the_flow_accepts_the_parameters_its_case_gives(
    entry: CaseTypeEntry, shipped_policy: Policy
) -> None:
    flow = load_flow(entry.flow)
    parameters = entry.flow_parameters(_Case(details={"refused": True}), shipped_policy)
    inspect.signature(flow.fn).bind(**parameters)  # nothing missing, nothing unknown
    validated = flow.validate_parameters(parameters)  # as Prefect checks them before a run
    assert validated["policy"] == entry.policy_section(shipped_policy)
    assert validated["policy_version"] == shipped_policy.version
    assert (validated["case_id"], validated["order_id"]) == (7, "113-0000000-0000001")
    assert validated["marketplace_id"] == "A1VC38T7YXB528"


def test_a_refused_delivery_run_is_told_refused_or_unclaimed(shipped_policy: Policy) -> None:
    entry = CASE_TYPES[CaseType.REFUSED_DELIVERY]
    assert entry.flow_parameters(_Case(details={"refused": True}), shipped_policy)["refused"]
    assert not entry.flow_parameters(_Case(), shipped_policy)["refused"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.case_type.value)
def test_each_opener_exists(entry: CaseTypeEntry) -> None:
    assert entry.openers
    commands = _cli_commands()
    for opener in entry.openers:
        module, function = opener.function.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        if opener.command is not None:
            assert opener.command in commands


def _cli_commands() -> set[str]:
    """`henpin`'s commands, as `cases open-message`."""
    import argparse

    def walk(parser: argparse.ArgumentParser, prefix: str) -> set[str]:
        found: set[str] = set()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found |= {f"{prefix}{name}", *walk(sub, f"{prefix}{name} ")}
        return found

    return walk(build_parser(), "")


def test_the_runner_serves_each_case_types_flow() -> None:
    from henpin.runner import deployments

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    cases = [d for d in deployments(settings) if "case" in d.tags]
    assert [d.flow_name for d in cases] == [e.flow_name for e in ENTRIES]
    assert [d.entrypoint for d in cases] == [e.flow.module_path for e in ENTRIES]
    assert list(case_type_flows()) == list(CASE_TYPES)


def test_prefect_yaml_deploys_each_case_types_flow() -> None:
    """prefect.yaml stays a static file (`prefect deploy --all` reads it): it names the case
    types' flows as the registry does, in the registry's order."""
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    case_deployments = [d["entrypoint"] for d in declared if "case" in d.get("tags", [])]
    assert case_deployments == [e.flow.file_path for e in ENTRIES]
