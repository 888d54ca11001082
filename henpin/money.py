"""Exact amounts: each currency pays in its minor unit (yen have none, the others cents).

Every edge that takes an amount from a person or a file (inbox forms, `henpin decide --field`,
Prefect UI answers, policies.yaml) refuses one with more decimals than its currency allows,
with `excess_decimals`' message: a refund of 12.345 USD is a mistake to show, not to round
silently. The feed writer asserts the same before anything goes to Amazon.
"""

from __future__ import annotations

from decimal import Decimal

#: Currencies paid in whole units (ISO 4217 minor unit 0) among Henpin's marketplaces.
WHOLE_UNIT_CURRENCIES = frozenset({"JPY"})


def decimals_of(currency: str) -> int:
    """How many decimals an amount of `currency` has: 0 for yen, 2 for the others."""
    return 0 if currency in WHOLE_UNIT_CURRENCIES else 2


def excess_decimals(amount: Decimal, currency: str) -> str | None:
    """Why `amount` is not an amount of `currency` (too many decimals); None when it is.

    Trailing zeros do not count: 12.50 USD and 1500.0 JPY are exact."""
    allowed = decimals_of(currency)
    if not amount.is_finite():
        return f"{amount} {currency} is not an amount"
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > allowed:
        return f"{amount} {currency} has more decimals than {currency} allows ({allowed})"
    return None


def to_minor_units(amount: Decimal | str | int, currency: str) -> int:
    """`amount` in the currency's minor unit, exactly (12.50 USD → 1250, 1500 JPY → 1500);
    ValueError when it has more decimals than the currency allows (never rounded)."""
    scaled = Decimal(str(amount)).scaleb(decimals_of(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than {currency} allows")
    return int(scaled)


def from_minor_units(minor: int, currency: str) -> Decimal:
    """An amount counted in the currency's minor unit as a Decimal, exactly: 150050 USD cents
    is 1500.50, 1500 yen is 1500."""
    return Decimal(minor).scaleb(-decimals_of(currency))
