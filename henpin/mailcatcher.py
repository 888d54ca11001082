"""A local SMTP server that keeps what it receives: Henpin's mailbox in demo mode and in tests.

Real SMTP (aiosmtpd) on 127.0.0.1, so Henpin's e-mail code runs exactly as against a real server.
Every message is kept in memory (`messages`) and, with a `folder`, written there as one `.eml`
file each (open them in any mail program). Nothing is ever forwarded.

    with MailCatcher(port=0, folder=Path(".henpin/mail")) as catcher:
        ...  # HENPIN_SMTP_HOST=127.0.0.1, HENPIN_SMTP_PORT=catcher.port
        catcher.wait_for(1)
        print(catcher.messages[0].subject)

`login=(user, password)` makes it require SMTP AUTH (without TLS: it only listens locally).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class CaughtMail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: datetime
    path: Path | None = None
    message: EmailMessage = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = message_from_bytes(self.data, policy=default_policy)
        object.__setattr__(self, "message", parsed)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def to(self) -> str:
        return str(self.message["To"] or "")

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        text = part.get_content() if isinstance(part, EmailMessage) else ""
        return str(text).replace("\r\n", "\n")


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        self.catcher._keep(envelope.mail_from or "", tuple(envelope.rcpt_tos), data)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's controller, able to listen on port 0 (any free port) or on a listening socket
    its caller bound (`sock`: the parent of `henpin mailcatcher --fd` hands one over)."""

    def __init__(self, *args: Any, sock: socket.socket | None = None, **kwargs: Any) -> None:
        self._sock = sock
        if sock is not None:
            kwargs["hostname"], kwargs["port"] = sock.getsockname()[:2]
        super().__init__(*args, **kwargs)

    def _create_server(self) -> Any:
        if self._sock is None:
            return super()._create_server()
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd is untyped

    def factory(self) -> Any:
        # Login without TLS is what a local catcher offers on purpose: no warning per connection.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()  # type: ignore[no-untyped-call]  # aiosmtpd is untyped


class MailCatcher:
    """An SMTP server on `host` (127.0.0.1 unless told) that keeps every message it receives."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        folder: Path | str | None = None,
        *,
        login: tuple[str, str] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.host = host
        self.folder = Path(folder) if folder is not None else None
        self._login = login
        self._messages: list[CaughtMail] = []
        self._changed = threading.Condition()
        options: dict[str, Any] = {}
        if login is not None:
            options = {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": False,
            }
        self._controller = _Controller(
            _Handler(self), hostname=host, port=port, sock=sock, **options
        )
        self._running = False

    # -- lifecycle

    def start(self) -> MailCatcher:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self._controller.port)

    # -- what arrived

    @property
    def messages(self) -> list[CaughtMail]:
        with self._changed:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[CaughtMail]:
        """The messages, once at least `count` have arrived (TimeoutError after `timeout` s)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._messages)} of {count} e-mails arrived")
                self._changed.wait(left)
            return list(self._messages)

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()

    def _keep(self, mail_from: str, rcpt_tos: tuple[str, ...], data: bytes) -> None:
        received = datetime.now(UTC)
        with self._changed:
            path = None
            if self.folder is not None:
                number = len(list(self.folder.glob("*.eml"))) + 1
                path = self.folder / f"{received:%Y%m%dT%H%M%S}-{number:05d}.eml"
                partial = path.with_suffix(".part")
                partial.write_bytes(data)
                os.replace(partial, path)
            self._messages.append(CaughtMail(mail_from, rcpt_tos, data, received, path))
            self._changed.notify_all()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._login is not None and isinstance(auth_data, LoginPassword):
            user, password = (v.encode() for v in self._login)
            if hmac.compare_digest(auth_data.login, user) and hmac.compare_digest(
                auth_data.password, password
            ):
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
