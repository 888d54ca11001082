"""Storing an action under its idempotency key: the only way into the outbox."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from henpin.amazon import (
    check_message_text,
)
from henpin.amazon.feed_xml import (
    PAYLOAD_MODELS,
    build_feed,
)
from henpin.domain import (
    ActionKind,
    ActionStatus,
    BuyerMessage,
    ClosesCase,
    EmailMessage,
    FeedType,
)
from henpin.outbox.mail import (
    build_message,
)
from henpin.outbox.states import KIND_FEED_TYPES, ONE_BY_ONE
from henpin.store.db import session_scope
from henpin.store.models import Action


class OutboxKeyConflict(ValueError):
    """The idempotency key is already used by a different action: a bug in the caller."""


def enqueue(
    store_url: str,
    *,
    key: str,
    case_id: int | None,
    kind: ActionKind,
    marketplace_id: str,
    payload: BaseModel,
    feed_type: FeedType | None = None,
    closes_case: ClosesCase | None = None,
) -> int:
    """Store an Amazon action (or an e-mail) before anything is sent; return its id.

    `closes_case`: how the case ends when Amazon confirms the action; the outbox closes it so
    when it records Amazon's result (`feeds._record_outcome`).

    Cancellations and refunds go in feeds (`feed_type` may be left out: it follows from the
    kind); messages (`BuyerMessage`) and e-mails (`EmailMessage`) take none. The same key again
    returns the existing action (idempotent, also when two processes race: the database's
    unique key decides). The same key with a different action is refused.
    """
    channel = _check_sendable(kind, feed_type, payload)
    data = payload.model_dump(mode="json")
    try:
        with session_scope(store_url) as s:
            existing = s.scalars(select(Action).where(Action.key == key)).one_or_none()
            if existing is not None:
                return _same_action(existing, kind, channel, marketplace_id, data)
            action = Action(
                key=key,
                case_id=case_id,
                kind=kind.value,
                feed_type=channel,
                marketplace_id=marketplace_id,
                payload=data,
                status=ActionStatus.PENDING.value,
                closes_case=closes_case.model_dump(mode="json") if closes_case else None,
            )
            s.add(action)
            s.flush()
            return action.id
    except IntegrityError:
        # Another process stored the same key between our read and our insert.
        with session_scope(store_url) as s:
            existing = s.scalars(select(Action).where(Action.key == key)).one()
            return _same_action(existing, kind, channel, marketplace_id, data)


def _check_sendable(kind: ActionKind, feed_type: FeedType | None, payload: BaseModel) -> str:
    """What the action travels by (a feed type, or a channel); fails now, in the case that
    asked, rather than later among other cases' actions."""
    if kind in ONE_BY_ONE:
        channel, model = ONE_BY_ONE[kind]
        if feed_type is not None:
            raise ValueError(f"a {kind.value} action is sent on its own, not in a feed")
        if not isinstance(payload, model):
            raise TypeError(f"a {kind.value} action needs a {model.__name__} payload")
        if isinstance(payload, BuyerMessage):
            check_message_text(payload.text)
        elif isinstance(payload, EmailMessage):
            build_message(payload.to, payload.subject, payload.body, sender="check@henpin.invalid")
        return channel
    expected = KIND_FEED_TYPES[kind]
    if feed_type is not None and feed_type is not expected:
        raise ValueError(f"a {kind.value} action goes in a {expected.value} feed")
    if not isinstance(payload, PAYLOAD_MODELS[expected]):
        raise TypeError(
            f"a {expected.value} action needs a {PAYLOAD_MODELS[expected].__name__} payload"
        )
    build_feed(expected, "VALIDATION", [(1, payload)])
    return expected.value


def _same_action(
    existing: Action,
    kind: ActionKind,
    channel: str,
    marketplace_id: str,
    data: dict[str, object],
) -> int:
    if (existing.kind, existing.feed_type, existing.marketplace_id, existing.payload) != (
        kind.value,
        channel,
        marketplace_id,
        data,
    ):
        raise OutboxKeyConflict(
            f"outbox key {existing.key!r} already names another action (id {existing.id}); "
            "an idempotency key must always describe the same action"
        )
    return existing.id
