"""Running the emulator: in a background thread (tests, ``henpin up``) or in the foreground (CLI)."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from emulator.app import create_app
from emulator.auth import Credentials
from emulator.control import seed_demo_data
from emulator.ratelimit import USAGE_PLANS
from emulator.runtime import Emulator
from emulator.state import EmulatorState

STARTUP_TIMEOUT_SECONDS = 15.0


def _bind(host: str, port: int) -> socket.socket:
    # Binding here rather than in uvicorn lets port 0 pick a free port we can report.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is TCP,
    # and without it every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def build_app(
    *,
    time_scale: float,
    state_file: Path | None,
    seed_demo: bool,
    credentials: Credentials | None = None,
    usage_plans_lifted: bool = False,
) -> FastAPI:
    """The app over a state loaded from ``state_file``; demo data only into an empty account;
    with ``usage_plans_lifted`` (benchmarks only), nothing is throttled."""
    app = create_app(
        EmulatorState(state_file),
        time_scale=time_scale,
        credentials=credentials,
        usage_plans_lifted=usage_plans_lifted,
    )
    emulator: Emulator = app.state.emulator
    # Seeding an account that already has orders would undo the demo's progress after a restart.
    if seed_demo and not emulator.state.orders:
        seed_demo_data(emulator)
    return app


class EmulatorServer:
    """The emulator served by uvicorn on a background thread; ``url`` once started."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        time_scale: float = 1.0,
        state_file: Path | None = None,
        seed_demo: bool = False,
        credentials: Credentials | None = None,
        usage_plans_lifted: bool = False,
    ) -> None:
        self.host = host
        self.usage_plans_lifted = usage_plans_lifted
        self.port = port
        self.time_scale = time_scale
        self.state_file = state_file
        self.seed_demo = seed_demo
        self.credentials = credentials
        self.app: FastAPI | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the running server."""
        if self._socket is None:
            raise RuntimeError("the emulator is not started")
        return _url(self._socket)

    @property
    def emulator(self) -> Emulator:
        """The running emulator's state, clock and quotas (for in-process inspection)."""
        if self.app is None:
            raise RuntimeError("the emulator is not started")
        emulator: Emulator = self.app.state.emulator
        return emulator

    def start(self) -> EmulatorServer:
        """Bind, start serving on a daemon thread and wait until requests are accepted."""
        self.app = build_app(
            time_scale=self.time_scale,
            state_file=self.state_file,
            seed_demo=self.seed_demo,
            credentials=self.credentials,
            usage_plans_lifted=self.usage_plans_lifted,
        )
        self._socket = _bind(self.host, self.port)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"henpin-emulator-{self.url}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the SP-API emulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; the state file already holds every change, so a new
        server on the same state file continues queued feeds and reports in simulated time."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = None
        self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``henpin emulator``: run the emulator in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="henpin emulator",
        description=(
            "Run the local Amazon SP-API emulator "
            "(LWA, Orders, Feeds, Reports, Messaging, control API)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8500, help="port (0 picks a free one)")
    parser.add_argument(
        "--fd",
        type=int,
        help="serve on this inherited listening socket (its parent bound it) instead of binding",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (feeds and quotas run faster above 1)",
    )
    parser.add_argument("--state-file", type=Path, help="JSON file keeping state across restarts")
    parser.add_argument(
        "--seed-demo",
        action="store_true",
        help="load the demo orders and returns if the account is empty",
    )
    parser.add_argument(
        "--usage-plans",
        choices=USAGE_PLANS,
        default="amazon",
        help="amazon (default): throttle each operation as Amazon's usage plans do. lifted: "
        "FOR BENCHMARKS ONLY, throttle nothing (and state a very high rate in "
        "x-amzn-RateLimit-Limit), to measure Henpin's engine without Amazon's quotas",
    )
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    try:
        app = build_app(
            time_scale=args.time_scale,
            state_file=args.state_file,
            seed_demo=args.seed_demo,
            usage_plans_lifted=args.usage_plans == "lifted",
        )
    except ValueError as problem:  # an unreadable state file: say which and what to do
        print(problem, file=sys.stderr)
        return 2
    try:
        # family, type and protocol are read from the descriptor (TCP: see `_bind`)
        sock = socket.socket(fileno=args.fd) if args.fd is not None else _bind(args.host, args.port)
    except OSError as error:
        print(
            f"Cannot listen on {args.host}:{args.port}: {error}. Try another --port.",
            file=sys.stderr,
        )
        return 2
    print(
        f"Henpin SP-API emulator listening on {_url(sock)} (time scale {args.time_scale:g}"
        + (", usage plans LIFTED: benchmarks only)" if args.usage_plans == "lifted" else ")"),
        flush=True,
    )
    print(f"Control API: {_url(sock)}/_emulator/ (docs at {_url(sock)}/_emulator/docs)", flush=True)
    print(
        f"SP-API regions: {_url(sock)}/na, {_url(sock)}/eu, {_url(sock)}/fe "
        "(unprefixed paths: legacy, the access token's region)",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="info", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
