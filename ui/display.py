"""How values read on screen: time left before a deadline, money, timestamps, outside links.

Presentation only: nothing here decides anything about a case.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from henpin.marketplaces import MARKETPLACES
from ui.i18n import t

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


def at(when: datetime | None) -> str:
    """A timestamp as operators read it everywhere in the inbox (UTC, to the minute)."""
    if when is None:
        return "—"
    return t("time.utc", at=f"{when.astimezone(UTC):%Y-%m-%d %H:%M}")


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


def money(value: Any) -> str:
    """`{amount, currency}` from an order snapshot as `1,234.50 USD`; `—` when missing."""
    if not isinstance(value, dict) or value.get("amount") is None:
        return "—"
    try:
        amount = f"{Decimal(str(value['amount'])):,}"
    except InvalidOperation:
        amount = str(value["amount"])
    return f"{amount} {value.get('currency') or ''}".strip()


def paid_part(item: Any, *parts: str) -> str:
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
    return money({"amount": value, "currency": paid.get("currency")})


def amount(value: Any) -> str:
    """A value from a case's details or an option's money: money as `money()`, a list or mapping
    compactly, anything else as plain text."""
    if isinstance(value, dict) and "amount" in value:
        return money(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {amount(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(amount(v) for v in value)
    if value is None or value == "":
        return "—"
    return str(value)


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
