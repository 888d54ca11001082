"""E-mail to buyers over SMTP: replies to messages that came through Amazon's buyer-seller relay.

Buyers are written to at their Amazon relay address (`Order.buyer_email`, `includedData=BUYER`);
Amazon forwards the mail only when it comes from an address registered for the seller in Seller
Central (set `HENPIN_SMTP_FROM` to it). Amazon gives that address only to applications with the
restricted Direct-to-Consumer Delivery role: without it the case asks the operator to write in
Seller Central's Buyer-Seller Messages instead, and no e-mail is queued. In demo mode and tests `henpin.mailcatcher.MailCatcher`
is the server.

Settings come from the environment (or `.env`): `HENPIN_SMTP_HOST`, `HENPIN_SMTP_PORT`,
`HENPIN_SMTP_USER`, `HENPIN_SMTP_PASSWORD`, `HENPIN_SMTP_FROM`, `HENPIN_SMTP_STARTTLS`. The
password is a `SecretStr`: never logged, never in an error message, and never sent without
TLS except to a server on this machine.

`send_mail` says, by the exception it raises, whether the mail may have been delivered, which is
what the outbox needs to never send a reply twice:
- `MailUnavailable`: certainly not accepted (no connection, login refused, a 4xx before the
  server took the text); sending again later is safe.
- `MailRejected`: the server refused it for good (5xx); sending again will not help.
- `MailUncertain`: the connection broke while the server was taking the text: it may have been
  accepted. Do not send it again without checking.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)


class MailSettings(BaseSettings):
    """How Henpin reaches its SMTP server. Real providers: port 587 with STARTTLS on."""

    model_config = SettingsConfigDict(
        env_prefix="HENPIN_SMTP_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str | None = Field(default=None, description="SMTP server; unset: e-mails wait")
    port: int = Field(default=25, ge=1, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    sender: str = Field(
        default="henpin@localhost",
        validation_alias="HENPIN_SMTP_FROM",
        description="From address; must be registered for the seller in Seller Central",
    )
    starttls: bool = False
    timeout_s: float = Field(default=30.0, gt=0, le=300)

    @property
    def configured(self) -> bool:
        return bool(self.host)


class MailError(Exception):
    """An e-mail could not be handed to the SMTP server, in words an operator can act on."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class MailUnavailable(MailError):
    """Certainly not accepted by the server; safe to send again later."""


class MailRejected(MailError):
    """The server refused the e-mail for good (a 5xx answer)."""


class MailUncertain(MailError):
    """The connection broke while the server took the text: it may have been accepted."""


def message_id_for(key: str, sender: str) -> str:
    """A stable Message-ID for an outbox key: the same action always carries the same id, so a
    mail log can be searched for it and receivers can spot a copy."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "henpin.invalid"
    return f"<henpin.{digest}@{domain}>"


def build_message(
    to: str, subject: str, body: str, *, sender: str, message_id: str | None = None
) -> EmailMessage:
    """The e-mail as it will be sent (UTF-8 text). Raises ValueError for an address or subject
    that would break the header (e.g. a line break: header injection)."""
    if "@" not in to or any(c in to for c in "\r\n,;<> "):
        raise ValueError(f"not a single e-mail address: {to!r}")
    if any(c in subject for c in "\r\n"):
        raise ValueError("an e-mail subject must be one line")
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refused(phase: str, code: int, reply: bytes | str) -> MailError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    said = f"{code} {text}".strip()
    if 400 <= code < 500:
        return MailUnavailable(
            f"the mail server refused the e-mail for now at {phase} ({said}); Henpin will "
            "try again later",
            code=code,
        )
    return MailRejected(f"the mail server refused the e-mail at {phase} ({said})", code=code)


def send_mail(
    to: str, subject: str, body: str, *, settings: MailSettings, message_id: str | None = None
) -> str:
    """Send one e-mail; return its Message-ID. See the module docstring for what each
    exception means for sending again."""
    if not settings.host:
        raise MailUnavailable(
            "no mail server is configured: set HENPIN_SMTP_HOST (and HENPIN_SMTP_PORT, "
            "HENPIN_SMTP_FROM) in the environment or .env"
        )
    message = build_message(to, subject, body, sender=settings.sender, message_id=message_id)
    where = f"{settings.host}:{settings.port}"
    try:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailUnavailable(
            f"the mail server {where} cannot be reached ({type(exc).__name__}); Henpin will "
            "try again later"
        ) from exc
    try:
        _introduce(smtp, settings, where)
        code, reply = smtp.mail(settings.sender)
        if code != 250:
            raise _refused("MAIL FROM", code, reply)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise _refused("RCPT TO", code, reply)
    except MailError:
        _quit(smtp)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        _quit(smtp)
        raise MailUnavailable(
            f"the mail server {where} failed before taking the e-mail ({type(exc).__name__}); "
            "Henpin will try again later"
        ) from exc
    try:
        smtp.data(message.as_bytes())
    except smtplib.SMTPDataError as exc:
        _quit(smtp)
        raise _refused("DATA", exc.smtp_code, exc.smtp_error) from None
    except (OSError, smtplib.SMTPException) as exc:
        _quit(smtp)
        raise MailUncertain(
            f"the connection to {where} broke while the server took e-mail "
            f"{message['Message-ID']} ({type(exc).__name__}); it may have been accepted"
        ) from exc
    _quit(smtp)
    log.info("e-mail %s handed to %s", message["Message-ID"], where)
    return str(message["Message-ID"])


def _introduce(smtp: smtplib.SMTP, settings: MailSettings, where: str) -> None:
    """EHLO, STARTTLS if asked, and login if configured (never a password in clear text to
    another machine)."""
    smtp.ehlo()
    if settings.starttls:
        smtp.starttls(context=ssl.create_default_context())
        smtp.ehlo()
    if not settings.user:
        return
    if not settings.starttls and not _is_local(settings.host or ""):
        raise MailUnavailable(
            f"Henpin will not send the SMTP password to {where} unencrypted: set "
            "HENPIN_SMTP_STARTTLS=true (or use a server on this machine)"
        )
    password = settings.password.get_secret_value() if settings.password else ""
    try:
        smtp.login(settings.user, password)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailUnavailable(
            f"the mail server {where} refused Henpin's login ({exc.smtp_code}); check "
            "HENPIN_SMTP_USER and HENPIN_SMTP_PASSWORD",
            code=exc.smtp_code,
        ) from None


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
