"""The four other case types end to end on real parts (Prefect server, emulator over HTTP,
python-amazon-sp-api, SQLite case store, local SMTP catcher), with a save/restore check each:
the Prefect server is restarted while the case waits, and nothing is repeated afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support import (
    E2E_TIME_SCALE,
    drive_case_runs,
    forget_flow_runs,
    order_json,
    reset_process_caches,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def emulator() -> Iterator[Any]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Any]:
    from henpin.mailcatcher import MailCatcher

    with MailCatcher(host="127.0.0.1", port=0) as catcher:
        yield catcher


@pytest.fixture
def henpin(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Any,
    mailbox: Any,
    prefect_server: Any,
) -> Iterator[str]:
    from henpin.runner import case_flows
    from henpin.store.db import migrate

    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    monkeypatch.setenv("HENPIN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HENPIN_SMTP_PORT", str(mailbox.port))
    forget_flow_runs()
    reset_process_caches()
    from henpin.context import store_url

    url = store_url()
    migrate(url)
    for name, flow in case_flows().items():
        if name not in ("ingest", "housekeeping"):
            flow.to_deployment(name="henpin").apply()
    yield url
    reset_process_caches()


def control(emulator: Any, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{emulator.url}/_emulator/{path}", timeout=10, **kw)
    r.raise_for_status()
    return r.json()


def settle_amazon(emulator: Any, rounds: int = 6) -> None:
    from flows.housekeeping import housekeeping

    for _ in range(rounds):
        housekeeping()
        control(emulator, "POST", "clock/advance", json={"seconds": 120})
        drive_case_runs()


def the_case(url: str, order_id: str, case_type: str) -> Any:
    from henpin.store.db import session_scope
    from henpin.store.models import Case

    with session_scope(url) as s:
        return s.scalar(select(Case).where(Case.order_id == order_id, Case.type == case_type))


def answer(url: str, case: Any, choice: str, **fields: str) -> None:
    from henpin.app.decide import decide

    result = decide(
        url,
        case.id,
        choice=choice,
        operator="alice",
        source="inbox",
        note=fields.pop("note", ""),
        fields=fields,
    )
    assert result.accepted, result.message
    drive_case_runs()


def restart(prefect_server: Any) -> None:
    """Restart the Prefect server, and start "the runner" afresh (new settings, adapter, policy)."""
    prefect_server.stop()
    reset_process_caches()
    prefect_server.start()


def shipped_order(
    order_id: str, *, price: str = "40.00", package: dict[str, Any] | None = None
) -> dict[str, Any]:
    order = order_json(order_id, status="SHIPPED", price=price, cancel_reason=None)
    order["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": "buyer-test@marketplace.amazon.com"}
    if package:
        order["packages"] = [package]
    return order


def test_return_request_authorize_receive_inspect_refund(
    henpin: str, emulator: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case

    control(emulator, "POST", "orders", json=[shipped_order("113-0000021-0000021", price="40.00")])
    control(
        emulator,
        "POST",
        "returns",
        json=[
            {
                "orderId": "113-0000021-0000021",
                "sku": "MUG-001",
                "quantity": 1,
                "returnReason": "CR-UNWANTED_ITEM",
                "customerComments": "Changed my mind, sorry",
                "returnRequestDate": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                # Out of policy: Amazon leaves it to the seller (an in-policy US return is
                # authorized by Amazon and skips the question: tests/test_returns_e2e.py).
                "inPolicy": False,
            }
        ],
    )
    control(emulator, "POST", "clock/advance", json={"seconds": 600})
    ingest()
    drive_case_runs()
    case = the_case(henpin, "113-0000021-0000021", "return-request")
    assert case is not None and case.state == "waiting" and case.waiting_step == "authorize-return"
    # Amazon's returns report has no comment column: the comment arrives in the "Return
    # authorization request" e-mail, and the operator may paste it with their answer.
    assert case.details["reason_code"] == "CR-UNWANTED_ITEM"
    assert "Manage Returns" in " ".join(case.question["links"])

    restart(prefect_server)  # save/restore: the waiting case survives a server restart
    answer(henpin, case, "authorized", buyer_comment="Changed my mind, sorry")
    case = the_case(henpin, "113-0000021-0000021", "return-request")
    assert case.waiting_step == "item-received"
    answer(henpin, case, "received")
    case = the_case(henpin, "113-0000021-0000021", "return-request")
    assert case.waiting_step == "item-condition"
    condition = case.question["fields"][0]["options"][0]
    answer(henpin, case, "inspected", condition=condition)
    case = the_case(henpin, "113-0000021-0000021", "return-request")
    assert case.waiting_step == "confirm-refund"
    with pytest.raises(Exception, match="at most"):
        answer(henpin, case, "refund_other_amount", amount="400", note="too much")
    answer(henpin, case, "refund_other_amount", amount="30.00", note="scratched")
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "refunded-partly"
    kinds = [e.kind for e in detail.timeline]
    assert kinds.count("recommendation") == 1  # nothing before the restart ran twice
    refunds = control(emulator, "GET", "orders/113-0000021-0000021/refunds")
    assert len(refunds) == 1


def test_cancel_by_message_replies_then_hands_over(
    henpin: str, emulator: Any, mailbox: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case
    from henpin.app.messages import open_cancel_by_message

    order = order_json(
        "113-0000022-0000022", cancel_reason=None, marketplace_id="A1PA6795UKMFR9", currency="EUR"
    )
    order["buyer"] = {
        "buyerName": "Test Käufer",
        "buyerEmail": "kaeufer-test@marketplace.amazon.de",
    }
    control(emulator, "POST", "orders", json=[order])
    # Henpin's application has Amazon's restricted role, so the order shows the buyer's e-mail.
    control(emulator, "PUT", "application/roles", json={"roles": ["DIRECT_TO_CONSUMER_DELIVERY"]})
    opened = open_cancel_by_message(
        henpin, "113-0000022-0000022", buyer_message="Bitte stornieren!", operator="alice"
    )
    drive_case_runs()
    settle_amazon(emulator, rounds=1)  # the reply e-mail goes out through the outbox
    assert [m.rcpt_tos for m in mailbox.messages] == [("kaeufer-test@marketplace.amazon.de",)]
    assert "113-0000022-0000022" in mailbox.messages[0].message.get_content()
    case = the_case(henpin, "113-0000022-0000022", "cancel-by-message")
    assert case.state == "waiting" and case.waiting_step == "buyer-request-0"
    restart(prefect_server)  # save/restore while the case waits for the buyer

    # The buyer does as asked: Amazon now shows their cancel request.
    control(
        emulator,
        "PATCH",
        "orders/113-0000022-0000022",
        json={
            "orderItems": [
                {
                    "orderItemId": order["orderItems"][0]["orderItemId"],
                    "cancellation": {
                        "cancellationRequest": {
                            "requester": "BUYER",
                            "cancelReason": "Changed my mind",
                        }
                    },
                }
            ]
        },
    )
    ingest()
    settle_amazon(emulator)
    detail = show_case(henpin, opened.id)
    assert detail is not None and detail.outcome == "handed-to-cancel-request"
    request = the_case(henpin, "113-0000022-0000022", "cancel-request")
    assert request.parent_case_id == opened.id
    assert len(mailbox.messages) == 1  # the reply was sent once


def test_refused_delivery_refunds_item_price_only_when_asked(
    henpin: str, emulator: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case

    package = {
        "packageReferenceId": "1",
        "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "REJECTED_BY_BUYER"},
    }
    control(
        emulator,
        "POST",
        "orders",
        json=[shipped_order("113-0000023-0000023", price="8.00", package=package)],
    )
    ingest()
    drive_case_runs()
    case = the_case(henpin, "113-0000023-0000023", "refused-delivery")
    assert case is not None and case.waiting_step == "refund-asked"
    restart(prefect_server)  # save/restore while the case waits for the buyer's ask
    answer(henpin, case, "buyer_asked")
    case = the_case(henpin, "113-0000023-0000023", "refused-delivery")
    answer(henpin, case, "refund_proposed")
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome in ("refunded-in-full", "refunded-partly")
    feeds = control(emulator, "GET", "feeds")
    assert any("RefusedDelivery" in f["document"] for f in feeds)


def test_address_error_asks_buyer_then_partial_refund(
    henpin: str, emulator: Any, prefect_server: Any
) -> None:
    from flows.ingest import ingest
    from henpin.app.cases import show_case

    package = {
        "packageReferenceId": "1",
        "packageStatus": {"status": "UNDELIVERABLE", "detailedStatus": "UNDELIVERABLE"},
    }
    control(
        emulator, "POST", "orders", json=[shipped_order("113-0000024-0000024", package=package)]
    )
    ingest()
    drive_case_runs()
    settle_amazon(emulator, rounds=2)  # the confirm-delivery-details message goes out
    messages = control(emulator, "GET", "messages")
    assert [m["action"] for m in messages] == ["confirmDeliveryDetails"]
    case = the_case(henpin, "113-0000024-0000024", "address-error")
    assert case.waiting_step == "buyer-address"
    restart(prefect_server)  # save/restore while the case waits for the buyer's answer
    answer(henpin, case, "address_confirmed", confirmed_address="1 Test Street, Testville")
    case = the_case(henpin, "113-0000024-0000024", "address-error")
    assert case.waiting_step == "resolve-address-error"
    assert {o["choice"] for o in case.question["options"]} >= {
        "reship",
        "partial_refund",
        "cancel_for_reorder",
    }
    answer(henpin, case, "partial_refund", refund_amount="10.00", note="agreed with buyer")
    settle_amazon(emulator)
    detail = show_case(henpin, case.id)
    assert detail is not None and detail.outcome == "refunded-partly"
    assert len(control(emulator, "GET", "messages")) == 1  # asked once, never twice
