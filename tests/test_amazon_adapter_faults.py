"""The adapter against the emulator's fault modes (`PUT /_emulator/faults`): throttling, server
errors, dropped connections and malformed JSON are absorbed where repeating is safe, and said
plainly where it is not. Each test's figures come from the emulator's own fault counters."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from henpin.amazon import AmazonAdapter, AmazonPayloadError, AmazonUnavailable, RetryPolicy
from henpin.settings import Settings
from tests.test_amazon_adapter import FakeTime, emulated_order

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

US = "ATVPDKIKX0DER"


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    from emulator.server import EmulatorServer

    with EmulatorServer(port=0) as server:
        yield server.url


@pytest.fixture
def emulator(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as control:
        control.post("/_emulator/reset").raise_for_status()
        yield control


def faulty(control: httpx.Client, *rules: dict[str, Any], **other: Any) -> None:
    control.put(
        "/_emulator/faults", json={"seed": 11, "rules": list(rules), **other}
    ).raise_for_status()


def injected(control: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = control.get("/_emulator/faults").json()["injected"]
    return counts


def adapter_for(url: str, control: httpx.Client, **kwargs: Any) -> AmazonAdapter:
    time = FakeTime(
        on_sleep=lambda s: control.post(
            "/_emulator/clock/advance", json={"seconds": s}
        ).raise_for_status()
    )
    return AmazonAdapter(
        Settings(_env_file=None, emulator_url=url),  # type: ignore[call-arg]
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(2),
        **kwargs,
    )


def test_throttling_and_server_errors_on_reads_are_absorbed(
    emulator: httpx.Client, emulator_url: str
) -> None:
    orders = [emulated_order(f"113-7000000-00000{n:02d}") for n in range(25)]
    emulator.post("/_emulator/orders", json=orders).raise_for_status()
    faulty(
        emulator,
        {"operations": ["*"], "rate": 0.15, "fault": "429"},
        {"operations": ["*"], "rate": 0.15, "fault": "500"},
        {"operations": ["*"], "rate": 0.15, "fault": "503"},
    )
    since = datetime.now(UTC) - timedelta(days=1)
    # searchOrders refills one request per 3 minutes: after a 429 the adapter waits that long
    # (in fake time, which moves the emulator's clock too).
    patient = RetryPolicy(max_attempts=8, max_wait_s=600)
    with adapter_for(emulator_url, emulator, retry=patient) as adapter:
        found = list(adapter.search_orders([US], last_updated_after=since, page_size=5))
        read = [adapter.get_order(o["orderId"]).order_id for o in orders]
    assert sorted(o.order_id for o in found) == sorted(o["orderId"] for o in orders)
    assert read == [o["orderId"] for o in orders]
    counts = injected(emulator)
    assert counts.get("429", 0) + counts.get("500", 0) + counts.get("503", 0) >= 8, counts


def test_dropped_connections_on_reads_are_retried(
    emulator: httpx.Client, emulator_url: str
) -> None:
    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-7100000-0000001")]
    ).raise_for_status()
    faulty(
        emulator, {"operations": ["getOrder"], "rate": 0.5, "fault": "timeout", "delaySeconds": 1.2}
    )
    with adapter_for(emulator_url, emulator, timeout_s=0.8) as adapter:
        adapter.retry = adapter.retry.model_copy(update={"max_attempts": 8})
        for _ in range(3):
            assert adapter.get_order("113-7100000-0000001").order_id == "113-7100000-0000001"
    assert injected(emulator).get("timeout", 0) >= 1


def test_malformed_json_is_a_payload_error_that_keeps_the_raw_text(
    emulator: httpx.Client, emulator_url: str
) -> None:
    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-7200000-0000001")]
    ).raise_for_status()
    faulty(
        emulator, {"operations": ["getOrder", "searchOrders"], "rate": 1, "fault": "malformed_json"}
    )
    with adapter_for(emulator_url, emulator) as adapter:
        with pytest.raises(AmazonPayloadError) as raised:
            adapter.get_order("113-7200000-0000001")
        assert isinstance(raised.value.payload, str) and raised.value.payload.startswith("{")
        assert "not JSON" in str(raised.value) and raised.value.operation == "getOrder"
        with pytest.raises(AmazonPayloadError):
            list(
                adapter.search_orders(
                    [US], last_updated_after=datetime.now(UTC) - timedelta(hours=3)
                )
            )
    calls = [c for c in emulator.get("/_emulator/calls").json() if c["operation"] == "getOrder"]
    assert len(calls) == adapter.retry.max_attempts  # retried, as any read, then said plainly
    assert {c["fault"] for c in calls} == {"malformed_json"}


def test_a_lost_create_feed_answer_is_never_retried(
    emulator: httpx.Client, emulator_url: str
) -> None:
    from henpin.amazon.feed_xml import order_acknowledgement_feed
    from henpin.domain import CancelOrder, FeedType

    emulator.post(
        "/_emulator/orders", json=[emulated_order("113-7300000-0000001")]
    ).raise_for_status()
    faulty(emulator, {"operations": ["createFeed"], "rate": 1, "fault": "500", "afterApply": True})
    document = order_acknowledgement_feed(
        "A1HENPINDEMONA",  # the demo seller's merchant token in NA
        [(1, CancelOrder(order_id="113-7300000-0000001", order_item_ids=["000000101"]))],
    )
    with adapter_for(emulator_url, emulator) as adapter, pytest.raises(AmazonUnavailable) as raised:
        adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, US, document)
    assert raised.value.may_have_applied
    (created,) = emulator.get("/_emulator/feeds").json()  # it was applied: reconcile finds it
    assert created["document"] == document
    assert injected(emulator) == {"500": 1}


def test_a_returns_report_that_fails_at_amazon_is_asked_for_again(
    emulator: httpx.Client, emulator_url: str
) -> None:
    emulator.post("/_emulator/seed-demo").raise_for_status()
    faulty(emulator, reports={"fatalRate": 1})
    since = datetime.now(UTC) - timedelta(days=2)
    with adapter_for(emulator_url, emulator) as adapter:
        with pytest.raises(AmazonUnavailable, match="could not make the returns report"):
            adapter.returns_since([US], since)
        emulator.delete("/_emulator/faults").raise_for_status()
        assert len(adapter.returns_since([US], since)) == 2
    statuses = [r["processingStatus"] for r in emulator.get("/_emulator/reports").json()]
    assert sorted(statuses) == ["DONE", "FATAL"]
