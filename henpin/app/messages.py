"""Buyers' messages: open a "cancel asked by message" case from a buyer's e-mail (after
previewing the reply), and a person's answer about a message Henpin could not tell was sent."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select

from henpin.accounts import AuditAction, find_operator
from henpin.app.cases import (
    CaseNotOpened,
    CaseSummary,
    case_summary,
    note_on_case,
    order_from_amazon,
)
from henpin.marketplaces import MARKETPLACES
from henpin.store.db import session_scope
from henpin.store.models import Action, Case


class ReplyPreview(BaseModel):
    """What the buyer will get when a "cancel asked by message" case opens: the first reply, in
    the buyer's language (Amazon's getAttributes, else the marketplace's), from the policy's
    templates."""

    order_id: str
    marketplace_id: str
    marketplace: str
    language: str
    to: str  # Amazon's relay address for the buyer ("" when the order does not show it)
    subject: str
    body: str
    open_case_id: int | None  # this order's case of that type, when one is already open
    # No buyer e-mail from Amazon: the operator will be asked to send it in Seller Central.
    reply_in_seller_central: bool = False


def preview_cancel_by_message(store_url: str, order_id: str) -> ReplyPreview:
    """The reply the cancel-by-message flow would send for this order, before anything is
    opened or sent (the inbox shows it for the operator to check)."""
    from henpin.context import policy_in_force
    from tasks.ingest import open_cancel_by_message_case
    from tasks.messages import buyer_language_for

    order = order_from_amazon(order_id)
    language = buyer_language_for(order).language
    reply = policy_in_force().cancel_by_message.reply(order, language=language)
    m = MARKETPLACES.get(order.marketplace_id)
    return ReplyPreview(
        order_id=order.order_id,
        marketplace_id=order.marketplace_id,
        marketplace=m.name if m else order.marketplace_id,
        language=language,
        to=order.buyer_email or "",
        subject=reply.subject,
        body=reply.body,
        open_case_id=open_cancel_by_message_case(order.order_id, url=store_url),
        reply_in_seller_central=not order.buyer_email,
    )


def open_cancel_by_message(
    store_url: str, order_id: str, *, buyer_message: str, operator: str
) -> CaseSummary:
    """Open a "cancel asked by message" case from the buyer's e-mail (SP-API cannot read buyer
    messages: an operator brings them in). Its flow replies to the buyer and waits."""
    from henpin.domain import CaseType
    from tasks.ingest import open_and_start

    if not buyer_message.strip():
        raise CaseNotOpened("Paste the buyer's message: the case keeps their words.")
    order = order_from_amazon(order_id)
    opened = open_and_start(
        CaseType.CANCEL_BY_MESSAGE,
        order,
        note=f"{operator} opened this case from the buyer's message.",
        details={"buyer_message": buyer_message.strip(), "opened_by": operator},
    )
    with session_scope(store_url) as s:
        case = s.get(Case, opened.case_id)
        assert case is not None
        return CaseSummary(**case_summary(case))


class SettleCode(StrEnum):
    MARKED_SENT = "marked-sent"  # the action is done; nothing is sent
    MARKED_NOT_SENT = "marked-not-sent"  # back to pending: the next outbox round sends it
    NOT_UNCERTAIN = "not-uncertain"  # someone settled it already, or it never was uncertain
    NOT_ALLOWED = "not-allowed"  # viewers (and inactive operators) do not settle


def settle_message(
    store_url: str,
    case_id: int,
    key: str,
    *,
    was_sent: bool,
    operator: str,
    where: str = "",
) -> SettleCode:
    """A person's answer about a buyer message or e-mail of this case that Henpin could not tell
    was sent (the outbox left it UNCERTAIN and never resends it alone). Sent: the action is done.
    Not sent: it goes back to the outbox and out on the next round. The first answer wins; each
    is on the case's timeline and in the audit log."""
    from henpin.outbox import settle_uncertain  # the outbox owns its actions' states

    who = find_operator(store_url, operator)
    if who is None or not who.active or not who.can_decide:
        return SettleCode.NOT_ALLOWED
    with session_scope(store_url) as s:
        action = s.scalar(select(Action).where(Action.key == key, Action.case_id == case_id))
        kind = action.kind if action else None
    if kind is None or not settle_uncertain(store_url, key, was_sent=was_sent, by=operator):
        return SettleCode.NOT_UNCERTAIN
    code = SettleCode.MARKED_SENT if was_sent else SettleCode.MARKED_NOT_SENT
    text = (
        f"{operator} confirmed the {kind} was sent"
        if was_sent
        else f"{operator} confirmed the {kind} was not sent; it goes out on the next round"
    )
    note_on_case(
        store_url,
        case_id,
        operator,
        AuditAction.MESSAGE_SETTLED,
        text,
        where=where,
        detail={"action": key, "was_sent": was_sent},
    )
    return code
