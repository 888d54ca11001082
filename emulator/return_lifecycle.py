"""How a return request moves on Amazon's side: who authorizes it, and what happens next in
simulated time.

**Authorization at request time.** Each marketplace has the seller's return-authorization
setting, as Seller Central's "Return settings" offer it (help 200828040): ``manual`` (every
request waits for the seller in Manage Returns: "This is the default setting"),
``authorizeAll`` (every request is authorized automatically) or ``authorizeInPolicy`` (requests
within Amazon's return policy are authorized automatically, the others wait for the seller). In
the US, Amazon has authorized in-policy requests on seller-fulfilled orders automatically since
16 August 2021, and only out-of-policy or category-exempt requests go to the seller, who must
answer within 24 hours (help G9DH343PLXALFTUW, 200708210): the US default is
``authorizeInPolicy`` and ``manual`` is refused there. Elsewhere the default is ``manual``.

**Then, in simulated time** (no one needs to poll; every view is computed for a moment):

- ``pending``: waiting for the seller (report status ``Pending``; Seller Central's "Pending
  Authorization"). The seller authorizes or closes it in Seller Central: there is no SP-API
  operation for that, so the control API does it (``POST /_emulator/returns/{rma}/authorize`` or
  ``/close``, help 201725690: "You can close return requests that are in a Pending Authorization
  status").
- ``authorized`` (``Authorized``): the buyer has a label; ``BUYER_SHIPS_AFTER`` later the parcel
  is ``inTransit``, ``TRANSIT_TIME`` after that ``delivered``: the report's ``Return delivery
  date`` is filled in. ``POST /_emulator/returns/{rma}/advance`` moves it sooner.
- ``closed`` (``Closed``): closed by the seller (declined), or by Amazon when nothing happened
  within 50 days of the request (help WQ95DQ9UW4EF49F: "Return requests not actioned within 50
  days from return creation ... will be closed automatically").

Amazon's "Returns reports attributes" page names the column (``Return request status``) but not
its values; the emulator writes the words of Manage Returns. A status a test sets by hand that is
none of ``Pending``, ``Authorized``, ``Closed`` (e.g. ``Approved``) is shown as given and never
moves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from emulator.clock import iso, parse_time

MANUAL, AUTHORIZE_ALL, AUTHORIZE_IN_POLICY = "manual", "authorizeAll", "authorizeInPolicy"
AUTHORIZATION_MODES = (MANUAL, AUTHORIZE_ALL, AUTHORIZE_IN_POLICY)
US = "ATVPDKIKX0DER"
#: Marketplaces whose default is not manual (help G9DH343PLXALFTUW: US since 16 Aug 2021).
DEFAULT_MODES = {US: AUTHORIZE_IN_POLICY}
DEFAULT_MODE = MANUAL
#: Marketplaces where Amazon does not let the seller choose manual authorization.
NO_MANUAL = frozenset({US})

PENDING, AUTHORIZED, CLOSED = "Pending", "Authorized", "Closed"
#: Simulated time for the buyer to hand in the parcel, then for it to reach the seller.
BUYER_SHIPS_AFTER = timedelta(days=1)
TRANSIT_TIME = timedelta(days=3)
#: Amazon closes a request nothing happened to (help WQ95DQ9UW4EF49F).
AUTO_CLOSE_AFTER = timedelta(days=50)
STAGES = ("pending", "authorized", "inTransit", "delivered", "closed", "asSet")
ADVANCE_TO = ("inTransit", "delivered")

#: Record keys this module keeps (besides the report's own ``status`` and
#: ``returnDeliveryDate``); shown by the control API.
LIFECYCLE_FIELDS = (
    "authorizedAt",
    "authorizedBy",
    "shippedAt",
    "plannedDeliveryAt",
    "closedAt",
    "closedBy",
    "closeReason",
)


class ReturnActionRefused(ValueError):
    """A seller action that Seller Central would not offer for the request in its state."""


def mode_for(settings: dict[str, str], marketplace_id: str) -> str:
    """The authorization setting in force for a marketplace."""
    return settings.get(marketplace_id, DEFAULT_MODES.get(marketplace_id, DEFAULT_MODE))


def settings_view(settings: dict[str, str]) -> dict[str, Any]:
    """The control API's view: defaults and the seller's own choices, marketplace by marketplace."""
    marketplaces = {**DEFAULT_MODES, **settings}
    return {
        "default": DEFAULT_MODE,
        "modes": list(AUTHORIZATION_MODES),
        "marketplaces": marketplaces,
    }


def parse_settings(body: Any) -> tuple[dict[str, str], list[str]]:
    """``{"marketplaces": {id: mode}}`` checked: (the new choices, problems)."""
    chosen = body.get("marketplaces") if isinstance(body, dict) else None
    if not isinstance(chosen, dict) or not chosen:
        return {}, ['The body must be {"marketplaces": {"<marketplaceId>": "<mode>"}}.']
    problems = []
    for marketplace_id, mode in chosen.items():
        if mode not in AUTHORIZATION_MODES:
            problems.append(
                f"{marketplace_id}: {mode!r} is not one of {', '.join(AUTHORIZATION_MODES)}."
            )
        elif mode == MANUAL and marketplace_id in NO_MANUAL:
            problems.append(
                f"{marketplace_id}: Amazon authorizes in-policy US returns of seller-fulfilled "
                "orders itself (help G9DH343PLXALFTUW); choose authorizeInPolicy or authorizeAll."
            )
    return dict(chosen), problems


def on_request(record: dict[str, Any], entry: dict[str, Any], settings: dict[str, str]) -> None:
    """What Amazon does the moment the buyer asks: authorize per the marketplace's setting, or
    leave the request to the seller. A status given by the control API's caller is kept."""
    for key in LIFECYCLE_FIELDS:
        record[key] = None
    requested = parse_time(record["returnRequestDate"])
    given = entry.get("status")
    if given is None:
        mode = mode_for(settings, record["marketplaceId"])
        if mode == AUTHORIZE_ALL or (mode == AUTHORIZE_IN_POLICY and record["inPolicy"]):
            authorize(record, requested, by="amazon")
        else:
            record["status"] = PENDING
    elif given == AUTHORIZED:
        authorize(record, requested, by="amazon")
    elif given == CLOSED:
        record.update(closedAt=iso(requested), closedBy="seller")


def authorize(record: dict[str, Any], at: datetime, *, by: str) -> None:
    """Authorized at ``at``: the buyer ships a day later, the parcel arrives three days after."""
    record.update(status=AUTHORIZED, authorizedAt=iso(at), authorizedBy=by)
    if record.get("returnDeliveryDate") is None:
        shipped = at + BUYER_SHIPS_AFTER
        record.update(shippedAt=iso(shipped), plannedDeliveryAt=iso(shipped + TRANSIT_TIME))


def _at(record: dict[str, Any], key: str) -> datetime | None:
    value = record.get(key)
    return parse_time(value) if value else None


def stage_at(record: dict[str, Any], moment: datetime) -> str:
    """Where the request stands at ``moment`` (one of STAGES)."""
    if record.get("status") not in (PENDING, AUTHORIZED, CLOSED):
        return "asSet"
    closed = _at(record, "closedAt")
    if closed is not None and closed <= moment:
        return "closed"
    delivered = _delivered_at(record, moment)
    if delivered is not None:
        return "delivered"
    if parse_time(record["returnRequestDate"]) + AUTO_CLOSE_AFTER <= moment:
        return "closed"
    authorized = _at(record, "authorizedAt")
    if authorized is None or authorized > moment:
        return "pending"
    shipped = _at(record, "shippedAt")
    return "inTransit" if shipped is not None and shipped <= moment else "authorized"


def _delivered_at(record: dict[str, Any], moment: datetime) -> datetime | None:
    """When the item reached the seller, if it had by ``moment``. A delivery date set by the
    control API's caller shows whatever the moment, as it always has."""
    given = _at(record, "returnDeliveryDate")
    if given is not None:
        return given
    planned = _at(record, "plannedDeliveryAt")
    authorized = _at(record, "authorizedAt")
    if planned is None or authorized is None or planned > moment:
        return None
    return planned


_STATUS = {
    "pending": PENDING,
    "authorized": AUTHORIZED,
    "inTransit": AUTHORIZED,
    "delivered": AUTHORIZED,
    "closed": CLOSED,
}


def view(record: dict[str, Any], moment: datetime) -> dict[str, Any]:
    """The request as Amazon shows it at ``moment``: report status, delivery date, stage."""
    stage = stage_at(record, moment)
    shown = dict(record)
    shown["stage"] = stage
    if stage == "asSet":
        return shown
    shown["status"] = _STATUS[stage]
    delivered = _delivered_at(record, moment)
    shown["returnDeliveryDate"] = iso(delivered) if delivered is not None else None
    if stage == "closed" and not record.get("closedAt"):
        closed = parse_time(record["returnRequestDate"]) + AUTO_CLOSE_AFTER
        shown.update(closedAt=iso(closed), closedBy="amazon")
    return shown


def seller_authorizes(record: dict[str, Any], now: datetime) -> None:
    """The seller clicks "Authorize" in Manage Returns (only a pending request offers it)."""
    _expect(record, now, ("pending",), "authorize")
    authorize(record, now, by="seller")


def seller_closes(record: dict[str, Any], now: datetime, reason: str) -> None:
    """The seller closes (declines) a pending request, with the reason Seller Central asks for
    (help WQ95DQ9UW4EF49F: "provide a reason for closing the request")."""
    _expect(record, now, ("pending",), "close")
    record.update(status=CLOSED, closedAt=iso(now), closedBy="seller", closeReason=reason)


def advance(record: dict[str, Any], now: datetime, to: str, at: datetime | None) -> None:
    """Move an authorized request on (tests): the buyer shipped it, or it arrived, at ``at``."""
    _expect(record, now, ("authorized", "inTransit"), f"advance to {to}")
    when = at or now
    if when > now:
        raise ReturnActionRefused("'at' may not be in the future (simulated time).")
    authorized = _at(record, "authorizedAt")
    if authorized is not None and when < authorized:
        raise ReturnActionRefused(
            f"'at' is before the return was authorized ({record['authorizedAt']})."
        )
    shipped = _at(record, "shippedAt")
    if shipped is None or shipped > when:
        record["shippedAt"] = iso(when)
    if to == "delivered":
        record.update(returnDeliveryDate=iso(when), plannedDeliveryAt=None)


def _expect(record: dict[str, Any], now: datetime, stages: tuple[str, ...], what: str) -> None:
    stage = stage_at(record, now)
    if stage not in stages:
        raise ReturnActionRefused(
            f"Return {record['amazonRmaId']} is {stage}: Seller Central offers '{what}' only for "
            f"a request that is {' or '.join(stages)}."
        )
