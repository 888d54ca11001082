"""Fault modes (``/_emulator/faults``) and restarts that keep state: what Henpin's retries, outbox
reconciliation and soak script rely on. Delays are a fraction of a second; simulated time is moved."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sp_api.auth import access_token_client as token_cache
from sp_api.base.exceptions import (
    SellingApiRequestThrottledException,
    SellingApiServerException,
    SellingApiTemporarilyUnavailableException,
)

from emulator.clock import iso, parse_time
from emulator.faults import message_fails
from emulator.server import EmulatorServer
from tests.test_emulator import (
    GOOD_CREDENTIALS,
    US,
    US_PENDING,
    US_UNSHIPPED_HIGH,
    US_UNSHIPPED_LOW,
    advance,
    cancel_message,
    control_order,
    envelope,
    feeds_api,
    finished_report,
    http,
    orders_api,
    status_of,
    submit,
)
from tests.test_emulator_reports import reports_api

pytestmark = [pytest.mark.e2e]  # starts a server or a subprocess (tests/conftest.py)

ACK = "POST_ORDER_ACKNOWLEDGEMENT_DATA"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as running:
        yield running


@pytest.fixture
def url(server: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    token_cache.cache.clear()
    http.post(f"{server.url}/_emulator/reset").raise_for_status()  # also clears faults
    http.post(f"{server.url}/_emulator/seed-demo").raise_for_status()
    return server.url


def set_faults(url: str, settings: dict[str, Any]) -> dict[str, Any]:
    answer = http.put(f"{url}/_emulator/faults", json=settings)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def access_token(url: str) -> str:
    answer = http.post(
        f"{url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": GOOD_CREDENTIALS["refresh_token"],
            "client_id": GOOD_CREDENTIALS["lwa_app_id"],
            "client_secret": GOOD_CREDENTIALS["lwa_client_secret"],
        },
    )
    token: str = answer.json()["access_token"]
    return token


def get_order_statuses(url: str, count: int) -> list[int]:
    """Statuses of ``count`` getOrder calls, starting with a full quota (burst 30)."""
    advance(url, 60)
    headers = {"x-amz-access-token": access_token(url)}
    path = f"{url}/orders/2026-01-01/orders/{US_PENDING}"
    return [http.get(path, headers=headers).status_code for _ in range(count)]


def test_settings_are_checked_normalised_and_cleared(url: str) -> None:
    assert http.get(f"{url}/_emulator/faults").json() == {"faults": None, "injected": {}}
    refused = http.put(
        f"{url}/_emulator/faults",
        json={
            "rules": [
                {"operations": ["cancelOrder"], "rate": 2, "fault": "418"},
                {"operations": ["getOrder"], "rate": 0.1, "fault": "429", "afterApply": True},
                {"operations": ["*"], "rate": 0.1, "fault": "slow", "delaySeconds": 500},
            ],
            "feeds": {"fatalRate": -1},
        },
    )
    assert refused.status_code == 400
    assert len(refused.json()["problems"]) == 5
    shown = set_faults(
        url, {"seed": 7, "rules": [{"operations": ["*"], "rate": 0.5, "fault": "timeout"}]}
    )
    assert shown["faults"]["rules"] == [
        {
            "operations": ["*"],
            "rate": 0.5,
            "fault": "timeout",
            "delaySeconds": 35.0,
            "then": "drop",
            "afterApply": False,
        }
    ]
    assert shown["faults"]["feeds"] == {"fatalRate": 0.0, "partialErrorRate": 0.0}
    assert http.delete(f"{url}/_emulator/faults").json()["faults"] is None


def test_a_share_of_requests_fail_the_same_way_for_the_same_seed(url: str) -> None:
    settings = {"seed": 7, "rules": [{"operations": ["getOrder"], "rate": 0.4, "fault": "500"}]}
    set_faults(url, settings)
    first = get_order_statuses(url, 30)
    assert set(first) == {200, 500} and 5 <= first.count(500) <= 20
    set_faults(url, settings)  # counters restart: the same requests get the same faults
    assert get_order_statuses(url, 30) == first
    set_faults(url, dict(settings, seed=8))
    other = get_order_statuses(url, 30)
    assert other != first
    calls = [c for c in http.get(f"{url}/_emulator/calls").json() if c["fault"]]
    assert {(c["operation"], c["status"], c["fault"]) for c in calls} == {("getOrder", 500, "500")}
    assert len(calls) == 2 * first.count(500) + other.count(500)
    # Counted since the settings were last put in force.
    assert http.get(f"{url}/_emulator/faults").json()["injected"] == {"500": other.count(500)}


def test_faults_never_touch_lwa_or_the_control_api(url: str) -> None:
    set_faults(url, {"rules": [{"operations": ["*"], "rate": 1, "fault": "503"}]})
    assert http.get(f"{url}/_emulator/orders/{US_PENDING}").status_code == 200
    with pytest.raises(SellingApiTemporarilyUnavailableException):
        orders_api(url).get_order(US_PENDING)  # the token was issued; the call failed
    assert get_order_statuses(url, 1) == [503]


def test_refused_create_feed_changes_nothing_and_spends_no_quota(url: str) -> None:
    set_faults(url, {"rules": [{"operations": ["createFeed"], "rate": 1, "fault": "429"}]})
    document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
    feeds = feeds_api(url)
    uploaded = feeds.create_feed_document(io.StringIO(document), "text/xml; charset=UTF-8")
    document_id = uploaded.payload["feedDocumentId"]
    for _ in range(20):  # more than createFeed's burst of 15
        with pytest.raises(SellingApiRequestThrottledException):
            feeds.create_feed(ACK, document_id)
    assert http.get(f"{url}/_emulator/feeds").json() == []
    http.delete(f"{url}/_emulator/faults").raise_for_status()
    for _ in range(15):  # the faulted calls spent none of the quota
        feeds.create_feed(ACK, document_id)
    assert len(http.get(f"{url}/_emulator/feeds").json()) == 15


def test_after_apply_creates_the_feed_then_answers_500(url: str) -> None:
    set_faults(
        url,
        {"rules": [{"operations": ["createFeed"], "rate": 1, "fault": "500", "afterApply": True}]},
    )
    document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
    with pytest.raises(SellingApiServerException):
        submit(url, ACK, document)
    (feed,) = http.get(f"{url}/_emulator/feeds").json()
    (call,) = [
        c for c in http.get(f"{url}/_emulator/calls").json() if c["operation"] == "createFeed"
    ]
    assert (call["status"], call["fault"], call["afterApply"]) == (500, "500", True)
    advance(url, 61)  # the feed the client never heard of is processed all the same
    assert status_of(control_order(url, US_PENDING)) == "CANCELLED"
    # Reconciliation finds it through getFeeds.
    listed = feeds_api(url).get_feeds(feedTypes=[ACK]).payload["feeds"]
    assert [f["feedId"] for f in listed] == [feed["feedId"]]


def test_timeout_drops_the_connection_and_slow_answers_late(url: str) -> None:
    headers = {"x-amz-access-token": access_token(url)}
    path = f"{url}/orders/2026-01-01/orders/{US_PENDING}"
    set_faults(
        url,
        {
            "rules": [
                {"operations": ["getOrder"], "rate": 1, "fault": "timeout", "delaySeconds": 0.6}
            ]
        },
    )
    with pytest.raises(httpx.ReadTimeout):
        http.get(path, headers=headers, timeout=0.2)  # the client gives up first
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(path, headers=headers, timeout=5)  # the server gives up: no answer at all
    assert time.monotonic() - started >= 0.5
    set_faults(
        url,
        {
            "rules": [
                {
                    "operations": ["getOrder"],
                    "rate": 1,
                    "fault": "timeout",
                    "delaySeconds": 0.3,
                    "then": "answer",
                }
            ]
        },
    )
    started = time.monotonic()
    assert http.get(path, headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.3
    set_faults(
        url,
        {"rules": [{"operations": ["getOrder"], "rate": 1, "fault": "slow", "delaySeconds": 0.3}]},
    )
    started = time.monotonic()
    assert http.get(path, headers=headers).json()["order"]["orderId"] == US_PENDING
    assert time.monotonic() - started >= 0.3
    faults = [c["fault"] for c in http.get(f"{url}/_emulator/calls").json()]
    assert faults == ["timeout", "timeout", "timeout", "slow"]
    statuses = [c["status"] for c in http.get(f"{url}/_emulator/calls").json()]
    assert statuses == [0, 0, 200, 200]  # 0: dropped, no answer


def test_timeout_after_apply_cancels_but_never_answers(url: str) -> None:
    set_faults(
        url,
        {
            "rules": [
                {
                    "operations": ["createFeed"],
                    "rate": 1,
                    "fault": "timeout",
                    "delaySeconds": 0.2,
                    "afterApply": True,
                }
            ]
        },
    )
    document = envelope("OrderAcknowledgement", [cancel_message(1, US_UNSHIPPED_LOW, [])])
    with pytest.raises(httpx.RemoteProtocolError):
        submit(url, ACK, document)
    assert len(http.get(f"{url}/_emulator/feeds").json()) == 1


def test_malformed_json_is_a_200_that_does_not_parse(url: str) -> None:
    set_faults(url, {"rules": [{"operations": ["getOrder"], "rate": 1, "fault": "malformed_json"}]})
    answer = http.get(
        f"{url}/orders/2026-01-01/orders/{US_PENDING}",
        headers={"x-amz-access-token": access_token(url)},
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        answer.json()
    # python-amazon-sp-api swallows the decoding error: an empty payload, no exception.
    assert orders_api(url).get_order(US_PENDING).payload == {}


def test_fatal_feed_applies_nothing(url: str) -> None:
    set_faults(url, {"feeds": {"fatalRate": 1}})
    document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
    feed, report = finished_report(url, submit(url, ACK, document))
    assert feed["processingStatus"] == "FATAL"
    assert report.findtext(".//ResultMessageCode") == "5002"
    assert status_of(control_order(url, US_PENDING)) == "PENDING"
    assert http.get(f"{url}/_emulator/feeds").json()[0]["fault"] == "fatal"


def test_partial_errors_fail_a_share_of_messages_without_applying_them(url: str) -> None:
    set_faults(url, {"seed": 3, "feeds": {"partialErrorRate": 0.5}})
    orders = [US_PENDING, US_UNSHIPPED_LOW, US_UNSHIPPED_HIGH, "113-9000004-0000004"]
    messages = [cancel_message(n, order, []) for n, order in enumerate(orders, start=1)]
    feed_id = submit(url, ACK, envelope("OrderAcknowledgement", messages))
    plan = {"seed": 3, "messageErrorRate": 0.5}
    failing = {n for n in range(1, 5) if message_fails(plan, feed_id, n)}
    assert 0 < len(failing) < 4, "seed 3 should fail some messages and not others"
    feed, report = finished_report(url, feed_id)
    assert feed["processingStatus"] == "DONE"
    errors = {int(r.findtext("MessageID") or 0) for r in report.iter("Result")}
    assert errors == failing
    assert all(r.findtext("ResultMessageCode") == "5002" for r in report.iter("Result"))
    for number, order in enumerate(orders, start=1):
        expected = {"CANCELLED"} if number not in failing else {"PENDING", "UNSHIPPED"}
        assert status_of(control_order(url, order)) in expected


def test_fatal_report(url: str) -> None:
    set_faults(url, {"reports": {"fatalRate": 1}})
    reports = reports_api(url)
    start = iso(parse_time(http.get(f"{url}/_emulator/clock").json()["now"]) - timedelta(days=7))
    report_id = reports.create_report(
        reportType="GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
        dataStartTime=start,
        marketplaceIds=[US],
    ).payload["reportId"]
    advance(url, 61)
    report = reports.get_report(report_id).payload
    assert report["processingStatus"] == "FATAL" and "reportDocumentId" not in report


def test_restart_continues_feeds_and_reports_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SP_API_DEFAULT_MARKETPLACE", raising=False)
    state_file = tmp_path / "emulator.json"
    with EmulatorServer(state_file=state_file, seed_demo=True) as first:
        token_cache.cache.clear()
        document = envelope("OrderAcknowledgement", [cancel_message(1, US_PENDING, [])])
        feed_id = submit(first.url, ACK, document)
        start = iso(parse_time(advance(first.url, 0)["now"]) - timedelta(days=7))
        report_id = (
            reports_api(first.url)
            .create_report(
                reportType="GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE",
                dataStartTime=start,
                marketplaceIds=[US],
            )
            .payload["reportId"]
        )
        set_faults(
            first.url,
            {"seed": 5, "rules": [{"operations": ["getOrder"], "rate": 0.5, "fault": "500"}]},
        )
        advance(first.url, 20)  # both still IN_QUEUE
        stopped_at = http.get(f"{first.url}/_emulator/clock").json()["now"]
    with EmulatorServer(state_file=state_file, seed_demo=True) as second:
        assert http.get(f"{second.url}/_emulator/clock").json()["now"] >= stopped_at
        assert feeds_api(second.url).get_feed(feed_id).payload["processingStatus"] == "IN_QUEUE"
        assert status_of(control_order(second.url, US_PENDING)) == "PENDING"
        advance(second.url, 41)
        feed = feeds_api(second.url).get_feed(feed_id).payload
        assert feed["processingStatus"] == "DONE"
        assert status_of(control_order(second.url, US_PENDING)) == "CANCELLED"
        report = reports_api(second.url).get_report(report_id).payload
        assert report["processingStatus"] == "DONE"
        assert http.get(f"{second.url}/_emulator/faults").json()["faults"]["seed"] == 5
        processing = feeds_api(second.url).get_feed_document(feed["resultFeedDocumentId"])
        assert ET.fromstring(processing.encode()).findtext(".//MessagesSuccessful") == "1"
    with EmulatorServer(state_file=state_file) as third:  # applied once, not again on restart
        (listed,) = http.get(f"{third.url}/_emulator/feeds").json()
        assert [r["resultCode"] for r in listed["results"]] == ["Success"]
