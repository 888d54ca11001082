"""Prefect's logging in Henpin's processes: a waiting case is not an error.

Runs a real Prefect logging set-up in a child process with the environment `henpin up` gives its
processes (`prefect_env`), and reads what its console handler printed. No server is started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from henpin.stack import prefect_env
from henpin.supervisor.parts import CSRF_PROTECTION

pytestmark = pytest.mark.e2e  # starts a Python subprocess (no server)

SCRIPT = """
import logging
from prefect.logging.configuration import setup_logging
setup_logging()  # what every Prefect process does, from PREFECT_LOGGING_SETTINGS_PATH
run = {"flow_run_name": "cancel-request 113-9000003-0000003", "flow_run_id": "1"}
log = logging.LoggerAdapter(logging.getLogger("prefect.flow_runs"), extra=run)
log.error("Finished in state Suspended(type=PAUSED)")
log.error("Finished in state Failed('Flow run encountered an exception.')")
"""


def test_a_suspended_case_flow_is_logged_at_info_and_a_failed_one_stays_an_error(
    tmp_path: Path,
) -> None:
    env = {**os.environ, **prefect_env(tmp_path, None), "PREFECT_LOGGING_TO_API_ENABLED": "false"}
    printed = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert printed.returncode == 0, printed.stderr
    lines = [line for line in printed.stderr.splitlines() if "Finished in state" in line]
    assert len(lines) == 2, printed.stderr
    suspended, failed = lines
    assert "| INFO    |" in suspended and "Suspended(type=PAUSED)" in suspended
    assert "| ERROR   |" in failed and "Failed(" in failed


def test_the_prefect_environment_is_made_without_importing_prefect(tmp_path: Path) -> None:
    """`henpin decide` and the other commands set Prefect's environment (API URL, logging) before
    Prefect is imported: Prefect reads its settings once, at import."""
    script = (
        "import sys; from pathlib import Path; from henpin.stack import prefect_env; "
        f"prefect_env(Path({str(tmp_path)!r}), None); print('prefect' in sys.modules)"
    )
    printed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert printed.stdout.strip() == "False", printed.stderr


def test_the_thread_timeout_warning_is_left_out_and_nothing_else() -> None:
    """The resident executor runs tasks in threads: Prefect's warning at every task run that a
    timeout cannot interrupt a blocking call there is dropped; other warnings stay."""
    import logging

    from henpin.logs import ThreadTimeoutIsKnown

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("prefect.task_runs", logging.WARNING, "", 0, msg, (60.0,), None)

    keep = ThreadTimeoutIsKnown()
    assert not keep.filter(
        record(
            "Timeout of %s seconds configured for this task, but the task is running in a "
            "worker thread. Timeouts in worker threads cannot interrupt blocking operations"
        )
    )
    assert keep.filter(record("Task run exceeded its timeout of %s seconds"))


def test_a_plain_http_prefect_api_gets_a_one_certificate_ca_file(tmp_path: Path) -> None:
    plain = prefect_env(tmp_path / "a", "http://127.0.0.1:4200/api")
    tls = prefect_env(tmp_path / "b", "https://prefect.example.com/api")

    ca = Path(plain["PREFECT_API_SSL_CERT_FILE"]).read_text()
    assert ca.count("BEGIN CERTIFICATE") == 1
    assert "PREFECT_API_SSL_CERT_FILE" not in tls  # TLS in use: Prefect's own CAs


def test_clients_ask_no_csrf_token_of_a_server_henpin_starts_without_csrf_protection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CSRF_PROTECTION:
        monkeypatch.delenv(name, raising=False)
    assert prefect_env(tmp_path, None)["PREFECT_CLIENT_CSRF_SUPPORT_ENABLED"] == "false"

    # The owner turned the server's protection on: the clients fetch their tokens as Prefect's do.
    monkeypatch.setenv("PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED", "true")
    assert "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED" not in prefect_env(tmp_path, None)
    monkeypatch.delenv("PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED")
    monkeypatch.setenv("PREFECT_SERVER_CSRF_PROTECTION_ENABLED", "1")
    assert "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED" not in prefect_env(tmp_path, None)


def test_a_prefect_server_started_as_henpin_starts_it_refuses_csrf_tokens(
    prefect_server: object,
) -> None:
    """What the clients' setting above rests on: Prefect's server, left at its defaults as
    `henpin up` leaves it, has no CSRF protection, so a client's token request only learns that
    (prefect/client/base.py `_add_csrf_headers` then stops asking)."""
    import httpx

    api = prefect_server.api  # type: ignore[attr-defined]
    answer = httpx.get(f"{api}/csrf-token", params={"client": "henpin-test"}, timeout=30)
    assert answer.status_code == 422
    assert "CSRF protection is disabled" in answer.text
