"""The Prefect server on a socket its parent bound: ``python -m henpin.prefect_serve --fd N``.

`prefect server start` binds the port it is given itself, so whoever starts it must pick a free
port, release it and hope nobody takes it before the server binds it again: racy on a loaded
machine. This serves the same app the same way (prefect 3.9.1, prefect/cli/_server_utils.py,
`_run_in_foreground` with one worker: ``create_app(final=True)`` under uvicorn with Prefect's
server settings, which come from the environment as there) on the listening socket the parent
hands over (``pass_fds``), so the port is bound once, by the parent.

On SQLite (the default layout) every write transaction of the server begins IMMEDIATE
(`writes_wait_their_turn`).
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from typing import Any


def writes_wait_their_turn() -> None:
    """Prefect's server on SQLite begins its write transactions IMMEDIATE, so concurrent writers
    queue on SQLite's busy timeout (Prefect sets 60 s) instead of failing.

    Prefect 3.9.1 (prefect/server/database/configurations.py, `AioSqliteConfiguration`) begins
    them DEFERRED unless a caller asks for a row lock. A deferred transaction that has read and
    then writes after another connection wrote cannot upgrade its snapshot: SQLite answers
    "database is locked" at once, without calling the busy handler
    (https://www.sqlite.org/c3ref/busy_handler.html, https://www.sqlite.org/lang_transaction.html),
    and the API answers 503. Prefect's own comment there names the cure ("this can be resolved by
    using the IMMEDIATE transaction mode"). Measured (bench, 40 cases opened four at a time on
    2 cores, a test run sharing them): 30 "database is locked" and a 58 s ingestion before,
    none and 21 s after.
    Reads outside a transaction are unchanged (WAL: they never wait for a writer)."""
    from prefect.server.database import configurations

    @asynccontextmanager
    async def begin_transaction(
        self: configurations.AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncGenerator[Any, None]:
        token = configurations.SQLITE_BEGIN_MODE.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            configurations.SQLITE_BEGIN_MODE.reset(token)

    configurations.AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m henpin.prefect_serve",
        description="Run the Prefect server (API and UI) on an inherited listening socket.",
    )
    parser.add_argument("--fd", type=int, required=True, help="the listening socket's descriptor")
    args = parser.parse_args(argv)

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import (
        PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
        PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL,
        PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT,
        PREFECT_SERVER_LOGGING_LEVEL,
        PREFECT_SERVER_UI_ENABLED,
    )

    writes_wait_their_turn()
    # family, type and protocol are read from the descriptor (a TCP socket: uvicorn then sets
    # TCP_NODELAY on each connection, which socket.fromfd's AF_UNIX guess would prevent).
    sock = socket.socket(fileno=args.fd)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    # what `prefect server start` says first (its log is where an operator looks for the UI)
    print(f"Prefect server: API at {url}/api", flush=True)
    if PREFECT_SERVER_UI_ENABLED.value():
        print(f"Check out the dashboard at {url}", flush=True)
    config = uvicorn.Config(
        create_app(final=True),
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        ws_ping_interval=PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL.value(),
        ws_ping_timeout=PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT.value(),
        log_level=str(PREFECT_SERVER_LOGGING_LEVEL.value()).lower(),
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
