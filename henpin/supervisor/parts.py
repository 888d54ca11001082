"""How each part of Henpin's stack is started, written once: the Prefect server, the SP-API
emulator, the mail catcher, the runner, the production layout's workers and housekeeper, the
Streamlit inbox.

`henpin up` (henpin/stack.py), its production layout (henpin/scale.py), the benchmarks (bench/)
and the tests' Prefect server (`PrefectServer`) all build their parts here and start them with
a `Supervisor`. A server part serves on a socket its starter bound (`--fd N`), so its port is
bound once; the Prefect server and the emulator may instead be given a port number, for a
server that binds it itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from henpin.logs import prefect_logging_settings
from henpin.supervisor.core import ROOT, Part, Supervisor
from henpin.supervisor.ports import listening_socket, port_of, wait_until_up

Where = int | socket.socket  # a port the part binds itself, or a socket bound for it


def prefect_env(home: Path, api_url: str | None, database_url: str | None = None) -> dict[str, str]:
    """Prefect's settings for a stack whose data lives in `home` (the server's SQLite database,
    result storage, logging), pointed at `api_url`."""
    # Absolute, and made here: Prefect creates PREFECT_HOME itself only one level deep, and says
    # "Failed to create the Prefect home directory" on a fresh clone's `.henpin/prefect`.
    prefect_home = (home / "prefect").resolve()
    prefect_home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_LOCAL_STORAGE_PATH": str(prefect_home / "storage"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_LOGGING_SETTINGS_PATH": str(prefect_logging_settings(prefect_home)),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url
        or f"sqlite+aiosqlite:///{(prefect_home / 'prefect.db').resolve()}",
    }
    env.update(csrf_env(os.environ))
    if api_url:
        env["PREFECT_API_URL"] = api_url
        if api_url.startswith("http://"):
            env["PREFECT_API_SSL_CERT_FILE"] = str(one_certificate_file(prefect_home))
    return env


#: What Prefect's settings read as true (pydantic's bool parsing).
TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
#: Prefect's server settings for CSRF protection (either name; off unless set).
CSRF_PROTECTION = (
    "PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED",
    "PREFECT_SERVER_CSRF_PROTECTION_ENABLED",
)


def csrf_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The clients' CSRF setting matching the CSRF protection of a Prefect server Henpin starts.

    Prefect's server leaves CSRF protection off unless it is set (prefect 3.9.1,
    settings/models/server/api.py); its clients still ask for a token before their first
    change request (`PREFECT_CLIENT_CSRF_SUPPORT_ENABLED`, on by default), are told "CSRF
    protection is disabled" (422) and only then stop asking (prefect/client/base.py
    `_add_csrf_headers`). Each client does that once, and Henpin makes one for each resume, each
    case summary and each flow run: a quarter of the requests of a burst of cases woken by one
    feed (bench P1 burst, 2026-12-06). With the protection off, the clients are told so here;
    with it on (set for the stack's server in this environment), they keep fetching tokens.
    Only the environment is read: a server whose protection is turned on in a Prefect profile
    or a prefect.toml instead would answer these clients' changes 403 ("Missing CSRF token")."""
    on = any(environ.get(name, "").strip().lower() in TRUE for name in CSRF_PROTECTION)
    return {} if on else {"PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "false"}


def one_certificate_file(folder: Path) -> Path:
    """A CA file of one certificate (certifi's first), for Prefect's API client when its API is
    plain HTTP.

    Every Prefect client builds an SSL context from its CA file whether or not it will use TLS
    (prefect/client/orchestration `PrefectClient.__init__`): with certifi's ~150 certificates,
    30-70 ms of CPU each time, and the resident executor makes several clients per flow run.
    Over plain HTTP the context is never used, so one certificate does. Only Prefect's API client
    reads PREFECT_API_SSL_CERT_FILE: Amazon and everything else keep the system's CAs."""
    import certifi

    bundle = Path(certifi.where()).read_text()
    end = "-----END CERTIFICATE-----"
    first = bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end) + len(end)]
    path = folder / "one-ca.pem"
    if not path.exists() or path.read_text() != first + "\n":
        path.write_text(first + "\n")
    return path


def _port(where: Where) -> int:
    return where if isinstance(where, int) else port_of(where)


#: How the Prefect server Henpin starts writes task runs and events (settings an operator sets
#: in the environment win). prefect 3.9.1's server records task runs and persists events in
#: background services fed by an in-memory queue (settings/models/server/services.py): the
#: task-run recorder wrote one task run per transaction (batch size 1) and the event persister
#: 20 events per transaction. A case's run has about 5 task runs of 3 events each; at the
#: bench's engine pace (1,000 cases in under 5 minutes) the server had recorded 1,648 of some
#: 22,000 task runs after 4,000 cases, and its memory grew with the queue (285 → 583 MB). Bigger
#: batches write the same rows in fewer transactions; a flush every second shows a quiet
#: server's task runs in the UI within a second (the recorder's interval is read as whole
#: seconds: 1 is the shortest). Events still fall behind at sustained engine pace on SQLite
#: (docs/scaling.md, "The server's own writes").
SERVER_WRITES = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "1",
}


def prefect_server_part(where: Where, env: dict[str, str], *, log: str = "") -> Part:
    """The Prefect server on a socket bound here (`henpin.prefect_serve`, handed over), or, given
    a port number, `prefect server start --port` (which binds it itself); with SERVER_WRITES
    where `env` does not say otherwise."""
    port = _port(where)
    env = {**SERVER_WRITES, **env}
    server: tuple[str, ...]
    if isinstance(where, int):
        server = ("-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", f"{port}")
        sockets: tuple[socket.socket, ...] = ()
    else:
        server = ("-m", "henpin.prefect_serve", "--fd", str(where.fileno()))
        sockets = (where,)
    return Part(
        "prefect",
        [sys.executable, *server],
        env,
        health_url=f"http://127.0.0.1:{port}/api/health",
        sockets=sockets,
        log=log,
    )


def emulator_part(
    where: Where,
    env: dict[str, str],
    *,
    state: Path | None = None,
    time_scale: float = 1.0,
    name: str = "emulator",
    usage_plans: str = "amazon",
) -> Part:
    """The SP-API emulator on a socket bound here (`--fd`, handed over) or on a port it binds
    itself; with `state`, it keeps its state in that file across restarts. `usage_plans`
    "lifted" throttles nothing: for benchmarks only (`henpin emulator --usage-plans`)."""
    port = _port(where)
    listen = ("--port", str(port)) if isinstance(where, int) else ("--fd", str(where.fileno()))
    keep = ("--state-file", str(state)) if state is not None else ()
    return Part(
        name,
        [
            *(sys.executable, "-m", "henpin.cli", "emulator", *listen, *keep),
            *("--time-scale", f"{time_scale:g}"),
            *(("--usage-plans", usage_plans) if usage_plans != "amazon" else ()),
        ],
        env,
        health_url=f"http://127.0.0.1:{port}/_emulator/clock",
        sockets=() if isinstance(where, int) else (where,),
    )


def mail_part(sock: socket.socket, folder: Path, env: dict[str, str]) -> Part:
    """The mail catcher: an SMTP server on `sock` that keeps each e-mail as a file in `folder`
    (demo replies to buyers are caught, never sent)."""
    return Part(
        "mail",
        [
            *(sys.executable, "-m", "henpin.cli", "mailcatcher"),
            *("--fd", str(sock.fileno()), "--folder", str(folder)),
        ],
        env,
        sockets=(sock,),
    )


#: How the resident executor's Python allocates memory without jemalloc. CPython's small-object
#: allocator (pymalloc) hands a 1 MiB arena back only once nothing in it lives, so the long-lived
#: process kept the high-water mark of its busiest moment (docs/scaling.md "Memory the runs
#: freed"). With `PYTHONMALLOC=malloc` every object comes from glibc's malloc, whose whole free
#: pages `malloc_trim` releases after runs (henpin/resident.py); at most 2 malloc arenas, not
#: glibc's 8 per core, since under the GIL a thread gains nothing from an arena of its own and
#: each arena keeps its own free pieces. It costs the runner about 15 % more CPU per case (bench,
#: docs/scaling.md). Its heap still fragments: it grew 2-3 MB per 1,000 cases.
RESIDENT_ALLOCATOR = {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "2"}

#: Where Linux distributions install jemalloc's library: Debian and Ubuntu (package libjemalloc2,
#: which their redis-server package also installs) on x86-64 and ARM64, Fedora and RHEL
#: (package jemalloc), Arch and Alpine (package jemalloc).
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)

#: The resident executor on jemalloc, where the machine has it: every object from malloc, as
#: above, and malloc is jemalloc (preloaded), which keeps small blocks in slabs by size class;
#: `background_thread` returns pages freed for `dirty_decay_ms` (10 s) to the system from a
#: thread of its own, also while the runner idles. Over 9,000 cases it grew less than glibc's
#: (about 1 MB per 1,000 cases against 3) and peaked 40 MB lower, at the same CPU, but it still
#: grew. Read inside the runner, what grew was not the memory in use (flat at 143-145 MB at
#: its lowest) but pages only partly in use, spread over jemalloc's default 4 arenas per CPU:
#: `narenas:1` keeps one, as the GIL lets one thread allocate at a time anyway
#: (docs/scaling.md, "Memory the runs freed").
JEMALLOC_ALLOCATOR = {
    "PYTHONMALLOC": "malloc",
    "MALLOC_CONF": "background_thread:true,narenas:1",
}

#: HENPIN_RUNNER_ALLOCATOR: `auto` (jemalloc where one of JEMALLOC_PATHS is there, else
#: glibc's malloc), `jemalloc` (refuse to start without it) or `glibc`.
ALLOCATOR_CHOICES = ("auto", "jemalloc", "glibc")


def resident_allocator(
    choice: str = "auto", paths: tuple[str, ...] = JEMALLOC_PATHS
) -> dict[str, str]:
    """The environment that makes a resident executor allocate as `choice` says (jemalloc
    looked for in `paths`)."""
    if choice not in ALLOCATOR_CHOICES:
        raise ValueError(
            f"HENPIN_RUNNER_ALLOCATOR={choice!r}: choose one of {', '.join(ALLOCATOR_CHOICES)}"
        )
    if choice != "glibc":
        library = next((path for path in paths if Path(path).is_file()), None)
        if library is not None:
            return {**JEMALLOC_ALLOCATOR, "LD_PRELOAD": library}
        if choice == "jemalloc":
            raise ValueError(
                "HENPIN_RUNNER_ALLOCATOR=jemalloc, but no libjemalloc.so.2 is in "
                f"{', '.join(paths)}: install it (Debian, Ubuntu: libjemalloc2; "
                "Fedora, RHEL, Arch, Alpine: jemalloc) or set HENPIN_RUNNER_ALLOCATOR=auto"
            )
    return dict(RESIDENT_ALLOCATOR)


def resident_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a resident executor: the allocator HENPIN_RUNNER_ALLOCATOR chooses (auto:
    jemalloc where the machine has it), unless `env` sets the same variables otherwise."""
    return {**resident_allocator(env.get("HENPIN_RUNNER_ALLOCATOR", "auto")), **env}


def runner_part(env: dict[str, str], *, limit: int | None = None) -> Part:
    """`henpin runner`: the resident executor (Henpin's flow runs, at most `limit` at once, as
    threads of one process) and the housekeeping round; stopped while the Prefect server is
    down. It exits with RECYCLE_EXIT to be started again (a hung run, too much memory)."""
    command = [sys.executable, "-m", "henpin.cli", "runner"]
    if limit:
        command += ["--limit", str(limit)]
    return Part("runner", command, resident_env(env), needs_prefect=True)


def worker_part(name: str, limit: int, env: dict[str, str]) -> Part:
    """A worker of the production layout: `henpin runner` as a resident executor named `name`
    on the work pool `henpin` (type henpin-resident), at most `limit` flow runs at once (threads
    of its one process). No housekeeping (the housekeeper part does it) and no deploying (done
    once, `python -m henpin.scale deploy`). `name` is unique per worker and kept across its
    restarts: a worker started again marks the runs it left running as Crashed, by that name."""
    return Part(
        name,
        [
            *(sys.executable, "-m", "henpin.cli", "runner", "--name", name),
            *("--limit", str(limit), "--no-housekeeping", "--no-deploy"),
        ],
        resident_env(env),
        needs_prefect=True,
    )


def housekeeper_part(env: dict[str, str]) -> Part:
    """The production layout's housekeeper: the runner's housekeeping round, on its own."""
    return Part(
        "housekeeper",
        [sys.executable, "-m", "henpin.scale", "housekeeper"],
        env,
        needs_prefect=True,
    )


def inbox_part(port: int, env: dict[str, str]) -> Part:
    """The Streamlit inbox. Streamlit binds its port itself and takes no socket."""
    return Part(
        "inbox",
        [
            *(sys.executable, "-m", "streamlit", "run", str(ROOT / "ui" / "inbox.py")),
            *("--server.address", "127.0.0.1", "--server.port", str(port)),
            *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
        ],
        env,
        health_url=f"http://127.0.0.1:{port}/_stcore/health",
    )


class PrefectServer:
    """A Prefect server that can be stopped and started again on the same port, as a part of a
    supervisor of its own (logs in `home/<log>.log`); the tests' session server.

    `sock`: the socket of the first start, bound but perhaps not listening yet (tests/conftest.py
    binds it before Prefect is imported, as PREFECT_API_URL must name the port). While stopped the
    port refuses connections, as with no server: the server holds the only copy of its socket.
    A start after a stop binds the same port again (every client knows it); someone may hold it
    for a moment, so that bind retries (`RESTART_BIND_S`)."""

    RESTART_BIND_S = 30.0

    def __init__(
        self,
        port: int,
        home: Path,
        sock: socket.socket | None = None,
        env: dict[str, str] | None = None,
        log: str = "server",
    ) -> None:
        self.port = port
        self.home = home
        self.api = f"http://127.0.0.1:{port}/api"
        self.env = env
        self.log = log
        self.supervisor = Supervisor(home, say=lambda line: None)
        self._sock = sock

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.supervisor.procs.get("prefect")

    def start(self, timeout: float = 90) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        sock = self._sock or listening_socket(self.port, retry_s=self.RESTART_BIND_S)
        self._sock = None
        sock.listen(128)  # a socket bound by the caller may not listen yet
        part = prefect_server_part(sock, dict(self.env or os.environ), log=self.log)
        try:
            self.supervisor.start(part, wait=False)
        finally:
            sock.close()  # the server holds it now: once it stops, the port refuses connections
            part.sockets = ()
        try:
            wait_until_up(f"{self.api}/health", timeout, proc=self.supervisor.procs["prefect"])
        except RuntimeError as error:
            raise RuntimeError(f"{error}; see {self.supervisor.log_path(self.log)}") from None

    def stop(self, grace: float = 30.0) -> None:
        self.supervisor.stop_part("prefect", grace)
        self.supervisor.stop()  # its reaper and log too: nothing of it outlives a stop
