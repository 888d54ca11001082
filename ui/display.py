"""How values read on screen: time left before a deadline, money, timestamps, outside links.

Presentation only: nothing here decides anything about a case. Money reads as in its
marketplace (Babel, the marketplace's locale: ￥1,500 on amazon.co.jp, 12,50 € on amazon.de),
exact: never rounded to fewer decimals than it has. Times read in the operator's time zone
(`time_zone()`), or in UTC when they switch to it; `at_utc()` gives the UTC time for a tooltip.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st
from babel.numbers import format_currency

from henpin.languages import marketplace_locale, operator_time_zone
from henpin.marketplaces import MARKETPLACES
from ui import session
from ui.i18n import current_language, label, t

UTC_TOGGLE = "time.in_utc"  # the sidebar switch (session state): times in UTC

SOON = timedelta(hours=2)  # a deadline this close is shown in orange
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|$~"})
# GitHub-flavoured markdown links bare URLs (scheme://, www.) and e-mail addresses found in the
# text after escapes are undone, so escaping cannot stop them: an invisible word joiner
# (U+2060) inside each breaks the pattern and leaves the words as they read.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=\bwww)(?=\.)|(?<=[\w.+-])(?=@[\w-])")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """Text from outside (a buyer, Amazon, a note) made inert for st.markdown: no links,
    autolinks, images, colours or formulas, just the words."""
    return _AUTOLINK.sub(WORD_JOINER, str(text).translate(_MARKDOWN))


def local_zone() -> str:
    """The operator's own time zone: HENPIN_TIME_ZONE, else by the session's language
    (Japanese: Asia/Tokyo, else UTC)."""
    return operator_time_zone(current_language(), session.settings().time_zone)


def time_zone() -> str:
    """The IANA time zone this session shows times in: UTC when the operator switched to it
    (the sidebar's toggle), else their own."""
    return "UTC" if st.session_state.get(UTC_TOGGLE) else local_zone()


def at_utc(when: datetime | None) -> str:
    """A timestamp in UTC, to the minute (for a tooltip beside a local time)."""
    if when is None:
        return "—"
    return t("time.utc", at=f"{when.astimezone(UTC):%Y-%m-%d %H:%M}")


def at(when: datetime | None) -> str:
    """A timestamp as operators read it everywhere in the inbox: in their time zone (named, e.g.
    `2026-03-02 21:00 JST`), or UTC, to the minute."""
    if when is None:
        return "—"
    zone = time_zone()
    if zone == "UTC":
        return at_utc(when)
    local = when.astimezone(ZoneInfo(zone))
    return t("time.local", at=f"{local:%Y-%m-%d %H:%M}", zone=local.tzname() or zone)


def at_text(value: Any) -> str:
    """An ISO timestamp from an order snapshot, shown like `at()`; anything else as it is."""
    if not value:
        return "—"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return at(when if when.tzinfo else when.replace(tzinfo=UTC))


def span(delta: timedelta) -> str:
    """A duration in its two largest units: `2 d 3 h`, `4 h 10 min`, `25 min`."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        parts = [t("time.days", n=days)] + ([t("time.hours", n=hours)] if hours else [])
    elif hours:
        parts = [t("time.hours", n=hours)] + ([t("time.minutes", n=mins)] if mins else [])
    elif mins:
        parts = [t("time.minutes", n=mins)]
    else:
        return t("time.less_than_minute")
    return " ".join(parts)


def time_left_plain(deadline: datetime | None, now: datetime) -> str:
    """The time left before a deadline in words (`5 h left`, `overdue by 20 min`)."""
    if deadline is None:
        return "—"
    left = deadline - now
    if left <= timedelta(0):
        return t("time.overdue", span=span(left))
    return t("time.left", span=span(left))


def time_left(deadline: datetime | None, now: datetime) -> str:
    """Markdown for the time left before a deadline: red when overdue, orange when near."""
    text = time_left_plain(deadline, now)
    if deadline is None:
        return text
    left = deadline - now
    if left <= timedelta(0):
        return f":red[**{text}**]"
    return f":orange[**{text}**]" if left <= SOON else text


def money(value: Any, marketplace_id: str | None = None) -> str:
    """`{amount, currency}` (an order snapshot's, a reason's) as its marketplace writes it:
    `$1,234.50`, `￥1,500`, `1.234,50 €`; `—` when missing."""
    if not isinstance(value, dict) or value.get("amount") is None:
        return "—"
    return money_of(value["amount"], value.get("currency"), marketplace_id)


def money_of(amount: Any, currency: str | None, marketplace_id: str | None = None) -> str:
    """An amount of `currency` in the marketplace's format (the currency's own marketplace when
    none is given), exactly: all its decimals are kept (1500.5 JPY is shown so, not rounded)."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return f"{amount} {currency or ''}".strip()
    if not value.is_finite():
        return f"{amount} {currency or ''}".strip()
    if not currency:
        return f"{value:,}"
    locale = marketplace_locale(marketplace_id, currency)
    return format_currency(value, currency, locale=locale, decimal_quantization=False)


def paid_part(item: Any, *parts: str, marketplace_id: str | None = None) -> str:
    """One part of what the buyer paid for an order item (its `paid` breakdown from Amazon's
    proceeds), e.g. `shipping`; with two parts, the first less the second (a price less its
    promotion). `—` when the order does not say."""
    paid = item.get("paid") if isinstance(item, dict) else None
    if not isinstance(paid, dict) or paid.get(parts[0]) is None:
        return "—"
    try:
        value = sum(
            (Decimal(str(paid.get(p) or 0)) * (1 if i == 0 else -1) for i, p in enumerate(parts)),
            Decimal(0),
        )
    except InvalidOperation:
        return "—"
    return money({"amount": value, "currency": paid.get("currency")}, marketplace_id)


def amount(value: Any, marketplace_id: str | None = None) -> str:
    """A value from a case's details or an option's money: money as `money()`, a list or mapping
    compactly, yes/no in words, anything else as plain text."""
    if isinstance(value, dict) and "amount" in value:
        return money(value, marketplace_id)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {amount(v, marketplace_id)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(amount(v, marketplace_id) for v in value)
    if isinstance(value, bool):
        return t("value.yes") if value else t("value.no")
    if value is None or value == "":
        return "—"
    return str(value)


def option_amount(value: Any, currency: str | None, marketplace_id: str | None = None) -> str:
    """One figure of an option's money (a bare amount beside the option's `currency`) in the
    marketplace's format; anything that is not an amount (yes/no, notes) as `amount()`."""
    if currency and isinstance(value, str | int | float | Decimal) and not isinstance(value, bool):
        try:
            Decimal(str(value))
        except InvalidOperation:
            return amount(value, marketplace_id)
        return money_of(value, currency, marketplace_id)
    return amount(value, marketplace_id)


def option_summary(option: dict[str, Any], marketplace_id: str | None = None) -> str:
    """An option's money in one line, each figure named in the operator's language (`Refund
    to the buyer: ￥1,500, Net: -￥1,350`); its currency and notes are left out."""
    currency = option.get("currency")
    return ", ".join(
        f"{label('money', k)}: {option_amount(v, currency, marketplace_id)}"
        for k, v in option.items()
        if k not in ("choice", "label", "currency", "notes", "note_phrases") and v is not None
    )


def marketplace_name(marketplace_id: str) -> str:
    m = MARKETPLACES.get(marketplace_id)
    return f"{m.name} ({m.country})" if m else marketplace_id


def seller_central_order_url(marketplace_id: str, order_id: str) -> str | None:
    m = MARKETPLACES.get(marketplace_id)
    return m.order_page(order_id) if m else None


def manage_returns_url(marketplace_id: str, order_id: str) -> str | None:
    m = MARKETPLACES.get(marketplace_id)
    return m.manage_returns_page(order_id) if m else None


def flow_run_url(prefect_ui: str | None, flow_run_id: str | None) -> str | None:
    if not prefect_ui or not flow_run_id:
        return None
    return f"{prefect_ui}/runs/flow-run/{flow_run_id}"
