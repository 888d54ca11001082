"""Regions: one Amazon login per SP-API region, each call at its region's base URL.

Real parts: the emulator over HTTP, python-amazon-sp-api (through the adapter), the ingest flow
on a real Prefect server, the `henpin` CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.auth import Credentials
from emulator.server import EmulatorServer
from henpin.amazon import AmazonAdapter, AmazonAuthError, FeedProcessingStatus
from henpin.amazon.feed_xml import order_acknowledgement_feed
from henpin.domain import CancelOrder, FeedType
from henpin.settings import EMULATOR_REFRESH_TOKENS, EMULATOR_SELLER_IDS, Settings
from tests.support import E2E_TIME_SCALE, forget_flow_runs, order_json, reset_process_caches

REPO = Path(__file__).resolve().parent.parent
US, UK, DE, JP = "ATVPDKIKX0DER", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A1VC38T7YXB528"
ORDERS = {
    US: ("113-6100000-0000001", "USD", "25.00"),
    UK: ("202-6100000-0000002", "GBP", "20.00"),
    DE: ("302-6100000-0000003", "EUR", "22.00"),
    JP: ("503-6100000-0000004", "JPY", "3000"),
}
UNAUTHORIZED = "Access to requested resource is denied."


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def seed(url: str, *marketplace_ids: str) -> None:
    orders = [
        order_json(ORDERS[m][0], marketplace_id=m, currency=ORDERS[m][1], price=ORDERS[m][2])
        for m in marketplace_ids
    ]
    httpx.post(f"{url}/_emulator/orders", json=orders, timeout=10).raise_for_status()


def token(url: str, refresh_token: str) -> str:
    answer = httpx.post(
        f"{url}/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "henpin-demo-client",
            "client_secret": "henpin-demo-secret",
        },
        timeout=10,
    )
    answer.raise_for_status()
    access: str = answer.json()["access_token"]
    return access


def sp_api_calls(url: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = httpx.get(f"{url}/_emulator/calls", timeout=10).json()
    return calls


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE) as server:
        yield server


# --- settings -----------------------------------------------------------------------------------


def test_a_single_region_seller_keeps_the_unsuffixed_names() -> None:
    one = settings(
        LWA_APP_ID="app",
        LWA_CLIENT_SECRET="secret",
        SP_API_REFRESH_TOKEN="Atzr|one",
        seller_id="A1ONE",
        marketplaces=[UK, DE],
    )
    assert not one.demo_mode
    assert one.watched_regions == {"EU": [UK, DE]}
    login = one.region_login("EU")
    assert login is not None and (login.refresh_token, login.seller_id) == ("Atzr|one", "A1ONE")
    assert one.missing_credentials_message() is None
    assert one.lwa_credentials["refresh_token"] == "Atzr|one"


def test_with_several_regions_the_unsuffixed_token_is_never_used() -> None:
    several = settings(
        LWA_APP_ID="app",
        LWA_CLIENT_SECRET="secret",
        SP_API_REFRESH_TOKEN="Atzr|one",
        seller_id="A1ONE",
        SP_API_REFRESH_TOKEN_EU="Atzr|eu",
        seller_id_eu="A1EU",
        marketplaces=[US, UK, JP],
    )
    assert several.region_login("NA") is None and several.region_login("FE") is None
    eu = several.region_login("EU")
    assert eu is not None and (eu.refresh_token, eu.seller_id) == ("Atzr|eu", "A1EU")
    message = several.missing_credentials_message()
    assert message is not None
    assert "NA region, watched marketplaces US (ATVPDKIKX0DER)" in message
    assert "FE region, watched marketplaces JP (A1VC38T7YXB528)" in message
    assert "SP_API_REFRESH_TOKEN_FE" in message and "HENPIN_SELLER_ID_NA" in message
    assert "EU region" not in message
    assert "not used" in message


def test_a_region_needs_its_merchant_token_too() -> None:
    no_seller = settings(
        LWA_APP_ID="app", LWA_CLIENT_SECRET="secret", SP_API_REFRESH_TOKEN_NA="Atzr|na"
    )
    message = no_seller.missing_credentials_message()
    assert message is not None and "HENPIN_SELLER_ID_NA" in message


def test_demo_mode_has_a_distinct_login_per_region() -> None:
    demo = settings()
    assert demo.demo_mode and demo.missing_credentials_message() is None
    logins = {r: demo.region_login(r) for r in ("NA", "EU", "FE")}
    assert len({login.refresh_token for login in logins.values() if login}) == 3
    assert len({login.seller_id for login in logins.values() if login}) == 3


@pytest.mark.e2e
def test_henpin_up_stops_when_a_watched_region_has_no_login(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        HENPIN_HOME=str(tmp_path),
        LWA_APP_ID="amzn1.application-oa2-client.test",
        LWA_CLIENT_SECRET="secret",
        SP_API_REFRESH_TOKEN_NA="Atzr|na",
        HENPIN_SELLER_ID_NA="A1NA",
        SP_API_REFRESH_TOKEN_EU="Atzr|eu",
        HENPIN_SELLER_ID_EU="A1EU",
        HENPIN_MARKETPLACES=json.dumps([US, UK, JP]),
    )
    done = subprocess.run(
        [sys.executable, "-m", "henpin.cli", "up"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "FE region, watched marketplaces JP (A1VC38T7YXB528)" in done.stderr
    assert "SP_API_REFRESH_TOKEN_FE" in done.stderr and "HENPIN_SELLER_ID_FE" in done.stderr
    assert not (tmp_path / "status.json").exists()  # nothing was started


# --- the emulator's regions ---------------------------------------------------------------------


@pytest.mark.e2e
def test_a_token_used_in_another_region_is_refused_with_amazons_403(
    emulator: EmulatorServer,
) -> None:
    url = emulator.url
    seed(url, US, JP)
    na = token(url, EMULATOR_REFRESH_TOKENS["NA"])
    path = f"/orders/2026-01-01/orders/{ORDERS[JP][0]}"
    refused = httpx.get(f"{url}/fe{path}", headers={"x-amz-access-token": na}, timeout=10)
    assert refused.status_code == 403
    error = refused.json()["errors"][0]
    assert (error["code"], error["message"]) == ("Unauthorized", UNAUTHORIZED)
    # An order of another region's marketplace is not at this region's endpoint.
    assert httpx.get(f"{url}/na{path}", headers={"x-amz-access-token": na}).status_code == 404
    # Nor may a call name another region's marketplace (Amazon's answer, models issue #5126).
    search = httpx.get(
        f"{url}/na/orders/2026-01-01/orders",
        params={"marketplaceIds": JP, "createdAfter": "2020-01-01T00:00:00Z"},
        headers={"x-amz-access-token": na},
    )
    assert search.status_code == 403
    assert search.json()["errors"][0]["details"] == (
        "The marketplaces you provided are not valid for region."
    )
    wrong, not_here, cross = sp_api_calls(url)[-3:]
    assert (wrong["region"], wrong["tokenRegion"], wrong["status"]) == ("FE", "NA", 403)
    assert (not_here["region"], not_here["tokenRegion"], not_here["status"]) == ("NA", "NA", 404)
    assert (cross["region"], cross["status"]) == ("NA", 403)


@pytest.mark.e2e
def test_the_adapter_with_another_regions_login_is_refused_and_says_so(
    emulator: EmulatorServer,
) -> None:
    seed(emulator.url, JP)
    na_login = settings(emulator_url=emulator.url).region_login("NA")
    assert na_login is not None
    with AmazonAdapter(
        settings(emulator_url=emulator.url), credentials=na_login.library_credentials()
    ) as adapter:
        with pytest.raises(AmazonAuthError) as raised:
            adapter.get_order(ORDERS[JP][0], marketplace_id=JP)
        assert (raised.value.status, raised.value.code) == (403, "Unauthorized")
        assert adapter.region_auth == {"FE": "refused"}
    last = sp_api_calls(emulator.url)[-1]
    assert (last["operation"], last["region"], last["tokenRegion"]) == ("getOrder", "FE", "NA")


@pytest.mark.e2e
def test_legacy_unprefixed_paths_act_in_the_tokens_region(emulator: EmulatorServer) -> None:
    url = emulator.url
    seed(url, US, JP)
    path = "/orders/2026-01-01/orders"
    params = {"createdAfter": "2020-01-01T00:00:00Z"}
    legacy = token(url, "Atzr|henpin-demo-refresh-token")
    everything = httpx.get(f"{url}{path}", params=params, headers={"x-amz-access-token": legacy})
    assert {o["orderId"] for o in everything.json()["orders"]} == {
        ORDERS[US][0],
        ORDERS[JP][0],
    }
    fe = token(url, EMULATOR_REFRESH_TOKENS["FE"])
    own = httpx.get(f"{url}{path}", params=params, headers={"x-amz-access-token": fe})
    assert [o["orderId"] for o in own.json()["orders"]] == [ORDERS[JP][0]]
    # The legacy token belongs to no region: a regional base URL refuses it.
    at_na = httpx.get(f"{url}/na{path}", params=params, headers={"x-amz-access-token": legacy})
    assert at_na.status_code == 403
    calls = sp_api_calls(url)[-3:]
    assert [(c["region"], c["tokenRegion"]) for c in calls] == [
        (None, None),
        (None, "FE"),
        ("NA", None),
    ]


@pytest.mark.e2e
def test_a_feed_with_another_regions_merchant_token_is_rejected(
    emulator: EmulatorServer,
) -> None:
    url = emulator.url
    seed(url, US)
    order_id = ORDERS[US][0]
    cancel = CancelOrder(order_id=order_id, order_item_ids=[f"{order_id[-7:]}01"])
    wrong = order_acknowledgement_feed(EMULATOR_SELLER_IDS["EU"], [(1, cancel)])
    with AmazonAdapter(settings(emulator_url=url)) as adapter:
        feed_id = adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, US, wrong)
        httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        status = adapter.get_feed(feed_id, marketplace_id=US)
        assert status.processing_status is FeedProcessingStatus.FATAL
        assert status.result_feed_document_id is not None
        report = adapter.get_feed_report(status.result_feed_document_id, marketplace_id=US)
    assert "<ResultMessageCode>5005</ResultMessageCode>" in report
    assert "not valid for your credentials" in report
    order = httpx.get(f"{url}/_emulator/orders/{order_id}").json()
    assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"  # nothing applied
    # The same cancellation with the NA merchant token goes through.
    right = order_acknowledgement_feed(EMULATOR_SELLER_IDS["NA"], [(1, cancel)])
    with AmazonAdapter(settings(emulator_url=url)) as adapter:
        feed_id = adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, US, right)
        httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        assert adapter.get_feed(feed_id, marketplace_id=US).processing_status.value == "DONE"
    order = httpx.get(f"{url}/_emulator/orders/{order_id}").json()
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"


# --- ingestion across regions -------------------------------------------------------------------


def ingest_env(monkeypatch: pytest.MonkeyPatch, home: Path, url: str) -> None:
    monkeypatch.setenv("HENPIN_HOME", str(home))
    monkeypatch.setenv("HENPIN_EMULATOR_URL", url)
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    monkeypatch.delenv("HENPIN_MARKETPLACES", raising=False)
    forget_flow_runs()
    reset_process_caches()


def run_ingest() -> set[str]:
    """One ingestion pass; the order ids with an open case afterwards."""
    from flows.cancel_request import cancel_request
    from flows.ingest import ingest
    from henpin.app.cases import list_cases
    from henpin.context import store_url
    from henpin.store.db import migrate

    migrate(store_url())
    cancel_request.to_deployment(name="henpin").apply()
    ingest()
    return {c.order_id for c in list_cases(store_url())}


def henpin_status(home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HENPIN_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "henpin.cli", "status", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    status: dict[str, Any] = json.loads(done.stdout)
    return status


@pytest.mark.e2e
def test_three_regions_are_ingested_each_with_its_own_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, prefect_server: Any
) -> None:
    ingest_env(monkeypatch, tmp_path, emulator.url)
    seed(emulator.url, US, UK, DE, JP)
    assert run_ingest() == {ORDERS[m][0] for m in (US, UK, DE, JP)}
    calls = [c for c in sp_api_calls(emulator.url) if c["operation"] == "searchOrders"]
    assert {c["region"] for c in calls} == {"NA", "EU", "FE"}
    every = sp_api_calls(emulator.url)
    assert every and all(c["region"] == c["tokenRegion"] for c in every)
    assert all(c["status"] < 400 for c in every)
    regions = henpin_status(tmp_path)["regions"]
    assert regions == {
        "NA": {"marketplaces": [US], "auth": "ok"},
        "EU": {"marketplaces": [UK, DE], "auth": "ok"},
        "FE": {"marketplaces": [JP], "auth": "ok"},
    }
    reset_process_caches()


@pytest.mark.e2e
def test_a_refused_region_is_shown_refused_while_the_others_are_ingested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: Any
) -> None:
    # The seller's FE authorization was revoked: Amazon no longer accepts the FE refresh token.
    revoked = Credentials(
        region_refresh_tokens={**EMULATOR_REFRESH_TOKENS, "FE": "Atzr|a-newer-fe-token"}
    )
    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE, credentials=revoked) as emulator:
        ingest_env(monkeypatch, tmp_path, emulator.url)
        assert henpin_status(tmp_path)["regions"]["FE"]["auth"] == "unchecked"
        seed(emulator.url, US, UK, JP)
        assert run_ingest() == {ORDERS[US][0], ORDERS[UK][0]}
        regions = henpin_status(tmp_path)["regions"]
        assert (regions["NA"]["auth"], regions["EU"]["auth"]) == ("ok", "ok")
        assert regions["FE"]["auth"] == "refused" and "invalid_grant" in regions["FE"]["detail"]
        assert regions["FE"]["marketplaces"] == [JP]
    # The FE checkpoint did not move: once the login works, the JP order is found.
    with EmulatorServer(port=0, time_scale=E2E_TIME_SCALE, credentials=Credentials()) as fixed:
        seed(fixed.url, JP)
        ingest_env(monkeypatch, tmp_path, fixed.url)
        assert ORDERS[JP][0] in run_ingest()
        assert henpin_status(tmp_path)["regions"]["FE"]["auth"] == "ok"
    reset_process_caches()


@pytest.mark.e2e
def test_a_feed_document_of_another_region_is_not_found(emulator: EmulatorServer) -> None:
    url = emulator.url
    seed(url, US)
    order_id = ORDERS[US][0]
    cancel = CancelOrder(order_id=order_id, order_item_ids=[f"{order_id[-7:]}01"])
    feed = order_acknowledgement_feed(EMULATOR_SELLER_IDS["NA"], [(1, cancel)])
    with AmazonAdapter(settings(emulator_url=url)) as adapter:
        feed_id = adapter.submit_feed(FeedType.ORDER_ACKNOWLEDGEMENT, US, feed)
        httpx.post(f"{url}/_emulator/clock/advance", json={"seconds": 120}).raise_for_status()
        document_id = adapter.get_feed(feed_id, marketplace_id=US).result_feed_document_id
    path = f"/feeds/2021-06-30/documents/{document_id}"
    at_fe = httpx.get(
        f"{url}/fe{path}", headers={"x-amz-access-token": token(url, EMULATOR_REFRESH_TOKENS["FE"])}
    )
    assert at_fe.status_code == 404
    assert at_fe.json()["errors"][0]["code"] == "NotFound"
    at_na = httpx.get(
        f"{url}/na{path}", headers={"x-amz-access-token": token(url, EMULATOR_REFRESH_TOKENS["NA"])}
    )
    assert at_na.status_code == 200 and at_na.json()["feedDocumentId"] == document_id


@pytest.mark.e2e
def test_status_json_says_what_is_wrong_with_the_marketplaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # README: `regions` is {"error": ...} when HENPIN_MARKETPLACES names an unknown id.
    monkeypatch.setenv("HENPIN_MARKETPLACES", '["ATVPDKIKX0DER","NOT-A-MARKETPLACE"]')
    regions = henpin_status(tmp_path)["regions"]
    assert list(regions) == ["error"] and "NOT-A-MARKETPLACE" in regions["error"]
