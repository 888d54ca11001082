"""The inbox page that opens a refused/unclaimed or address-error case by order id (a parcel its
carrier did not report to Amazon): the order comes from the SP-API emulator over HTTP, the case's
run starts on the session's real Prefect server, and the page says in words why a case cannot be
opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin.accounts import audit_lines
from henpin.store.db import session_scope
from henpin.store.models import Case
from tests.support import forget_flow_runs, order_json, reset_process_caches
from tests.test_inbox_support import fresh_store, signed_in, texts

PAGE = "screens/parcel_case.py"
SHIPPED, UNSHIPPED = "113-0000051-0000051", "113-0000052-0000052"


@pytest.fixture
def emulator() -> Iterator[Any]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server


@pytest.fixture
def store_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Any, prefect_server: Any
) -> Iterator[str]:
    from flows.address_error import address_error
    from flows.refused_delivery import refused_delivery

    url = fresh_store(tmp_path, monkeypatch)
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    reset_process_caches()
    forget_flow_runs()
    refused_delivery.to_deployment(name="henpin").apply()
    address_error.to_deployment(name="henpin").apply()
    shipped = order_json(SHIPPED, status="SHIPPED", price="30.00", cancel_reason=None)
    shipped["packages"] = [
        {
            "packageReferenceId": "1",
            "packageStatus": {"status": "SHIPPED"},
            "trackingNumber": "TRACK-0051",
        }
    ]
    unshipped = order_json(UNSHIPPED, status="UNSHIPPED", cancel_reason=None)
    httpx.post(
        f"{emulator.url}/_emulator/orders", json=[shipped, unshipped], timeout=10
    ).raise_for_status()
    yield url
    reset_process_caches()


def previewed(order_id: str, kind: str) -> Any:
    at = signed_in().switch_page(PAGE).run()
    assert not at.exception
    at.text_input(key="parcel.order_id").input(order_id)
    at.radio(key="parcel.kind").set_value(kind)
    return at.button(key="parcel.preview_button").click().run()


@pytest.mark.e2e
def test_an_operator_previews_the_order_then_opens_its_address_error_case(store_url: str) -> None:
    at = previewed(SHIPPED, "address-error")
    assert not at.exception
    shown = texts(at)
    assert "status **Shipped**" in shown and "\\$30.00" in shown
    assert "This opens a **Address error** case" in shown
    assert any("TRACK-0051" in str(df.value) for df in at.dataframe)
    with session_scope(store_url) as s:
        assert s.scalar(select(Case)) is None  # nothing is opened by a preview

    at.text_area(key="parcel.note").input("Carrier: no such street")
    at = at.button(key="parcel.open").click().run()
    assert not at.exception
    with session_scope(store_url) as s:
        case = s.scalar(select(Case).where(Case.order_id == SHIPPED))
        assert case is not None and case.type == "address-error"
        assert case.details["opened_by"] == "alice" and case.flow_run_id
        assert case.details["parcel_reports"][0]["source"] == "operator alice"
    [line] = audit_lines(store_url, action="case-opened")
    assert (line.actor, line.target) == ("alice", f"case {case.id}")
    assert line.detail["kind"] == "address-error"

    again = previewed(SHIPPED, "refused")
    assert f"already has an open parcel case: case {case.id} (address-error" in texts(again)
    assert not [b for b in again.button if b.key == "parcel.open"]


@pytest.mark.e2e
def test_an_unknown_or_unshipped_order_is_said_in_words(store_url: str) -> None:
    at = previewed("999-0000000-0000000", "unclaimed")
    assert not at.exception
    assert "Amazon has no order with this id" in "\n".join(e.value for e in at.error)

    at = previewed(UNSHIPPED, "refused")
    assert f"Order {UNSHIPPED} has not shipped (Amazon says UNSHIPPED)" in "\n".join(
        e.value for e in at.error
    )
    assert not [b for b in at.button if b.key == "parcel.open"]
    with session_scope(store_url) as s:
        assert s.scalar(select(Case)) is None
