"""`henpin up --scale`: Henpin's production layout, started on one machine.

The parts, and what each needs from the others:

- **Prefect server** on PostgreSQL (its own database, `henpin_prefect` by default), with Redis as
  its message broker, cache, causal-ordering and lease store (prefect-redis) when a Redis URL is
  given. Without Redis the server keeps those in memory: fine for one server process, required
  once there are several (Prefect's self-hosting guide).
- **Work pool `henpin`** (type `henpin-resident`, Henpin's resident executor) holding Henpin's
  deployments (the case types', `ingest/henpin` with its schedule, `housekeeping/henpin`),
  registered once by `python -m henpin.scale deploy` (`henpin.runner.deploy_to_work_pool`; a
  pool of another type, the former `process` pool, is created again).
- **Workers**: `henpin runner --name henpin-worker-N --limit L --no-housekeeping --no-deploy`,
  two or more. Each is one long-lived process that claims runs of the pool through the Prefect
  API (the server lets exactly one claim win) and runs each in a thread of its own, with its own
  event loop (henpin/resident.py). A waiting case is a suspended run: no worker holds anything
  for it. A worker exits with 75 after a hung run or too much memory; the supervisor (or
  systemd) starts it again under the same name, and it marks the runs it left running Crashed,
  for the housekeeper to start them again.
- **Shared result storage**: every worker uses the same `PREFECT_LOCAL_STORAGE_PATH`, so a
  resumed run finds the task results of its first run whichever worker ran it. On several
  machines that folder must be shared (NFS) or replaced by a bucket (docs/scaling.md).
- **Housekeeper**: one process (`python -m henpin.scale housekeeper`) that sends outbox feeds,
  records Amazon's results, applies deadlines and resumes runs; the same round the runner's
  thread runs in `henpin up`.
- **Case store** on PostgreSQL (`HENPIN_DATABASE_URL`), the **inbox** (Streamlit) and, in demo
  mode, the **SP-API emulator**.
- **A lock on Prefect**: the server asks for Basic authentication (Prefect's
  `PREFECT_SERVER_API_AUTH_STRING`), and every part above sends it (`PREFECT_API_AUTH_STRING`),
  so nobody without it reads runs or resumes one with an answer (henpin/prefect_auth.py).

`ScaledStack` has the same surface as `henpin.stack.Stack` (`plan`, `start`, `supervise`,
`stop`, `dead_child`, `urls`, `procs`), the same supervisor and the same part recipes
(henpin/supervisor/: children die with it, restarts with backoff, bounded stops, rotated logs,
ports bound once), so `henpin up --scale` can use either. In production the parts run under
systemd instead (deploy/systemd/, docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from henpin.logs import prefect_logging_settings
from henpin.prefect_auth import CLIENT_SETTING, SERVER_SETTING, auth_string_for
from henpin.settings import Settings
from henpin.stack import DEFAULT_PORTS, StackLock, supervisor_for
from henpin.supervisor import (
    ROOT,
    Supervisor,
    emulator_part,
    housekeeper_part,
    inbox_part,
    port_of,
    prefect_server_part,
    preferred_socket,
    wait_until_up,
    with_lifeline,
    worker_part,
)
from henpin.supervisor.parts import csrf_env, one_certificate_file

POOL = "henpin"  # henpin.resident.POOL (not imported: Prefect must not be imported yet here)
DEFAULT_PREFECT_DATABASE = "henpin_prefect"
# Flow runs at once per worker: threads of its one process, which mostly wait on Amazon and the
# case store (Settings.runner_limit's default, HENPIN_RUNNER_LIMIT).
DEFAULT_WORKER_LIMIT = 16
# How often a worker asks for due runs when no Prefect event woke it sooner
# (HENPIN_RUNNER_QUERY_S; its default is 5 s).
DEFAULT_POLL_S = 2.0


# --- URLs --------------------------------------------------------------------------------------


def _with_database(url: str, database: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(
        (scheme or parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment)
    )


def prefect_database_url_for(case_store_url: str, database: str = DEFAULT_PREFECT_DATABASE) -> str:
    """Prefect's own database on the case store's PostgreSQL server, with Prefect's driver."""
    return _with_database(case_store_url, database, scheme="postgresql+asyncpg")


def ensure_postgres_database(url: str) -> None:
    """Create the database `url` names if it does not exist yet (needs CREATEDB)."""
    from sqlalchemy import create_engine, text

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = _with_database(url, "postgres", scheme="postgresql+psycopg")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def drop_postgres_database(url: str) -> None:
    """Drop the database `url` names (tests and benchmarks clean up after themselves)."""
    from sqlalchemy import create_engine, text

    name = urlsplit(url).path.lstrip("/")
    engine = create_engine(
        _with_database(url, "postgres", scheme="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def redis_env(redis_url: str | None) -> dict[str, str]:
    """Prefect server settings that put its messaging, cache and leases in Redis (prefect-redis).

    The same Redis database must not be shared by two unrelated Prefect servers: they would read
    each other's events.
    """
    if not redis_url:
        return {}
    import importlib.util

    if importlib.util.find_spec("prefect_redis") is None:
        raise RuntimeError(
            "a Redis URL was given but prefect-redis is not installed: "
            "pip install prefect-redis==0.3.0 (or give no Redis URL)"
        )
    return {
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_URL": redis_url,
        "PREFECT_SERVER_DOCKET_URL": redis_url,
    }


# --- the stack ---------------------------------------------------------------------------------


@dataclass
class ScaledStack:
    """The production layout's processes on one machine, and their addresses."""

    home: Path
    settings: Settings
    database_url: str  # the case store (PostgreSQL), as HENPIN_DATABASE_URL
    redis_url: str | None = None
    workers: int = 2
    worker_limit: int = DEFAULT_WORKER_LIMIT
    poll_s: float = DEFAULT_POLL_S
    prefect_database_url: str | None = None  # default: henpin_prefect on the same server
    inbox: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    # The demo emulator's usage plans: "amazon", or "lifted" (benchmarks only: engine capacity).
    emulator_usage_plans: str = "amazon"
    auth_string: str = field(default="", repr=False)  # Prefect's Basic auth "user:password"
    lock: StackLock | None = None  # held by `henpin up --scale`
    urls: dict[str, str | None] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    # Listening sockets bound by `plan` (prefect, emulator; inbox only held until Streamlit
    # starts), handed to their parts as in `henpin up`: no port is picked and released.
    sockets: dict[str, socket.socket] = field(default_factory=dict)
    supervisor: Supervisor = field(init=False)

    def __post_init__(self) -> None:
        self.supervisor = supervisor_for(
            self.home, self.settings, self.lock, lambda: self.write_status(ready=True)
        )
        if not self.database_url.startswith("postgresql"):
            raise ValueError(
                "the scaled layout keeps cases in PostgreSQL: set HENPIN_DATABASE_URL to a "
                "postgresql+psycopg://... URL (SQLite cannot be shared by several workers)"
            )
        if self.workers < 1:
            raise ValueError("at least one worker is needed")
        self.prefect_database_url = self.prefect_database_url or prefect_database_url_for(
            self.database_url
        )

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return self.supervisor.procs

    @property
    def status_file(self) -> Path:
        return self.home / "status.json"

    @property
    def storage(self) -> Path:
        """Result storage every worker shares (a resumed run reuses finished tasks from here,
        whichever worker ran them)."""
        return (self.home / "prefect" / "storage").resolve()

    @property
    def worker_names(self) -> list[str]:
        return [f"henpin-worker-{i}" for i in range(1, self.workers + 1)]

    def client_env(self) -> dict[str, str]:
        """Prefect settings of every process that talks to this stack's Prefect API."""
        prefect_home = (self.home / "prefect").resolve()
        prefect_home.mkdir(parents=True, exist_ok=True)
        env = {
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_LOGGING_SETTINGS_PATH": str(prefect_logging_settings(prefect_home)),
            "PREFECT_LOCAL_STORAGE_PATH": str(self.storage),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            **csrf_env(os.environ),
        }
        if self.urls.get("prefect_api"):
            env["PREFECT_API_URL"] = str(self.urls["prefect_api"])
            # Plain HTTP on 127.0.0.1: the resident workers' many Prefect clients each build an
            # SSL context they never use; from one certificate, not certifi's ~150.
            env["PREFECT_API_SSL_CERT_FILE"] = str(one_certificate_file(prefect_home))
        if self.auth_string:
            env[CLIENT_SETTING] = self.auth_string
        return env

    def plan(self) -> dict[str, str]:
        """Pick ports; returns the Prefect settings for this process (call before importing
        Prefect: it reads its settings once, at import)."""
        (self.home / "prefect").mkdir(parents=True, exist_ok=True)  # PREFECT_HOME must exist
        self.auth_string = auth_string_for(self.home)
        self.sockets = {
            name: preferred_socket(port)
            for name, port in DEFAULT_PORTS.items()
            if name in ("prefect", "emulator", "inbox")
        }
        self.ports = {name: port_of(sock) for name, sock in self.sockets.items()}
        self.urls["prefect_ui"] = f"http://127.0.0.1:{self.ports['prefect']}"
        self.urls["prefect_api"] = f"http://127.0.0.1:{self.ports['prefect']}/api"
        return self.client_env()

    def henpin_env(self, policies: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            {
                "HENPIN_HOME": str(self.home.resolve()),
                "HENPIN_POLICIES": str(policies.resolve()),
                "HENPIN_DATABASE_URL": self.database_url,
                "HENPIN_RUNNER_QUERY_S": f"{self.poll_s:g}",
            }
        )
        env.update(self.client_env())
        env.update(self.extra_env)
        return env

    def start(self, *, demo_data: bool, policies: Path) -> None:
        from henpin.store.db import migrate

        if not self.ports:
            self.plan()
        self.home.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        assert self.prefect_database_url
        ensure_postgres_database(self.database_url)
        ensure_postgres_database(self.prefect_database_url)
        migrate(self.database_url)
        env = self.henpin_env(policies)
        if self.lock:
            inbox = f"http://127.0.0.1:{self.ports['inbox']}" if self.inbox else None
            self.lock.record(prefect_ui=self.urls["prefect_ui"], inbox=inbox)
        run = self.supervisor

        server_env = {
            **env,
            "PREFECT_API_DATABASE_CONNECTION_URL": self.prefect_database_url,
            SERVER_SETTING: self.auth_string,
            **redis_env(self.redis_url),
        }
        server_env.pop("PREFECT_API_URL", None)
        prefect = prefect_server_part(self.sockets["prefect"], server_env)
        run.start(prefect, wait=False)

        if self.settings.demo_mode:
            state = self.home / "emulator-state.json"
            fresh = not state.exists()
            emulator = emulator_part(
                self.sockets["emulator"],
                dict(env),
                state=state,
                time_scale=self.settings.emulator_time_scale,
                usage_plans=self.emulator_usage_plans,
            )
            run.start(emulator)
            emulator_url = f"http://127.0.0.1:{self.ports['emulator']}"
            if fresh and demo_data:
                httpx.post(f"{emulator_url}/_emulator/seed-demo", timeout=10).raise_for_status()
            env["HENPIN_EMULATOR_URL"] = emulator_url
            self.urls["emulator"] = emulator_url
        else:
            self.urls["emulator"] = None

        wait_until_up(str(prefect.health_url), proc=self.procs["prefect"], timeout=180)
        deploy = subprocess.run(
            with_lifeline([sys.executable, "-m", "henpin.scale", "deploy"]),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if deploy.returncode != 0:
            raise RuntimeError(f"could not create the work pool and deployments:\n{deploy.stderr}")

        for name in self.worker_names:
            run.start(worker_part(name, self.worker_limit, dict(env)))
        run.start(housekeeper_part(dict(env)))

        # Streamlit binds its port itself: the port bound in `plan` is released just before.
        if (held := self.sockets.pop("inbox", None)) is not None:
            held.close()
        if self.inbox:
            env["HENPIN_PREFECT_UI_URL"] = self.urls["prefect_ui"] or ""
            run.start(inbox_part(self.ports["inbox"], dict(env)))
            self.urls["inbox"] = f"http://127.0.0.1:{self.ports['inbox']}"
        self.write_status(ready=True)

    def write_status(self, *, ready: bool) -> None:
        status = {
            "ready": ready,
            "pid": os.getpid(),
            "layout": "scaled",
            "workers": self.worker_names,
            **self.urls,
            "restarts": dict(self.supervisor.restarts),
        }
        if not self.inbox:  # `henpin status` reads the inbox's health; none here
            status["inbox"] = None
        self.status_file.write_text(json.dumps(status, indent=2))

    def supervise(self) -> str:
        """Keep the parts running until one keeps dying (returns why) or Ctrl-C."""
        return self.supervisor.supervise()

    def stop(self) -> None:
        self.supervisor.stop()
        for sock in self.sockets.values():  # those no part took (no demo, no inbox)
            sock.close()
        if self.status_file.exists():
            self.write_status(ready=False)

    def dead_child(self) -> str | None:
        return self.supervisor.dead_part()

    @contextlib.contextmanager
    def prefect_settings(self) -> Iterator[None]:
        """Point this process's Prefect client at the stack (e.g. to decide or inspect runs)."""
        from prefect.settings import (
            PREFECT_API_AUTH_STRING,
            PREFECT_API_URL,
            PREFECT_LOCAL_STORAGE_PATH,
            PREFECT_RESULTS_PERSIST_BY_DEFAULT,
            temporary_settings,
        )

        with temporary_settings(
            updates={
                PREFECT_API_AUTH_STRING: self.auth_string or None,
                PREFECT_API_URL: self.urls["prefect_api"],
                PREFECT_LOCAL_STORAGE_PATH: str(self.storage),
                PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
            }
        ):
            yield


def start_scaled_stack(
    home: Path,
    *,
    workers: int = 2,
    database_url: str,
    redis_url: str | None,
    prefect_database_url: str | None = None,
    policies: Path | None = None,
    demo_data: bool = True,
    inbox: bool = True,
    worker_limit: int = DEFAULT_WORKER_LIMIT,
    poll_s: float = DEFAULT_POLL_S,
    settings: Settings | None = None,
    extra_env: dict[str, str] | None = None,
    lock: StackLock | None = None,
    emulator_usage_plans: str = "amazon",
) -> ScaledStack:
    """Start the production layout on this machine; `stop_scaled_stack` (or `.stop()`) ends it.

    `database_url` is the case store (created if missing); Prefect gets its own database on the
    same server unless `prefect_database_url` names one. Returns once every part answers.
    `emulator_usage_plans` "lifted" (demo mode, benchmarks only) throttles nothing.
    """
    stack = ScaledStack(
        home=home,
        settings=settings or Settings(home=home, database_url=database_url),
        database_url=database_url,
        redis_url=redis_url,
        workers=workers,
        worker_limit=worker_limit,
        poll_s=poll_s,
        prefect_database_url=prefect_database_url,
        inbox=inbox,
        extra_env=dict(extra_env or {}),
        lock=lock,
        emulator_usage_plans=emulator_usage_plans,
    )
    stack.plan()
    try:
        stack.start(demo_data=demo_data, policies=policies or ROOT / "policies.yaml")
    except BaseException:
        stack.stop()
        raise
    return stack


# --- the parts' own entry points (`python -m henpin.scale deploy|housekeeper`) ------------------


def run_housekeeper(settings: Settings) -> None:
    """The housekeeping round every `outbox_interval_s`, in the foreground until SIGTERM."""
    import logging

    from henpin.runner import Housekeeper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from henpin.logs import keep_secrets_out_of_logs

    keep_secrets_out_of_logs()
    housekeeper = Housekeeper(settings.outbox_interval_s)

    def stop(signum: int, frame: Any) -> None:
        housekeeper.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    housekeeper.run()


def main(argv: list[str] | None = None) -> int:
    """The parts' own steps, as systemd runs them (deploy/systemd/, docs/scaling.md)."""
    parser = argparse.ArgumentParser(prog="python -m henpin.scale")
    parser.add_argument("part", choices=["migrate", "deploy", "housekeeper", "wait-for-server"])
    parser.add_argument("api_url", nargs="?", help="wait-for-server: the Prefect API URL")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.part == "migrate":
        from henpin.store.db import migrate

        migrate(settings.store_url)
        print("case store migrated")
        return 0
    if args.part == "wait-for-server":
        url = args.api_url or os.environ.get("PREFECT_API_URL")
        if not url:
            parser.error("wait-for-server needs the Prefect API URL (or PREFECT_API_URL)")
        try:
            wait_until_up(f"{url.rstrip('/')}/health", timeout=170)
        except RuntimeError as exc:
            print(f"henpin.scale: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.part == "deploy":
        from henpin.runner import deploy_to_work_pool

        for name in deploy_to_work_pool(settings):
            print(f"deployed {name} to work pool {POOL}")
        return 0
    run_housekeeper(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
