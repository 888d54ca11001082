"""Secrets never leak: a whole case runs with recognisable fake secrets, then every log, every
table of the case store and of Prefect's database, and every result file is searched for them.

Logging is at DEBUG (python-amazon-sp-api logs request headers there, httpx logs every URL at
INFO), on a path that uploads a feed at its presigned URL and sends an e-mail with an SMTP
login; what is searched includes this process's log records and the Prefect server's output.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    E2E_TIME_SCALE,
    drive_case_runs,
    forget_flow_runs,
    order_json,
    reset_process_caches,
)

pytestmark = [pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent
SECRET = "SEKRET-lwa-9f8e7d6c5b4a"
REFRESH = "Atzr|SEKRET-refresh-1a2b3c4d5e"
# One authorization per region, as Amazon issues them (the watched US, UK, DE, JP span three).
REFRESH_BY_REGION = {r: f"{REFRESH}-{r.lower()}" for r in ("NA", "EU", "FE")}
SMTP_PASSWORD = "SEKRET-smtp-0011223344"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from emulator.auth import Credentials
    from emulator.server import EmulatorServer

    credentials = Credentials(
        client_id="amzn1.application-oa2-client.test",
        client_secret=SECRET,
        refresh_token=REFRESH,
        region_refresh_tokens=REFRESH_BY_REGION,
    )
    with EmulatorServer(port=0, credentials=credentials, time_scale=E2E_TIME_SCALE) as server:
        yield server


@pytest.fixture
def mailbox() -> Iterator[Any]:
    from henpin.mailcatcher import MailCatcher

    with MailCatcher(host="127.0.0.1", port=0, login=("henpin", SMTP_PASSWORD)) as catcher:
        yield catcher


@pytest.fixture
def debug_records() -> Iterator[list[logging.LogRecord]]:
    """Every log record made in this process, at DEBUG, whichever handlers Prefect's logging
    set-up leaves in place: collected where records are made. Levels and the record factory
    are put back afterwards (setLevel clears the loggers' cached levels)."""
    names = ("", "httpx", "httpcore", "sp_api", "henpin", "tasks", "flows", "prefect")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    records: list[logging.LogRecord] = []
    make = logging.getLogRecordFactory()

    def collect(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        records.append(record)
        return record

    logging.setLogRecordFactory(collect)
    try:
        yield records
    finally:
        logging.setLogRecordFactory(make)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_a_whole_case_with_fake_secrets_leaves_no_trace(
    debug_records: list[logging.LogRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Any,
    mailbox: Any,
    prefect_server: Any,
) -> None:
    from flows.cancel_by_message import cancel_by_message
    from flows.cancel_request import cancel_request
    from flows.housekeeping import housekeeping
    from flows.ingest import ingest
    from henpin.app.cases import list_cases
    from henpin.app.decide import decide
    from henpin.app.messages import open_cancel_by_message
    from henpin.store.db import migrate

    records = debug_records

    monkeypatch.setenv("HENPIN_HOME", str(tmp_path))
    monkeypatch.setenv("HENPIN_EMULATOR_URL", emulator.url)
    monkeypatch.setenv("HENPIN_EMULATOR_TIME_SCALE", str(E2E_TIME_SCALE))
    monkeypatch.setenv("HENPIN_POLICIES", str(REPO / "policies.yaml"))
    monkeypatch.setenv("LWA_APP_ID", "amzn1.application-oa2-client.test")
    monkeypatch.setenv("LWA_CLIENT_SECRET", SECRET)
    for region, token in REFRESH_BY_REGION.items():
        monkeypatch.setenv(f"SP_API_REFRESH_TOKEN_{region}", token)
        monkeypatch.setenv(f"HENPIN_SELLER_ID_{region}", f"A1HENPINDEMO{region}")
    monkeypatch.setenv("HENPIN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("HENPIN_SMTP_PORT", str(mailbox.port))
    monkeypatch.setenv("HENPIN_SMTP_USER", "henpin")
    monkeypatch.setenv("HENPIN_SMTP_PASSWORD", SMTP_PASSWORD)
    forget_flow_runs()
    reset_process_caches()
    from henpin.context import settings, store_url

    assert not settings().demo_mode  # real credentials, pointed at the emulator
    migrate(store_url())
    cancel_request.to_deployment(name="henpin").apply()
    cancel_by_message.to_deployment(name="henpin").apply()
    written = order_json("111-0000032-0000032", cancel_reason=None)
    written["buyer"] = {"buyerName": "Test Buyer", "buyerEmail": "buyer@marketplace.amazon.com"}
    httpx.post(
        f"{emulator.url}/_emulator/orders",
        json=[order_json("111-0000031-0000031", price="999.00"), written],
        timeout=10,
    ).raise_for_status()
    httpx.put(
        f"{emulator.url}/_emulator/application/roles",
        json={"roles": ["DIRECT_TO_CONSUMER_DELIVERY"]},
        timeout=10,
    ).raise_for_status()
    open_cancel_by_message(store_url(), "111-0000032-0000032", buyer_message="x", operator="a")
    ingest()
    drive_case_runs()
    case = next(c for c in list_cases(store_url()) if c.order_id == "111-0000031-0000031")
    assert case.state == "waiting"
    decide(store_url(), case.id, choice="cancel", operator="alice")
    drive_case_runs()
    for _ in range(4):
        housekeeping()
        httpx.post(f"{emulator.url}/_emulator/clock/advance", json={"seconds": 120}, timeout=10)
        drive_case_runs()
    assert (
        next(c for c in list_cases(store_url()) if c.id == case.id).outcome
        == "cancelled-buyer-canceled"
    )
    assert len(mailbox.messages) == 1  # the reply went out, after an SMTP login
    reset_process_caches()

    # This process's log records, at DEBUG: no secret, no token, no presigned URL's signature.
    logged = "\n".join(r.getMessage() for r in records)
    assert "HTTP Request" in logged and "_uploads/" in logged  # the upload was logged ...
    for leak in (SECRET, REFRESH, SMTP_PASSWORD, "X-Amz-Signature", "X-Amz-Credential", "Atza|"):
        assert leak not in logged, leak  # ... without what opens it

    secrets = [SECRET.encode(), REFRESH.encode(), SMTP_PASSWORD.encode()]  # REFRESH: a prefix
    secrets += [b"X-Amz-Signature", b"Atza|"]  # presigned URLs and access tokens
    places = [p for p in tmp_path.rglob("*") if p.is_file()]
    prefect_home = Path(os.environ["PREFECT_HOME"])
    places += [p for p in prefect_home.rglob("*") if p.is_file()]
    assert places
    for path in places:
        data = path.read_bytes()
        assert not any(s in data for s in secrets), f"a secret was written to {path}"
    # Tables, read as text (SQLite stores JSON as text; this catches any column).
    for db in [tmp_path / "henpin.db", prefect_home / "prefect.db"]:
        with sqlite3.connect(db) as conn:
            for (table,) in conn.execute("select name from sqlite_master where type='table'"):
                for row in conn.execute(f'select * from "{table}"'):
                    text = repr(row)
                    assert not any(s.decode() in text for s in secrets), (
                        f"secret in {db.name}.{table}"
                    )
