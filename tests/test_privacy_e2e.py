"""Nothing personal outlives its need: recognizable personal data seeded in every case type, the
cases run to close on real parts (Prefect server, emulator over HTTP, SQLite case store, SMTP
catcher), then purged. Afterwards no table of the case store, no file of Prefect's result
storage and no table of the Prefect server's database holds any of it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import pickle
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, select, text

from tests.support import drive_case_runs, order_json
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

NAME = "Zyxwv Qutsr"
EMAIL = "zyxwv@example.com"
PHONE = "+81-90-1234-5678"
ADDRESS = "7 Qqqq Street, Testville"
#: What must be found nowhere after the purge (lower case; searched case-insensitively).
NEEDLES = ("zyxwv", "qutsr", "1234-5678", "qqqq street")
SAID = f"Please call {NAME} on {PHONE}, or write to {EMAIL}; I live at {ADDRESS}."
BUYER = {"buyerName": NAME, "buyerEmail": EMAIL}


def found_in(blob: bytes | str) -> list[str]:
    lowered = (blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob).lower()
    return [n for n in NEEDLES if n in lowered]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def case_store_rows(url: str) -> dict[str, list[str]]:
    """Every table of the case store, every row, as text; what each holds of the needles."""
    engine = create_engine(url)
    hits: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                if found := found_in(repr(tuple(row))):
                    hits.setdefault(table, []).append(f"{found}: {tuple(row)!r:.300}")
    engine.dispose()
    return hits


def prefect_rows() -> dict[str, list[str]]:
    """Every table of the test Prefect server's SQLite database, read only."""
    url = os.environ["PREFECT_API_DATABASE_CONNECTION_URL"]
    path = url.split(":///", 1)[1]
    hits: dict[str, list[str]] = {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if found := found_in(repr(row)):
                    hits.setdefault(table, []).append(f"{found}: {row!r:.300}")
    finally:
        conn.close()
    return hits


def storage_root() -> Path:
    return Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"])


def storage_files() -> set[Path]:
    root = storage_root()
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def result_files() -> dict[str, list[str]]:
    """Every file of Prefect's result storage that holds any of this test's needles (the
    storage is the test session's, shared with other tests, whose buyers have other names); a
    result is a JSON record whose value is a base64 pickle, so encoded strings are decoded
    before searching."""
    hits: dict[str, list[str]] = {}
    for path in storage_files():
        raw = path.read_bytes()
        found = set(found_in(raw))
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        for s in _strings(record):
            try:
                found |= set(found_in(base64.b64decode(s)))  # encodebytes: with newlines
            except (binascii.Error, ValueError):
                continue
        if found:
            hits[str(path)] = sorted(found)
    return hits


def result_value(path: str) -> str:
    """What a result file holds, for a failure message."""
    raw = Path(path).read_bytes()
    with contextlib.suppress(ValueError, KeyError, TypeError):
        raw = base64.b64decode(json.loads(raw)["result"])
    try:
        return f"{path}: {pickle.loads(raw)!r:.400}"
    except Exception:  # not a pickle: show the bytes
        return f"{path}: {raw[:400]!r}"


def close_every_case_type(url: str, amazon: Any) -> list[int]:
    """One case of each type, each carrying the buyer's name, e-mail, phone and address in
    what they said and in the operators' answers, run to close."""
    from flows.ingest import ingest
    from henpin.app.messages import open_cancel_by_message

    control(amazon, "PUT", "application/roles", json={"roles": ["DIRECT_TO_CONSUMER_DELIVERY"]})
    cancel = order_json("113-0000081-0000081", price="999.00", cancel_reason=SAID)
    cancel["buyer"] = BUYER
    message = order_json("113-0000082-0000082", cancel_reason=None)
    message["buyer"] = BUYER
    returned = shipped_order("113-0000083-0000083")
    refused = shipped_order(
        "113-0000084-0000084",
        price="8.00",
        package={
            "packageReferenceId": "1",
            "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"},
        },
    )
    address = shipped_order(
        "113-0000085-0000085",
        package={
            "packageReferenceId": "1",
            "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
        },
    )
    for order in (returned, refused, address):
        order["buyer"] = BUYER
    control(amazon, "POST", "orders", json=[cancel, message, returned, refused, address])
    control(
        amazon,
        "POST",
        "returns",
        json=[
            {
                "orderId": "113-0000083-0000083",
                "sku": "MUG-001",
                "quantity": 1,
                "returnReason": "CR-UNWANTED_ITEM",
                "customerComments": SAID,
                "returnRequestDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "inPolicy": False,
            }
        ],
    )
    control(amazon, "POST", "clock/advance", json={"seconds": 600})
    open_cancel_by_message(url, "113-0000082-0000082", buyer_message=SAID, operator="alice")
    ingest()
    drive_case_runs()
    settle_amazon(amazon, rounds=2)  # the reply e-mail and the address question go out

    note = f"Rang {NAME} on {PHONE}"
    answer(url, the_case(url, "113-0000081-0000081", "cancel-request"), "cancel", note=note)

    ret = "113-0000083-0000083"
    answer(url, the_case(url, ret, "return-request"), "authorized", buyer_comment=SAID)
    answer(url, the_case(url, ret, "return-request"), "received", note=note)
    case = the_case(url, ret, "return-request")
    answer(url, case, "inspected", condition=case.question["fields"][0]["options"][0])
    answer(url, the_case(url, ret, "return-request"), "refund_proposed", note=note)

    answer(url, the_case(url, "113-0000084-0000084", "refused-delivery"), "buyer_asked", note=note)
    answer(url, the_case(url, "113-0000084-0000084", "refused-delivery"), "refund_proposed")

    case = the_case(url, "113-0000085-0000085", "address-error")
    answer(url, case, "address_confirmed", confirmed_address=f"{NAME}, {ADDRESS}", note=note)
    case = the_case(url, "113-0000085-0000085", "address-error")
    answer(url, case, "partial_refund", refund_amount="10.00", note=note)

    # The buyer cancels in Your Orders as asked: the message case hands over.
    control(
        amazon,
        "PATCH",
        "orders/113-0000082-0000082",
        json={
            "orderItems": [
                {
                    "orderItemId": message["orderItems"][0]["orderItemId"],
                    "cancellation": {
                        "cancellationRequest": {"requester": "BUYER", "cancelReason": SAID}
                    },
                }
            ]
        },
    )
    ingest()
    settle_amazon(amazon)
    handed = the_case(url, "113-0000082-0000082", "cancel-request")
    if handed.state == "waiting":
        answer(url, handed, "cancel", note=note)
        settle_amazon(amazon)

    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        cases = s.query(Case).order_by(Case.id).all()
        assert [(c.type, c.state) for c in cases if c.state != "closed"] == []
        assert {c.type for c in cases} == {
            "cancel-request",
            "return-request",
            "cancel-by-message",
            "refused-delivery",
            "address-error",
        }
        return [c.id for c in cases]


def case_run_files(url: str) -> set[str]:
    """The result files the cases' own flow runs point to (what the purge must delete)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from henpin.runs import _result_file
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        run_ids = [UUID(c.flow_run_id) for c in s.scalars(select(Case)) if c.flow_run_id]
    files: set[str] = set()
    with get_client(sync_client=True) as client:
        only = FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
        for task_run in client.read_task_runs(flow_run_filter=only, limit=200):
            if task_run.state and (found := _result_file(task_run.state.data)):
                files.add(str(found))
    return files


def test_after_the_purge_no_personal_data_is_left_anywhere(
    henpin: str,  # noqa: F811
    emulator: Any,  # noqa: F811
    mailbox: Any,  # noqa: F811
    prefect_server: Any,
) -> None:
    from henpin.context import policy_in_force
    from henpin.domain import CaseType
    from henpin.housekeeping import purge_buyer_data_now
    from henpin.runs import case_result_files, case_results_key
    from tasks.ingest import flag_unreadable_order
    from tasks.orders import UnreadableOrder

    url = henpin
    case_ids = close_every_case_type(url, emulator)
    # An order Amazon sent without an id and in a shape Henpin cannot read: no case to keep it.
    flag_unreadable_order.fn(
        CaseType.CANCEL_REQUEST,
        UnreadableOrder(
            order_id=None, marketplace_id=None, problem="orderId: Field required", payload=BUYER
        ),
    )
    # The grep can see what it looks for: before the purge it is in all three places.
    assert set(case_store_rows(url)) >= {"cases", "events", "decisions", "actions"}
    assert "unreadable_payloads" in case_store_rows(url)
    assert "audit_log" not in case_store_rows(url)  # the payload is not audited
    holding = result_files()
    assert holding, "the order as read (buyer's name) is a persisted result until purged"
    # Every result that holds the buyer's data is filed under its case, so the purge finds it
    # by the case alone, whatever the Prefect server recorded of the run's task runs.
    folders = {cid: storage_root() / case_results_key(cid) for cid in case_ids}
    assert all(case_result_files(cid) for cid in case_ids), "each case's results in its folder"
    outside = [f for f in holding if not any(Path(f).is_relative_to(d) for d in folders.values())]
    assert outside == [], [result_value(f) for f in outside]

    case_files = case_run_files(url)

    days = policy_in_force().retention.buyer_data_days
    later = datetime.now(UTC) + timedelta(days=days, hours=1)
    preview = purge_buyer_data_now(url, later, days, dry_run=True)
    assert sorted(preview.case_ids) == sorted(case_ids)
    assert preview.places["result_files"] == sum(map(case_result_files, case_ids))
    assert case_store_rows(url), "a dry run changes nothing"
    assert result_files() == holding, "a dry run deletes no result"
    report = purge_buyer_data_now(url, later, days)
    assert sorted(report.case_ids) == sorted(case_ids)
    assert report.places["result_files"] >= preview.places["result_files"] > 0

    assert case_store_rows(url) == {}
    # No file of Prefect's result storage holds the buyer's data any more: not the cases'
    # folders, not a file a case's run points to, not one written outside the cases' runs.
    assert result_files() == {}
    assert [d for d in folders.values() if d.exists()] == []
    assert [f for f in case_files if Path(f).exists()] == []
    assert prefect_rows() == {}
    assert purge_buyer_data_now(url, later, days).case_ids == []  # once
