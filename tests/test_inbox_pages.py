"""Two inbox pages that reach beyond the case store: opening a "cancel asked by message" case
(the order comes from the SP-API emulator over HTTP; the case's run starts on the session's real
Prefect server) with the reply previewed first, and the owner's policy replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from henpin.store.db import session_scope
from henpin.store.models import Case
from tests.support import forget_flow_runs, order_json, reset_process_caches
from tests.test_inbox_support import (
    REPO_POLICIES,
    fresh_store,
    on_page,
    set_operator,
    signed_in,
    texts,
    waiting_case,
)

DE = "A1PA6795UKMFR9"


@pytest.fixture
def emulator() -> Iterator[Any]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server


@pytest.fixture
def store_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Any, prefect_server: Any
) -> Iterator[str]:
    from flows.cancel_by_message import cancel_by_message

    url = fresh_store(tmp_path, monkeypatch)
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    reset_process_caches()
    forget_flow_runs()
    cancel_by_message.to_deployment(name="henpin").apply()
    httpx.post(
        f"{emulator.url}/_emulator/orders",
        json=[
            order_json(
                "302-0000000-0000301",
                marketplace_id=DE,
                currency="EUR",
                price="39.00",
                cancel_reason=None,
            )
        ],
        timeout=10,
    ).raise_for_status()
    yield url
    reset_process_caches()


@pytest.mark.e2e
def test_a_case_from_a_buyers_message_shows_the_reply_in_the_buyers_language_first(
    store_url: str,
) -> None:
    at = on_page(signed_in(), "message")
    assert not at.exception
    at.text_input(key="message.order_id").input("302-0000000-0000301")
    at.text_area(key="message.words").input("Bitte stornieren Sie meine Bestellung.")
    at = at.button(key="message.preview_button").click().run()
    assert "Amazon.de, in German" in texts(at)
    # No buyer e-mail from Amazon (no restricted role): the reply is to be sent in Seller Central.
    assert "Buyer-Seller Messages" in texts(at)
    subject = next(w.value for w in at.text_input if w.label == "Subject")
    body = next(w.value for w in at.text_area if w.label == "Message")
    assert "302-0000000-0000301" in subject
    assert "Bestellungen" in body  # the German template: "Meine Bestellungen"
    with session_scope(store_url) as s:
        assert s.scalar(select(Case)) is None  # nothing is opened by a preview

    at = at.button(key="message.open").click().run()
    assert not at.exception
    with session_scope(store_url) as s:
        case = s.scalar(select(Case).where(Case.order_id == "302-0000000-0000301"))
        assert case is not None and case.type == "cancel-by-message"
        assert case.details["buyer_message"] == "Bitte stornieren Sie meine Bestellung."
        assert case.flow_run_id  # its run is on the Prefect server, to send the reply

    again = on_page(signed_in(), "message")
    again.text_input(key="message.order_id").input("302-0000000-0000301")
    again.text_area(key="message.words").input("Noch einmal.")
    again = again.button(key="message.preview_button").click().run()
    assert f"Case {case.id} for this order is already open" in texts(again)
    assert not [b for b in again.button if b.key == "message.open"]


@pytest.mark.e2e
def test_an_unknown_order_is_said_in_words(store_url: str) -> None:
    at = on_page(signed_in(), "message")
    at.text_input(key="message.order_id").input("999-0000000-0000000")
    at = at.button(key="message.preview_button").click().run()
    assert not at.exception
    assert "Amazon did not return order 999-0000000-0000000" in "\n".join(e.value for e in at.error)


@pytest.mark.e2e
def test_policy_replay_page_shows_what_a_proposed_policy_would_change(
    store_url: str, emulator: Any
) -> None:
    # A high-value order went to an operator under the policy in force (limit 200 USD).
    waiting_case(
        store_url,
        "111-0000000-0000302",
        timedelta(hours=3),
        recommendation={"action": "ask_operator", "rule": "high-value", "reason": "over 200 USD"},
        order_snapshot=order_snapshot(emulator, "111-0000000-0000302", "250.00"),
    )
    set_operator(store_url, "alice", role="admin")  # the owner
    at = on_page(signed_in(), "replay")
    assert not at.exception
    proposed = REPO_POLICIES.read_text().replace("over: {USD: 200,", "over: {USD: 300,")
    assert proposed != REPO_POLICIES.read_text()
    at.text_area(key="replay.text").input(proposed)
    at = at.button(key="replay.run").click().run()
    assert not at.exception
    assert [m.value for m in at.metric][:1] == ["1 / 1"]
    table = at.dataframe[0].value.to_string()
    assert "111-0000000-0000302" in table and "high-value" in table

    at.text_area(key="replay.text").input(proposed.replace("version:", "versoin:", 1))
    at = at.button(key="replay.run").click().run()
    assert "The proposed policy has an error" in at.error[0].value
    assert "versoin" in at.error[0].value


@pytest.mark.e2e
def test_policy_replay_is_for_admins_only(store_url: str) -> None:
    set_operator(store_url, "alice", role="operator")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        on_page(signed_in(), "replay")  # not in an operator's navigation at all


def order_snapshot(emulator: Any, order_id: str, price: str) -> dict[str, Any]:
    """The order as Henpin read it from Amazon (the emulator), as a case keeps it."""
    from henpin.context import adapter

    httpx.post(
        f"{emulator.url}/_emulator/orders",
        json=[order_json(order_id, price=price)],
        timeout=10,
    ).raise_for_status()
    return adapter().get_order(order_id).model_dump(mode="json")
