"""Buyer messages and e-mails: one call each, never twice (a maybe-sent one waits
for a person)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from henpin.amazon import (
    AmazonAdapter,
    AmazonAuthError,
    AmazonError,
    AmazonRequestRejected,
    AmazonUnavailable,
)
from henpin.domain import (
    ActionKind,
    ActionStatus,
    BuyerMessage,
    EmailMessage,
)
from henpin.outbox.mail import (
    MailRejected,
    MailSettings,
    MailUnavailable,
    MailUncertain,
    message_id_for,
    send_mail,
)
from henpin.outbox.states import ONE_BY_ONE, SendState
from henpin.store.db import session_scope
from henpin.store.models import Action, utcnow

log = logging.getLogger(__name__)


DEFAULT_ONE_BY_ONE = 50  # messages and e-mails per round (Messaging: 1 a second, burst 5)
UNCERTAIN_MESSAGE = (
    "Amazon may or may not have delivered this message: {why}. Henpin does not send it again "
    "by itself, so the buyer never gets it twice. Look at the order's messages in Seller "
    "Central (Buyer-Seller Messages), then mark it sent or not sent."
)
UNCERTAIN_EMAIL = (
    "The mail server may or may not have taken this e-mail ({message_id}): {why}. Henpin does "
    "not send it again by itself, so the buyer never gets it twice. Look for that Message-ID "
    "in the mail server's log or the sent folder, then mark it sent or not sent."
)


class _Stop(Exception):
    """The channel is throttled or down: leave the rest of the round's work for later."""


def send_messages_and_emails(
    store_url: str,
    adapter: AmazonAdapter,
    *,
    mail_settings: MailSettings | None = None,
    limit: int = DEFAULT_ONE_BY_ONE,
) -> list[int]:
    """Send pending buyer messages (Messaging API) and e-mails (SMTP), oldest first, one call
    each; return the ids of the actions that finished (done or failed) in this call.

    Each is marked `submitted`/SENDING (committed) before its call. Then: accepted → `done`;
    refused (Amazon does not offer the message, a 5xx from the mail server) → `failed` with
    the reason; certainly not sent (throttled, unreachable, a login problem) → `pending` again;
    maybe sent (a timeout or a 5xx after the request left, a connection broken while the mail
    server took the text) → stays `submitted` as UNCERTAIN, for a person (`settle_uncertain`):
    unlike a feed, a message cannot be looked up at Amazon afterwards, so Henpin never resends
    one on a guess. `mail_settings` default to the environment's (`HENPIN_SMTP_*`); without a
    mail server e-mails wait.
    """
    finished: list[int] = []
    for kind in ONE_BY_ONE:
        todo = _pending_one_by_one(store_url, kind, limit)
        if not todo:
            continue
        if kind is ActionKind.SEND_EMAIL:
            mail_settings = mail_settings or MailSettings()
            if not mail_settings.configured:
                log.warning("%d e-mail(s) wait: no mail server (HENPIN_SMTP_HOST)", len(todo))
                continue
        try:
            for action_id in todo:
                if kind is ActionKind.SEND_MESSAGE:
                    done = _send_buyer_message(store_url, adapter, action_id)
                else:
                    assert mail_settings is not None
                    done = _send_email(store_url, mail_settings, action_id)
                if done:
                    finished.append(action_id)
        except _Stop as stop:
            log.warning("%s: the rest waits for the next round: %s", kind.value, stop)
    return finished


def _pending_one_by_one(store_url: str, kind: ActionKind, limit: int) -> list[int]:
    with session_scope(store_url) as s:
        return list(
            s.scalars(
                select(Action.id)
                .where(Action.status == ActionStatus.PENDING.value, Action.kind == kind.value)
                .order_by(Action.id)
                .limit(limit)
            )
        )


def _claim(store_url: str, action_id: int) -> tuple[str, str, dict[str, object]] | None:
    """Mark a pending action SENDING (committed before any call); its key, marketplace and
    payload, or None when another sender took it first."""
    with session_scope(store_url) as s:
        moved = s.execute(
            update(Action)
            .where(Action.id == action_id, Action.status == ActionStatus.PENDING.value)
            .values(
                status=ActionStatus.SUBMITTED.value,
                result_code=SendState.SENDING.value,
                result_message="being sent",
                updated_at=utcnow(),
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return None
        action = s.get(Action, action_id)
        assert action is not None
        return action.key, action.marketplace_id, dict(action.payload)


def _after_sending(
    store_url: str,
    action_id: int,
    status: ActionStatus,
    code: str | None = None,
    message: str | None = None,
) -> None:
    """Record what the call did, if the action is still the SENDING one this sender claimed."""
    with session_scope(store_url) as s:
        s.execute(
            update(Action)
            .where(
                Action.id == action_id,
                Action.status == ActionStatus.SUBMITTED.value,
                Action.result_code == SendState.SENDING.value,
            )
            .values(
                status=status.value,
                result_code=code[:60] if code else None,
                result_message=message,
                updated_at=utcnow(),
            )
        )


def _send_buyer_message(store_url: str, adapter: AmazonAdapter, action_id: int) -> bool:
    claimed = _claim(store_url, action_id)
    if claimed is None:
        return False
    _, marketplace_id, payload = claimed
    try:
        message = BuyerMessage.model_validate(payload)
        adapter.send_message(message.order_id, marketplace_id, message.action, message.text)
    except ValueError as exc:  # a stored payload Amazon would refuse anyway
        _after_sending(store_url, action_id, ActionStatus.FAILED, "HENPIN_INVALID_ACTION", str(exc))
        return True
    except AmazonAuthError as exc:
        # Certainly not sent; its region's login is refused: the other regions' messages go on.
        _after_sending(store_url, action_id, ActionStatus.PENDING)
        log.error("message %s waits: %s", action_id, exc)
        return False
    except AmazonRequestRejected as exc:
        code = exc.code or f"HTTP_{exc.status}"
        _after_sending(store_url, action_id, ActionStatus.FAILED, code, str(exc))
        return True
    except AmazonUnavailable as exc:
        if exc.may_have_applied:
            _after_sending(
                store_url,
                action_id,
                ActionStatus.SUBMITTED,
                SendState.UNCERTAIN.value,
                UNCERTAIN_MESSAGE.format(why=exc),
            )
            log.error("message action %s: may have been sent: %s", action_id, exc)
            return False
        _after_sending(store_url, action_id, ActionStatus.PENDING)
        raise _Stop(str(exc)) from exc
    except AmazonError as exc:  # throttled, or an unreadable list of allowed messages
        _after_sending(store_url, action_id, ActionStatus.PENDING)
        raise _Stop(str(exc)) from exc
    _after_sending(store_url, action_id, ActionStatus.DONE, "SENT", "Amazon accepted the message.")
    return True


def _send_email(store_url: str, settings: MailSettings, action_id: int) -> bool:
    claimed = _claim(store_url, action_id)
    if claimed is None:
        return False
    key, _, payload = claimed
    message_id = message_id_for(key, settings.sender)
    try:
        email = EmailMessage.model_validate(payload)
        send_mail(email.to, email.subject, email.body, settings=settings, message_id=message_id)
    except MailUncertain as exc:
        _after_sending(
            store_url,
            action_id,
            ActionStatus.SUBMITTED,
            SendState.UNCERTAIN.value,
            UNCERTAIN_EMAIL.format(message_id=message_id, why=exc),
        )
        log.error("e-mail action %s: may have been sent: %s", action_id, exc)
        return False
    except MailRejected as exc:
        _after_sending(store_url, action_id, ActionStatus.FAILED, f"SMTP_{exc.code}", str(exc))
        return True
    except MailUnavailable as exc:
        _after_sending(store_url, action_id, ActionStatus.PENDING)
        raise _Stop(str(exc)) from exc
    except ValueError as exc:  # not an address, a subject over two lines
        _after_sending(store_url, action_id, ActionStatus.FAILED, "HENPIN_INVALID_ACTION", str(exc))
        return True
    _after_sending(store_url, action_id, ActionStatus.DONE, "SENT", f"Message-ID {message_id}")
    return True


def settle_uncertain(store_url: str, key: str, *, was_sent: bool, by: str) -> bool:
    """A person's answer about a message or e-mail Henpin could not tell was sent: sent → `done`;
    not sent → `pending`, sent on the next round. False when the action is not uncertain (any
    more): nothing changed."""
    status, code = (
        (ActionStatus.DONE, "CONFIRMED_SENT") if was_sent else (ActionStatus.PENDING, None)
    )
    note = f"{by} confirmed it was sent." if was_sent else f"{by} confirmed it was not sent."
    with session_scope(store_url) as s:
        moved = s.execute(
            update(Action)
            .where(
                Action.key == key,
                Action.status == ActionStatus.SUBMITTED.value,
                Action.result_code == SendState.UNCERTAIN.value,
            )
            .values(status=status.value, result_code=code, result_message=note, updated_at=utcnow())
        )
        return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def _configured_sender() -> str:
    try:
        return MailSettings().sender
    except ValueError:  # settings that do not load: the default sender's id is still findable
        return str(MailSettings.model_fields["sender"].default)


def _uncertain_after_crash(store_url: str, now: datetime, settle: timedelta) -> list[int]:
    """Messages and e-mails left SENDING longer than any call lasts: the process died around
    the call. Whether it went out is unknown, so they become UNCERTAIN (never resent alone)."""
    why = "Henpin stopped while sending it"
    with session_scope(store_url) as s:
        stuck = s.scalars(
            select(Action).where(
                Action.status == ActionStatus.SUBMITTED.value,
                Action.result_code == SendState.SENDING.value,
                Action.kind.in_([k.value for k in ONE_BY_ONE]),
                Action.updated_at <= now - settle,
            )
        ).all()
        for action in stuck:
            action.result_code = SendState.UNCERTAIN.value
            action.result_message = (
                UNCERTAIN_MESSAGE.format(why=why)
                if action.kind == ActionKind.SEND_MESSAGE.value
                else UNCERTAIN_EMAIL.format(
                    message_id=message_id_for(action.key, _configured_sender()), why=why
                )
            )
            log.error("action %s (%s): %s; a person must check", action.id, action.kind, why)
        return [a.id for a in stuck]
