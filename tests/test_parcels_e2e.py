"""One parcel case per order, end to end on real parts: the emulator over HTTP (packages in
Orders API 2026-01-01), ingestion, the case flows on the session's Prefect server, the SQLite
case store, and `henpin cases open-parcel` as a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from henpin.accounts import add_operator
from henpin.app.cases import show_case
from henpin.app.decide import decide
from tests.support import drive_case_runs
from tests.test_case_types_e2e import (  # noqa: F401  (fixtures)
    answer,
    control,
    emulator,
    henpin,
    mailbox,
    settle_amazon,
    shipped_order,
    the_case,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent


def package(status: str, detailed_status: str) -> dict[str, Any]:
    return {
        "packageReferenceId": "1",
        "packageStatus": {"status": status, "detailedStatus": detailed_status},
    }


def parcel_coming_back(amazon: Any, order_id: str, detailed_status: str) -> None:
    """A shipped order whose parcel comes back; ingestion opens its case, whose run starts."""
    from flows.ingest import ingest

    parcel = package("UNDELIVERABLE", detailed_status)
    control(amazon, "POST", "orders", json=[shipped_order(order_id, package=parcel)])
    ingest()
    drive_case_runs()


def parcel_reported(amazon: Any, order_id: str, detailed_status: str) -> None:
    """The carrier's new word on the parcel reaches Amazon (the order's lastUpdatedTime moves)."""
    control(
        amazon,
        "PATCH",
        f"orders/{order_id}",
        json={"packages": [package("UNDELIVERABLE", detailed_status)]},
    )


def run_state(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    assert run.state is not None
    return run.state.type.value


def test_unclaimed_then_address_problem_hands_over_and_refunds_once(
    henpin: str,  # noqa: F811  (the fixtures imported above)
    emulator: Any,  # noqa: F811
    prefect_server: Any,
) -> None:
    from flows.ingest import ingest

    order_id = "113-0000041-0000041"
    parcel_coming_back(emulator, order_id, "RETURNING_TO_SELLER")
    refused = the_case(henpin, order_id, "refused-delivery")
    assert refused.state == "waiting" and refused.waiting_step == "refund-asked"

    parcel_reported(emulator, order_id, "UNDELIVERABLE")  # "address or access issues"
    opened = ingest()
    assert [(o.case_id, o.new) for o in opened if o.order_id == order_id] == [
        (the_case(henpin, order_id, "address-error").id, True)
    ]
    drive_case_runs()
    old = show_case(henpin, refused.id)
    assert old is not None and old.state == "closed"
    assert old.outcome == "handed-to-address-error"
    address = the_case(henpin, order_id, "address-error")
    assert f"Case {address.id} (address error)" in old.timeline[-1].message
    assert address.parent_case_id == refused.id
    assert address.details["handed_over_from"]["case_id"] == refused.id
    assert run_state(refused.flow_run_id) == "COMPLETED"  # its run ended, acting on nothing
    with pytest.raises(Exception, match="not waiting"):
        decide(henpin, refused.id, choice="buyer_asked", operator="alice")

    ingest()  # seen again (overlapping window): still the same two cases
    drive_case_runs()
    settle_amazon(emulator, rounds=2)  # the confirm-delivery-details message goes out
    address = the_case(henpin, order_id, "address-error")
    assert address.waiting_step == "buyer-address"
    answer(henpin, address, "no_answer")
    address = the_case(henpin, order_id, "address-error")
    answer(henpin, address, "partial_refund", refund_amount="10.00", note="agreed with buyer")
    settle_amazon(emulator)
    assert show_case(henpin, address.id).outcome == "refunded-partly"  # type: ignore[union-attr]
    assert len(control(emulator, "GET", f"orders/{order_id}/refunds")) == 1
    assert show_case(henpin, refused.id).actions == []  # type: ignore[union-attr]


def test_address_problem_then_returning_stays_one_address_case(
    henpin: str,  # noqa: F811  (the fixtures imported above)
    emulator: Any,  # noqa: F811
    prefect_server: Any,
) -> None:
    from flows.ingest import ingest

    order_id = "113-0000042-0000042"
    parcel_coming_back(emulator, order_id, "UNDELIVERABLE")
    parcel_reported(emulator, order_id, "RETURNING_TO_SELLER")
    ingest()
    drive_case_runs()
    assert the_case(henpin, order_id, "refused-delivery") is None
    address = show_case(henpin, the_case(henpin, order_id, "address-error").id)
    assert address is not None and address.state != "closed"
    assert [r["detailed_status"] for r in address.details["parcel_reports"]] == [
        "UNDELIVERABLE",
        "RETURNING_TO_SELLER",
    ]
    assert any(e.kind == "parcel-report" for e in address.timeline)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`henpin ...` as a script runs it, against this test's home, emulator and Prefect."""
    return subprocess.run(
        [sys.executable, "-m", "henpin.cli", *args],
        env=dict(os.environ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_open_parcel_case_by_order_id_from_the_command_line(
    henpin: str,  # noqa: F811  (the fixtures imported above)
    emulator: Any,  # noqa: F811
    prefect_server: Any,
) -> None:
    shipped, unshipped = "113-0000043-0000043", "113-0000044-0000044"
    control(emulator, "POST", "orders", json=[shipped_order(shipped)])
    control(
        emulator,
        "POST",
        "orders",
        json=[
            shipped_order(unshipped)
            | {"fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"}}
        ],
    )
    add_operator(henpin, "alice", "pw-alice")
    add_operator(henpin, "vera", "pw-vera", role="viewer")

    out = cli(
        "cases",
        "open-parcel",
        shipped,
        "--kind",
        "refused",
        "--operator",
        "alice",
        "--note",
        "Carrier: buyer refused at the door",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    case = json.loads(out.stdout)
    assert case["type"] == "refused-delivery" and case["order_id"] == shipped
    assert case["details"]["refused"] is True and case["flow_run_id"]
    drive_case_runs()
    assert the_case(henpin, shipped, "refused-delivery").waiting_step == "refund-asked"

    again = cli(
        "cases", "open-parcel", shipped, "--kind", "address-error", "--operator", "alice", "--json"
    )
    assert again.returncode == 1 and again.stdout == ""
    assert f"already has an open parcel case: case {case['id']} (refused-delivery" in again.stderr

    unknown = cli(
        "cases", "open-parcel", "999-0000000-0000000", "--kind", "unclaimed", "--operator", "alice"
    )
    assert unknown.returncode == 1
    assert "Amazon has no order with this id" in unknown.stderr

    not_shipped = cli(
        "cases", "open-parcel", unshipped, "--kind", "address-error", "--operator", "alice"
    )
    assert not_shipped.returncode == 1
    assert f"Order {unshipped} has not shipped (Amazon says UNSHIPPED)" in not_shipped.stderr

    viewer = cli("cases", "open-parcel", unshipped, "--kind", "refused", "--operator", "vera")
    assert viewer.returncode == 1 and "only an active operator or admin" in viewer.stderr

    from henpin.accounts import audit_lines

    lines = audit_lines(henpin)
    assert [(line.actor, line.action) for line in lines if line.action.startswith("case-open")] == [
        ("vera", "case-open-refused"),
        ("alice", "case-open-refused"),
        ("alice", "case-open-refused"),
        ("alice", "case-open-refused"),
        ("alice", "case-opened"),
    ]
