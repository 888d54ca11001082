"""One line per case type: the flow that runs it, its section of `policies.yaml`, what its run
receives and who opens it. Whatever lists the case types (the runner's served flows, the case
flow's parameters when a run is started, the check of `prefect.yaml`) reads this table.

It sits in the library, below the flows, so the tasks that start a case's run can read it: a
flow is named here by its entrypoint (module and function), never imported. `flows/registry.py`
loads the flows it names for the runner; `tests/test_case_registry.py` holds every entry equal to
its flow (the Prefect name, the policy model and the parameters the flow accepts), to the
`Policy` model and to `prefect.yaml`.

Adding a case type: its `CaseType`, its module here in `henpin/cases/`, its policy section in
`henpin/policy/` (a typed field of `Policy`, so that flows and replay read it typed), its flow
in `flows/`, and one `CaseTypeEntry` below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from henpin.domain import CaseType
from henpin.policy._base import PolicyModel
from henpin.policy.address_error import AddressErrorPolicy
from henpin.policy.cancel_by_message import CancelByMessagePolicy
from henpin.policy.cancel_request import CancelRequestPolicy
from henpin.policy.loading import Policy
from henpin.policy.refused_delivery import RefusedDeliveryPolicy
from henpin.policy.return_request import ReturnRequestPolicy


@dataclass(frozen=True)
class FlowEntrypoint:
    """Where a flow is defined: `flows/<module>.py`, function `function`."""

    module: str  # e.g. "flows.cancel_request"
    function: str

    @property
    def module_path(self) -> str:
        """As the runner serves it (Prefect's module-path entrypoint): `flows.x.function`."""
        return f"{self.module}.{self.function}"

    @property
    def file_path(self) -> str:
        """As `prefect.yaml` names it: `flows/x.py:function`."""
        return f"{self.module.replace('.', '/')}.py:{self.function}"


@dataclass(frozen=True)
class Opener:
    """A door that opens cases of a type: the function that opens them (`module:function`) and
    the operator command that calls it, if any (`henpin cases open-message`)."""

    function: str
    command: str | None = None


class CaseRow(Protocol):
    """What a case's run is started from (the case store's `Case`)."""

    @property
    def id(self) -> int: ...
    @property
    def order_id(self) -> str: ...
    @property
    def marketplace_id(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


def _nothing_more(details: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _refused_or_unclaimed(details: Mapping[str, Any]) -> dict[str, Any]:
    return {"refused": bool(details.get("refused"))}


@dataclass(frozen=True)
class CaseTypeEntry:
    """A case type's flow, policy section, flow parameters and openers."""

    case_type: CaseType
    flow: FlowEntrypoint
    policy_key: str  # the section's key in policies.yaml and its field of `Policy`
    policy_model: type[PolicyModel]
    openers: tuple[Opener, ...]
    #: What the run receives from the case's details besides ids and policy (ids and flags only:
    #: Prefect keeps parameters for good, so what the buyer wrote stays in the case store).
    more_parameters: Callable[[Mapping[str, Any]], dict[str, Any]] = _nothing_more

    @property
    def flow_name(self) -> str:
        """The flow's Prefect name, and so its deployment's `<flow name>/henpin`."""
        return self.case_type.value

    def policy_section(self, policy: Policy) -> PolicyModel:
        section = getattr(policy, self.policy_key)
        assert isinstance(section, self.policy_model)
        return section

    def flow_parameters(self, case: CaseRow, policy: Policy) -> dict[str, Any]:
        """The case flow's parameters: the case, its order, the typed policy section in force
        now (with its version) and what `more_parameters` takes from the case's details. Ids
        and policy only: Prefect keeps parameters for good, so what the buyer wrote stays in
        the case store (purged with the case) and the flow reads it from there."""
        return {
            "case_id": case.id,
            "order_id": case.order_id,
            "policy_version": policy.version,
            # The region to read the order in (no lookup across regions); runs started before
            # it was passed read it without (the flows default it to None).
            "marketplace_id": case.marketplace_id,
            "policy": self.policy_section(policy).model_dump(mode="json"),
            **self.more_parameters(case.details or {}),
        }


def _flow(name: str) -> FlowEntrypoint:
    return FlowEntrypoint(f"flows.{name}", name)


_PARCEL_OPENERS = (
    Opener("tasks.ingest:open_returning_parcel_case"),  # the Orders API's returning parcels
    Opener("henpin.app.parcels:open_parcel_case", "cases open-parcel"),  # and the inbox
)

CASE_TYPES: dict[CaseType, CaseTypeEntry] = {
    e.case_type: e
    for e in (
        CaseTypeEntry(
            CaseType.CANCEL_REQUEST,
            _flow("cancel_request"),
            "cancel_request",
            CancelRequestPolicy,
            (Opener("tasks.ingest:open_cancel_request_case"),),  # the Orders API's requests
        ),
        CaseTypeEntry(
            CaseType.RETURN_REQUEST,
            _flow("return_request"),
            "return_request",
            ReturnRequestPolicy,
            (Opener("tasks.ingest:open_return_request_case"),),  # the returns report
        ),
        CaseTypeEntry(
            CaseType.CANCEL_BY_MESSAGE,
            _flow("cancel_by_message"),
            "cancel_by_message",
            CancelByMessagePolicy,
            (Opener("henpin.app.messages:open_cancel_by_message", "cases open-message"),),
        ),
        CaseTypeEntry(
            CaseType.REFUSED_DELIVERY,
            _flow("refused_delivery"),
            "refused_delivery",
            RefusedDeliveryPolicy,
            _PARCEL_OPENERS,
            more_parameters=_refused_or_unclaimed,
        ),
        CaseTypeEntry(
            CaseType.ADDRESS_ERROR,
            _flow("address_error"),
            "address_error",
            AddressErrorPolicy,
            _PARCEL_OPENERS,
        ),
    )
}


def case_type_entry(case_type: CaseType | str) -> CaseTypeEntry:
    """The registry's entry of a case type (given as the enum or its stored value)."""
    return CASE_TYPES[CaseType(case_type)]
