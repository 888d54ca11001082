"""Shared set-up for the inbox tests (no tests here): a real SQLite case store under tmp_path with
operators, cases as the flows leave them, and the inbox driven through Streamlit's AppTest.

The other test_inbox*.py files import what they need from here.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from henpin import accounts
from henpin.accounts import add_operator
from henpin.settings import load_settings
from henpin.store.db import engine_for, migrate, session_scope
from henpin.store.models import Action, Case, Decision, Operator

APP = Path(__file__).parents[1] / "ui" / "inbox.py"
PASSWORD = "correct horse battery"
CHOICES = ["cancel", "keep_order", "escalate"]
TIMEOUT = 20  # first runs import Prefect through henpin.app

PAGES = {
    "inbox": "screens/cases.py",
    "case": "screens/case.py",
    "bulk": "screens/bulk.py",
    "dashboard": "screens/dashboard.py",
    "operators": "screens/operators.py",
    "audit": "screens/audit.py",
    "message": "screens/message_case.py",
    "replay": "screens/replay.py",
}


# Argon2 at its production cost takes ~0.3 s per hash; the tests sign in hundreds of times.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_TEMPLATE: dict[str, Path] = {}


def _template_store(folder: Path) -> Path:
    """A migrated store with alice in it, made once per test session and copied per test."""
    if "db" not in _TEMPLATE:
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'template.db'}"
        migrate(url)
        add_operator(url, "alice", PASSWORD)
        engine_for(url).dispose()  # the last connection closing folds the WAL into the file
        _TEMPLATE["db"] = folder / "template.db"
    return _TEMPLATE["db"]


REPO_POLICIES = Path(__file__).resolve().parent.parent / "policies.yaml"


def fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh case store with one operator (alice), as `henpin up` leaves it; each test file's
    `store_url` fixture returns it."""
    monkeypatch.chdir(tmp_path)  # no developer's .env leaks in
    monkeypatch.setenv("HENPIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO_POLICIES))  # as `henpin up` finds it
    for var in ("HENPIN_DATABASE_URL", "HENPIN_PREFECT_UI_URL", "HENPIN_SESSION_HOURS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(accounts, "_hasher", FAST_HASHER)
    template = _template_store(tmp_path.parent / "inbox-template")
    (tmp_path / "home").mkdir()
    shutil.copyfile(template, tmp_path / "home" / "henpin.db")
    return load_settings().store_url


def set_operator(url: str, name: str, **fields: Any) -> None:
    with session_scope(url) as s:
        op = s.query(Operator).filter_by(name=name).one()
        for key, value in fields.items():
            setattr(op, key, value)


def cancel_order(order_id: str, marketplace_id: str = "ATVPDKIKX0DER") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "marketplace_id": marketplace_id,
        "fulfillment_status": "UNSHIPPED",
        "created_time": "2026-03-02T08:15:00Z",
        "buyer_cancel_reason": "Found it cheaper elsewhere",
        "value": {"amount": "249.90", "currency": "USD"},
        "items": [
            {
                "sku": "KETTLE-JP-01",
                "title": "Cast iron kettle",
                "quantity": 1,
                "unit_price": {"amount": "249.90", "currency": "USD"},
                "buyer_cancel_reason": "Found it cheaper elsewhere",
            }
        ],
    }


def waiting_case(url: str, order_id: str, due_in: timedelta, **fields: Any) -> int:
    """A cancel request waiting for an operator, as the cancel-request flow leaves it."""
    marketplace_id = fields.get("marketplace_id", "ATVPDKIKX0DER")
    waiting: dict[str, Any] = {
        "type": "cancel-request",
        "order_id": order_id,
        "marketplace_id": marketplace_id,
        "state": "waiting",
        "waiting_step": "operator-decision",
        "choices": CHOICES,
        "deadline": datetime.now(UTC) + due_in,
        "timeout_choice": "escalate",
        "recommendation": {
            "action": "keep_order",
            "rule": "high-value-needs-operator",
            "reason": "Order value 249.90 USD is above the 100.00 USD automatic limit.",
        },
        "order_snapshot": cancel_order(order_id, marketplace_id),
        "flow_run_id": None,
    }
    case = Case(**{**waiting, **fields})
    with session_scope(url) as s:
        s.add(case)
        s.flush()
        return case.id


def address_error_case(url: str, order_id: str) -> int:
    """An address error waiting for the way out, with the money of each option in details."""
    question = {
        "step": "resolve-address-error",
        "title": f"How to resolve the undeliverable parcel of order {order_id}?",
        "prompt": "- Order: ...",
        "choices": ["reship", "partial_refund", "cancel_for_reorder", "escalate"],
        "labels": {"reship": "Reship to the confirmed address"},
        "fields": [
            {
                "name": "tracking_number",
                "kind": "text",
                "label": "New tracking number",
                "required_for": ["reship"],
            },
            {
                "name": "reship_cost",
                "kind": "money",
                "label": "Reship cost",
                "required_for": ["reship"],
                "minimum": "0",
                "currency": "EUR",
            },
            {
                "name": "refund_amount",
                "kind": "money",
                "label": "Refund amount",
                "required_for": ["partial_refund"],
                "minimum": "0.01",
                "maximum": "40.00",
                "currency": "EUR",
            },
        ],
        "note_required_for": ["partial_refund"],
        "deadline_hours": 48,
        "timeout_choice": "escalate",
        "recommended": "reship",
        "options": [],
    }
    options = [
        {"choice": "reship", "label": "Reship", "cost": {"amount": "6.50", "currency": "EUR"}},
        {
            "choice": "partial_refund",
            "label": "Refund part",
            "refund": {"amount": "10.00", "currency": "EUR"},
        },
        {
            "choice": "cancel_for_reorder",
            "label": "Refund in full",
            "refund": {"amount": "40.00", "currency": "EUR"},
            "fee_recovered": {"amount": "4.80", "currency": "EUR"},
        },
    ]
    order = cancel_order(order_id, "A1PA6795UKMFR9")
    order.update(buyer_cancel_reason=None, value={"amount": "40.00", "currency": "EUR"})
    return waiting_case(
        url,
        order_id,
        timedelta(hours=20),
        type="address-error",
        marketplace_id="A1PA6795UKMFR9",
        waiting_step="resolve-address-error",
        choices=question["choices"],
        question=question,
        recommendation={},
        order_snapshot=order,
        details={
            "options": options,
            "buyer_message": "Please send it to Hauptstr. 5 instead",
            "confirmed_address": "Hauptstr. 5, 10115 Berlin",
        },
    )


def closed_case(url: str, order_id: str, outcome: str, **fields: Any) -> int:
    return waiting_case(
        url,
        order_id,
        timedelta(hours=1),
        state="closed",
        outcome=outcome,
        closed_at=datetime.now(UTC),
        waiting_step=None,
        **fields,
    )


def decision(url: str, case_id: int, choice: str, at: datetime, source: str = "inbox") -> None:
    with session_scope(url) as s:
        s.add(
            Decision(
                case_id=case_id,
                step="operator-decision",
                choice=choice,
                operator="alice",
                source=source,
                at=at,
            )
        )


def refund_action(url: str, case_id: int, key: str, reason: str, amount: str, **kw: Any) -> None:
    payload = {
        "order_id": "x",
        "action_type": "Refund",
        "items": [
            {
                "order_item_id": "1",
                "reason": reason,
                "components": [{"type": "Principal", "amount": amount, "currency": "EUR"}],
            }
        ],
    }
    stored_action(
        url,
        case_id,
        key,
        kind="refund",
        feed_type="POST_PAYMENT_ADJUSTMENT_DATA",
        payload=payload,
        marketplace_id=kw.get("marketplace_id", "A1PA6795UKMFR9"),
        status=kw.get("status", "done"),
    )


def stored_action(url: str, case_id: int, key: str, **fields: Any) -> None:
    """An outbox action as the outbox leaves it (kind, feed_type, payload, status, ...)."""
    with session_scope(url) as s:
        s.add(Action(key=key, case_id=case_id, **fields))


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def signed_in(name: str = "alice", password: str = PASSWORD) -> AppTest:
    at = app().run()
    at.text_input(key="login.name").input(name)
    at.text_input(key="login.password").input(password)
    return at.button(key="login.submit").click().run()


def on_page(at: AppTest, page: str, **query: str) -> AppTest:
    """Open one of the inbox's pages (after sign-in), with URL parameters such as case=12."""
    for key, value in query.items():
        at.query_params[key] = value
    return at.switch_page(PAGES[page]).run()


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.title, *at.subheader, *at.info, *at.success]
    parts += [*at.warning, *at.error]
    return "\n".join(str(m.value) for m in parts)


def inbox_table(at: AppTest) -> Any:
    """The inbox's table of cases (its key changes with the cases it shows), or None."""
    tables = [d for d in at.dataframe if str(d.key or "").startswith("inbox.table.")]
    return tables[0] if tables else None


def listed(at: AppTest) -> list[int]:
    """The ids of the cases the inbox's table lists, in its order."""
    table = inbox_table(at)
    return [] if table is None else [int(i) for i in table.value.index]


def table_text(at: AppTest) -> str:
    """What the inbox's table shows, as text."""
    table = inbox_table(at)
    return "" if table is None else str(table.value.to_string())


def select_rows(at: AppTest, *case_ids: int) -> AppTest:
    """Select these cases' rows in the inbox's table, as a click on each row does."""
    rows = [listed(at).index(i) for i in case_ids]
    at.session_state[str(inbox_table(at).key)] = {
        "selection": {"rows": rows, "columns": [], "cells": []}
    }
    return at.run()


def opened(at: AppTest, case_id: int) -> AppTest:
    """Open the case from the inbox: select its row, then its Open button."""
    return select_rows(at, case_id).button(key="inbox.open_selected").click().run()


def open_keys(at: AppTest) -> list[str]:
    """The cases the inbox lists, named as their Open buttons were before the table."""
    return [f"inbox.open.{i}" for i in listed(at)]
