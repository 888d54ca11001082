"""What a feed and a one-by-one send can be, the numbers they live by, and flagging
a case when Amazon refuses its action."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from henpin.amazon.result_codes import TEMPORARY_CODES
from henpin.domain import (
    ActionKind,
    ActionStatus,
    BuyerMessage,
    EmailMessage,
    FeedType,
)
from henpin.policy.reasons import Phrase, phrase
from henpin.store.models import Action, Case, Event, Feed

DEFAULT_MAX_MESSAGES = 500  # messages per feed; Amazon accepts far more, this keeps reports small
SETTLE = timedelta(minutes=10)  # longer than one createFeed attempt can last (quota wait + retries)
CLOCK_SKEW = timedelta(minutes=5)  # between our clock and Amazon's createdTime


class FeedState(StrEnum):
    PREPARING = "preparing"  # stored with its document; certainly not created at Amazon
    SENDING = "sending"  # a createFeed is under way, or its answer was lost: maybe at Amazon
    SUBMITTED = "submitted"  # Amazon's feedId recorded; waiting for its processing
    DONE = "done"
    FATAL = "fatal"
    CANCELLED = "cancelled"  # cancelled at Amazon (not by Henpin) before processing
    REJECTED = "rejected"  # Amazon refused createFeed outright (4xx): its actions failed
    ATTENTION = "attention"  # Amazon finished it but its report is unreadable or does not add up
    SETTLED = "settled"  # was in attention; a person answered for its actions (settle_attention)


KIND_FEED_TYPES: dict[ActionKind, FeedType] = {
    ActionKind.CANCEL_ORDER: FeedType.ORDER_ACKNOWLEDGEMENT,
    ActionKind.REFUND: FeedType.PAYMENT_ADJUSTMENT,
}
# Actions sent one by one, no feed: what `Action.feed_type` holds for them, and their payload.
ONE_BY_ONE: dict[ActionKind, tuple[str, type[BuyerMessage] | type[EmailMessage]]] = {
    ActionKind.SEND_MESSAGE: ("MESSAGING_API", BuyerMessage),
    ActionKind.SEND_EMAIL: ("SMTP", EmailMessage),
}


class SendState(StrEnum):
    """Where a message or e-mail stands while its action is `submitted` (in `result_code`)."""

    SENDING = "SENDING"  # stored right before the call: the call may be under way
    UNCERTAIN = "UNCERTAIN"  # the call may have gone through: a person checks; never resent alone


# Amazon's processing report codes that mean "not applied, send it again" (henpin/amazon/result_codes.py).
RESUBMIT_CODES = TEMPORARY_CODES
MAX_SUBMISSIONS = 5  # times one action is put in a feed before its failure is final
RESUBMIT_PREFIX = "RESUBMIT_"


def _fail(action: Action, code: str, message: str) -> None:
    action.status = ActionStatus.FAILED.value
    action.result_code = code[:60]
    action.result_message = message


def _feed_tag(feed_id: int) -> str:
    return f"(Henpin feed {feed_id})"


def _flag(session: Session, case_id: int | None, reason: Phrase, data: dict[str, object]) -> None:
    if case_id is None:
        return
    case = session.get(Case, case_id)
    if case is None:
        return
    case.flag_attention(reason)
    data = {**data, "attention": reason.as_json()}
    session.add(Event(case_id=case_id, kind="needs-attention", message=reason.text, data=data))


def _flag_feed_cases(session: Session, feed_id: int, why: Phrase) -> None:
    """Flag the cases of a feed's unresolved actions: a person must answer for them. (Its
    words hold `_feed_tag`, by which `settle_attention` takes the flag off again.)"""
    feed = session.get(Feed, feed_id)
    if feed and feed.amazon_feed_id:
        reason = phrase(
            "attention",
            "amazon-feed-needs-person",
            amazon_feed_id=feed.amazon_feed_id,
            feed_id=feed_id,
            why=why.as_json(),
        )
    else:
        reason = phrase("attention", "feed-needs-person", feed_id=feed_id, why=why.as_json())
    case_ids = session.scalars(
        select(Action.case_id)
        .where(Action.feed_id == feed_id, Action.status == ActionStatus.SUBMITTED.value)
        .distinct()
    ).all()
    for case_id in case_ids:
        _flag(session, case_id, reason, {"feed_id": feed_id})


def _flag_rejected(session: Session, action: Action) -> None:
    """Amazon refused an action: its case shows it, with Amazon's code and words."""
    reason = phrase(
        "attention",
        "amazon-rejected",
        action_kind=action.kind,
        code=str(action.result_code),
        message=action.result_message or phrase("attention", "no-description").as_json(),
    )
    _flag(session, action.case_id, reason, {"action": action.key, "code": action.result_code})
