"""E-mail over real SMTP on 127.0.0.1: Henpin's `send_mail` against the local catcher (and two
small misbehaving servers), settings from the environment, the password never shown."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from henpin.mailcatcher import MailCatcher
from henpin.outbox.mail import (
    MailRejected,
    MailSettings,
    MailUnavailable,
    MailUncertain,
    build_message,
    message_id_for,
    send_mail,
)

PASSWORD = "smtp-pw-Zq8-never-shown"  # a recognisable fake
RELAY = "0x8jwvq4z2k5@marketplace.amazon.de"


def settings(port: int, **values: Any) -> MailSettings:
    return MailSettings(
        _env_file=None,  # type: ignore[call-arg]
        host="127.0.0.1",
        port=port,
        sender="shop@example.com",
        timeout_s=5,
        **values,
    )


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, folder=tmp_path / "mail") as running:
        yield running


@pytest.mark.e2e
def test_an_email_reaches_the_catcher_in_memory_and_as_an_eml_file(catcher: MailCatcher) -> None:
    message_id = message_id_for("case-7:email:reply-0:304-1", "shop@example.com")
    sent = send_mail(
        RELAY,
        "Ihre Bestellung 304-1 – Stornierung",
        "Guten Tag,\nbitte stornieren Sie über „Meine Bestellungen“.\n.\nDanke",
        settings=settings(catcher.port),
        message_id=message_id,
    )
    (mail,) = catcher.wait_for(1)
    assert sent == message_id == mail.message_id
    assert mail.rcpt_tos == (RELAY,) and mail.mail_from == "shop@example.com"
    assert mail.subject == "Ihre Bestellung 304-1 – Stornierung"
    assert mail.body == "Guten Tag,\nbitte stornieren Sie über „Meine Bestellungen“.\n.\nDanke\n"
    assert mail.path is not None and mail.path.suffix == ".eml"
    assert mail.path.read_bytes() == mail.data
    assert message_id_for("case-7:email:reply-0:304-1", "x@example.com").endswith("@example.com>")
    assert message_id == message_id_for("case-7:email:reply-0:304-1", "shop@example.com")


@pytest.mark.e2e
def test_the_catcher_listens_on_loopback_on_a_free_port() -> None:
    with MailCatcher() as one, MailCatcher() as two:
        assert one.port != two.port and one.port > 0
        assert one.host == "127.0.0.1"
        assert one.messages == []


def test_settings_come_from_the_environment_and_hide_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "HENPIN_SMTP_HOST": "smtp.example.com",
        "HENPIN_SMTP_PORT": "587",
        "HENPIN_SMTP_USER": "shop",
        "HENPIN_SMTP_PASSWORD": PASSWORD,
        "HENPIN_SMTP_FROM": "orders@shop.example",
        "HENPIN_SMTP_STARTTLS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    loaded = MailSettings(_env_file=None)  # type: ignore[call-arg]
    assert (loaded.host, loaded.port, loaded.user, loaded.sender, loaded.starttls) == (
        "smtp.example.com",
        587,
        "shop",
        "orders@shop.example",
        True,
    )
    assert loaded.password is not None and loaded.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(loaded) and PASSWORD not in str(loaded.model_dump())


@pytest.mark.e2e
def test_login_works_and_the_password_is_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with MailCatcher(port=0, login=("shop", PASSWORD)) as guarded:
        send_mail(
            RELAY, "Hello", "Body", settings=settings(guarded.port, user="shop", password=PASSWORD)
        )
        with pytest.raises(MailUnavailable, match="refused Henpin's login") as refused:
            send_mail(
                RELAY,
                "Hello",
                "Body",
                settings=settings(guarded.port, user="shop", password="wrong"),
            )
        assert len(guarded.wait_for(1)) == 1
    encoded = base64.b64encode(f"\0shop\0{PASSWORD}".encode()).decode()
    logged = caplog.text + str(refused.value) + repr(refused.value.__cause__)
    assert PASSWORD not in logged and encoded not in logged


class _RecordsLogin:
    """Stands in for smtplib.SMTP where no real server can be: another machine."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def ehlo(self) -> None:
        pass

    def login(self, user: str, password: str) -> None:
        self.logins.append(user)


def test_the_password_is_not_sent_unencrypted_to_another_machine() -> None:
    from henpin.outbox.mail import _introduce

    smtp = _RecordsLogin()
    remote = settings(25, user="shop", password=PASSWORD).model_copy(
        update={"host": "smtp.example.com"}
    )
    with pytest.raises(MailUnavailable, match="HENPIN_SMTP_STARTTLS=true") as raised:
        _introduce(smtp, remote, "smtp.example.com:25")  # type: ignore[arg-type]
    assert smtp.logins == [] and PASSWORD not in str(raised.value)
    _introduce(smtp, remote.model_copy(update={"host": "127.0.0.1"}), "127.0.0.1:25")  # type: ignore[arg-type]
    assert smtp.logins == ["shop"]


def test_nothing_listening_is_unavailable_not_uncertain() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(MailUnavailable, match="cannot be reached"):
        send_mail(RELAY, "Hello", "Body", settings=settings(port))
    with pytest.raises(MailUnavailable, match="HENPIN_SMTP_HOST"):
        send_mail(RELAY, "Hello", "Body", settings=MailSettings(_env_file=None))  # type: ignore[call-arg]


class _Refuses:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return "550 5.1.1 No such relay address" if "unknown" in address else "451 4.3.0 Try later"


class _HangsUpAfterTheText:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        server.transport.close()  # took the text, then the line went dead before the answer
        await asyncio.sleep(0.1)
        return "250 OK"


@pytest.fixture
def server_with() -> Iterator[Any]:
    started: list[Controller] = []

    def start(handler: object) -> int:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = int(free.getsockname()[1])
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.mark.e2e
def test_a_refusal_is_final_or_for_now_by_its_code(server_with: Any) -> None:
    port = server_with(_Refuses())
    with pytest.raises(MailRejected, match="550") as rejected:
        send_mail("unknown@marketplace.amazon.de", "Hello", "Body", settings=settings(port))
    assert rejected.value.code == 550
    with pytest.raises(MailUnavailable, match="451"):
        send_mail(RELAY, "Hello", "Body", settings=settings(port))


@pytest.mark.e2e
def test_a_line_lost_while_the_server_took_the_text_is_uncertain(server_with: Any) -> None:
    port = server_with(_HangsUpAfterTheText())
    with pytest.raises(MailUncertain, match="may have been accepted"):
        send_mail(RELAY, "Hello", "Body", settings=settings(port), message_id="<m1@example.com>")


@pytest.mark.parametrize(
    ("to", "subject"),
    [("not-an-address", "Hi"), (f"{RELAY}, boss@example.com", "Hi"), (RELAY, "Hi\r\nBcc: x@y.z")],
)
def test_addresses_and_subjects_that_would_break_the_header_are_refused(
    to: str, subject: str
) -> None:
    with pytest.raises(ValueError):
        build_message(to, subject, "Body", sender="shop@example.com")
