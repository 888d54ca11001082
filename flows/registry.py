"""The case types' flows, loaded by the entrypoints `henpin/cases/registry.py` names (that table
sits below the flows, so the tasks that start runs can read it; the flows are loaded here)."""

from __future__ import annotations

import importlib
from typing import Any

from prefect import Flow

from henpin.cases.registry import CASE_TYPES, FlowEntrypoint
from henpin.domain import CaseType


def load_flow(entrypoint: FlowEntrypoint) -> Flow[..., Any]:
    """The flow object an entrypoint names."""
    found = getattr(importlib.import_module(entrypoint.module), entrypoint.function)
    if not isinstance(found, Flow):
        raise TypeError(f"{entrypoint.module_path} is not a Prefect flow")
    return found


def case_type_flows() -> dict[CaseType, Flow[..., Any]]:
    """Each case type's flow, in the registry's order."""
    return {t: load_flow(entry.flow) for t, entry in CASE_TYPES.items()}
