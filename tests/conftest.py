"""Test set-up shared by every test file.

Prefect is pointed, before it is imported anywhere, at a real Prefect server this session
starts on 127.0.0.1 (SQLite in a temp folder) when a test asks for the `prefect_server` fixture.

Nothing outlives the session: it becomes the subreaper of what its tests start, and fails if a
process it started is still running at the end (tests/processes.py).

Unit tests need no server: a test that listens on a socket (a Prefect server, the emulator, a
mail catcher, Streamlit...) or starts a subprocess must be marked `e2e`; an unmarked one fails
(`_servers_refused` below), so `pytest -m "not e2e"` (`make unit`) starts none.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing
from tests.processes import (
    ServerInUnitTest,
    become_subreaper,
    collect_zombies,
    command_line,
    descendants,
    kill_all,
    wait_gone,
)

REPO = Path(__file__).resolve().parent.parent
_TMP = Path(tempfile.mkdtemp(prefix="henpin-tests-"))


# The session's Prefect server serves on this socket, bound here once (any free port) and handed
# over when a test first asks for `prefect_server`: PREFECT_API_URL must name the port before
# Prefect is imported, and a port picked, released and bound later by the server could be taken
# in between on a loaded machine. It listens only from the server's start (tests/support.py):
# until then a connection is refused at once, as with no server, while the bound port is never
# handed out to another port-0 bind. SO_REUSEADDR as on every server socket: the connections the
# server closes inherit it in TIME_WAIT, and without it a restart could not bind the port again
# for a minute.
_PREFECT_SOCKET = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
_PREFECT_SOCKET.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
_PREFECT_SOCKET.bind(("127.0.0.1", 0))
PREFECT_PORT = int(_PREFECT_SOCKET.getsockname()[1])


def _one_ca_bundle(folder: Path) -> Path:
    """A CA file of one certificate (certifi's first), for the tests' TLS contexts.

    Every Prefect client (`get_client()`, thousands in a run) and every httpx transport builds an
    SSL context from certifi's bundle of ~150 certificates: 30-70 ms of CPU each, about a fifth
    of an end-to-end test's time, for contexts that are never used: the tests talk plain HTTP
    to 127.0.0.1 only. With `SSL_CERT_FILE` (read by httpx, by Prefect's
    PREFECT_API_SSL_CERT_FILE and by OpenSSL's default paths) naming a file of one certificate, a
    context costs under a millisecond. Child processes (henpin up, runners, CLI) inherit it."""
    import certifi

    bundle = Path(certifi.where()).read_text()
    end = "-----END CERTIFICATE-----"
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "one-ca.pem"
    path.write_text(first + "\n")
    return path


_CA_FILE = _one_ca_bundle(_TMP / "tls")
os.environ.update(
    {
        "PREFECT_HOME": str(_TMP / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
        "PREFECT_LOCAL_STORAGE_PATH": str(_TMP / "prefect" / "storage"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{_TMP / 'prefect' / 'prefect.db'}",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "SSL_CERT_FILE": str(_CA_FILE),
        "PREFECT_API_SSL_CERT_FILE": str(_CA_FILE),
    }
)
os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
for var in ("LWA_APP_ID", "LWA_CLIENT_SECRET", "SP_API_REFRESH_TOKEN", "HENPIN_DATABASE_URL"):
    os.environ.pop(var, None)
for region in ("", "_NA", "_EU", "_FE"):  # per-region Amazon logins (henpin/settings.py)
    os.environ.pop(f"SP_API_REFRESH_TOKEN{region}", None)
    os.environ.pop(f"HENPIN_SELLER_ID{region}", None)


become_subreaper()
LEFTOVER_GRACE_S = 5.0


#: Under pytest-xdist (`-n N`): what each worker found left running, reported by the controller.
_WORKERS_LEFTOVERS: list[str] = []


def _xdist_controller(config: pytest.Config) -> bool:
    """This process hands tests to pytest-xdist workers and runs none itself."""
    return config.pluginmanager.has_plugin("dsession")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the Prefect server's socket if no test started the server (a unit run): left to the
    garbage collector it is a ResourceWarning, an error under `filterwarnings = ["error"]`."""
    _PREFECT_SOCKET.close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process a test started is still running (after a short grace), and
    end it: a test that failed or timed out must not leave a stack on the default ports.

    Under pytest-xdist each worker checks what its tests started and hands its findings to the
    controller (`workeroutput`), which fails the run; the controller's own children are the
    workers, still running at this point, so it checks only below them."""
    mine = descendants(os.getpid())
    if _xdist_controller(session.config):
        workers = {pid for pid in mine if _parent(pid) == os.getpid()}
        mine = [pid for pid in mine if pid not in workers]
    left = wait_gone(mine, LEFTOVER_GRACE_S)
    lines = [f"  pid {pid}: {command_line(pid)}" for pid in left]
    kill_all(left)
    lines += _WORKERS_LEFTOVERS
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller reports and fails the run
        workeroutput["henpin_leftovers"] = lines
    elif lines:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        title = "processes started by the tests were still running at the end (killed now)"
        if reporter is not None:
            reporter.write_sep("=", title, red=True, bold=True)
            for line in lines:
                reporter.write_line(line, red=True)
        else:
            print(title, *lines, sep="\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    collect_zombies()
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without it
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist (controller): a worker finished; keep what it found left running."""
    leftovers = (getattr(node, "workeroutput", None) or {}).get("henpin_leftovers") or []
    worker = getattr(node, "gateway", None)
    _WORKERS_LEFTOVERS.extend(f"{line} (worker {getattr(worker, 'id', '?')})" for line in leftovers)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


#: Fixtures of this file that start a server: requesting one from an unmarked test is an error
#: found at collection, before anything starts (the run-time guard below catches the rest).
SERVER_FIXTURES = frozenset({"prefect_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("e2e") is None
        and SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use a server fixture must be marked e2e: " + ", ".join(unmarked)
        )


@contextlib.contextmanager
def _servers_refused(item: pytest.Item) -> Iterator[None]:
    """While an unmarked test sets up and runs, listening on a socket or starting a subprocess
    raises `ServerInUnitTest` (threads included: the class methods are replaced)."""
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    listen, execute = socket.socket.listen, subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise ServerInUnitTest(
                f"{item.nodeid} {what} but is not marked e2e: mark it "
                "(pytestmark = [pytest.mark.e2e]) so `pytest -m 'not e2e'` starts no server"
            )

        return refused

    socket.socket.listen = refuse("listens on a socket (starts a server)")  # type: ignore[method-assign]
    subprocess.Popen._execute_child = refuse("starts a subprocess")  # type: ignore[attr-defined]
    try:
        yield
    finally:
        socket.socket.listen = listen  # type: ignore[method-assign]
        subprocess.Popen._execute_child = execute  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _servers_refused(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _servers_refused(item):
        return (yield)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[object]:
    """A real Prefect server (subprocess) for the whole session."""
    from tests.support import PrefectServer

    server = PrefectServer(PREFECT_PORT, _TMP / "prefect", sock=_PREFECT_SOCKET)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("HENPIN_TEST_DATABASE_URL")
    if not url:
        missing("HENPIN_TEST_DATABASE_URL is not set: PostgreSQL tests skipped (README, Tests)")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def case_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated case store: SQLite in tmp_path, or a fresh schema in the test PostgreSQL
    (HENPIN_TEST_DATABASE_URL; skipped with a visible reason when it is not set)."""
    from sqlalchemy import create_engine, text

    from henpin.store.db import engine_for, migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'henpin.db'}"
        migrate(url)
        yield url
        engine_for(url).dispose()
        return
    base = os.environ.get("HENPIN_TEST_DATABASE_URL")
    if not base:
        missing("HENPIN_TEST_DATABASE_URL is not set: PostgreSQL tests skipped (README, Tests)")
    schema = f"henpin_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _no_flow_run_heartbeats() -> Iterator[None]:
    """Flow runs executed in this process skip Prefect's heartbeat thread: a sync run waits up
    to a second for it to stop (prefect 3.9.1), and nothing here reads heartbeats. The
    environment variable cannot say "none", so the setting is changed in-process."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session", autouse=True)
def _flows_run_as_the_resident_executor_runs_them() -> None:
    """Flow runs executed in this process (tests/support.py `drive_case_runs`) run on Prefect's
    engine as the resident executor fits it (henpin/resident.py `engine_per_run`): without the
    per-run thread and websocket that wait for a suspension asked from the UI (0.1-0.3 s a
    run), with a cancellation's intent read per run's thread, and with the Prefect client's first
    retries after a 503 sooner (the test server's SQLite answers "database is locked" a few times
    per end-to-end test on a loaded machine, each costing 2 s or more of idle wall time before)."""
    from henpin.resident import engine_per_run

    engine_per_run()


@pytest.fixture(autouse=True)
def _fresh_library_tokens() -> None:
    """python-amazon-sp-api keeps access tokens in a module-level cache keyed by refresh token.
    Tests that use the library's clients directly start an emulator of their own, which does not
    know another emulator's tokens: each test starts with the cache empty. (Henpin's adapter
    keeps its own cache, keyed by token URL and credentials.)"""
    from sp_api.auth import access_token_client

    access_token_client.cache.clear()


@pytest.fixture(autouse=True)
def _fresh_context() -> Iterator[None]:
    """Each test starts with a fresh process context (henpin/context.py: settings, case store,
    policy, adapter, clock), built from its own environment on first use, and leaves none
    behind: nothing a test built is seen by the next."""
    from henpin.context import Context, current, install

    install(Context())
    yield
    current().close()  # the adapter it built, if any (else a ResourceWarning)
    install(Context())
