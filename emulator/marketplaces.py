"""Amazon's marketplaces, one table for the whole emulator (the emulator does not import Henpin).

Ids, countries and regions: Amazon's "Marketplace IDs" table and "SP-API Endpoints" page
(developer-docs.amazon.com/sp-api/docs/marketplace-ids, .../sp-api-endpoints), all 23
marketplaces. Currency decimals: the currency's minor unit as Amazon charges it (yen have none;
every other marketplace currency has two). Time zone: the storefront's local time, in which the
emulator dates the returns report's days and counts Amazon's business days. Names: the
storefronts' own (``MarketplaceName`` in financial events). tests/test_emulator_marketplaces.py
checks it agrees with henpin/marketplaces.py field by field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    """One Amazon storefront, as the emulator needs it."""

    marketplace_id: str
    country: str
    region: str  # SP-API region: NA, EU or FE
    currency: str
    decimals: int  # the currency's minor unit: 0 for JPY, else 2
    time_zone: str  # IANA zone of the storefront's calendar
    name: str


MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace("ATVPDKIKX0DER", "US", "NA", "USD", 2, "America/Los_Angeles", "Amazon.com"),
        Marketplace("A2EUQ1WTGCTBG2", "CA", "NA", "CAD", 2, "America/Toronto", "Amazon.ca"),
        Marketplace("A1AM78C64UM0Y8", "MX", "NA", "MXN", 2, "America/Mexico_City", "Amazon.com.mx"),
        Marketplace("A2Q3Y263D00KWC", "BR", "NA", "BRL", 2, "America/Sao_Paulo", "Amazon.com.br"),
        Marketplace("A28R8C7NBKEWEA", "IE", "EU", "EUR", 2, "Europe/Dublin", "Amazon.ie"),
        Marketplace("A1F83G8C2ARO7P", "UK", "EU", "GBP", 2, "Europe/London", "Amazon.co.uk"),
        Marketplace("A1PA6795UKMFR9", "DE", "EU", "EUR", 2, "Europe/Berlin", "Amazon.de"),
        Marketplace("A13V1IB3VIYZZH", "FR", "EU", "EUR", 2, "Europe/Paris", "Amazon.fr"),
        Marketplace("APJ6JRA9NG5V4", "IT", "EU", "EUR", 2, "Europe/Rome", "Amazon.it"),
        Marketplace("A1RKKUPIHCS9HS", "ES", "EU", "EUR", 2, "Europe/Madrid", "Amazon.es"),
        Marketplace("A1805IZSGTT6HS", "NL", "EU", "EUR", 2, "Europe/Amsterdam", "Amazon.nl"),
        Marketplace("AMEN7PMS3EDWL", "BE", "EU", "EUR", 2, "Europe/Brussels", "Amazon.com.be"),
        Marketplace("A2NODRKZP88ZB9", "SE", "EU", "SEK", 2, "Europe/Stockholm", "Amazon.se"),
        Marketplace("A1C3SOZRARQ6R3", "PL", "EU", "PLN", 2, "Europe/Warsaw", "Amazon.pl"),
        Marketplace("A33AVAJ2PDY3EV", "TR", "EU", "TRY", 2, "Europe/Istanbul", "Amazon.com.tr"),
        Marketplace("AE08WJ6YKNBMC", "ZA", "EU", "ZAR", 2, "Africa/Johannesburg", "Amazon.co.za"),
        Marketplace("A2VIGQ35RCS4UG", "AE", "EU", "AED", 2, "Asia/Dubai", "Amazon.ae"),
        Marketplace("A17E79C6D8DWNP", "SA", "EU", "SAR", 2, "Asia/Riyadh", "Amazon.sa"),
        Marketplace("ARBP9OOSHTCHU", "EG", "EU", "EGP", 2, "Africa/Cairo", "Amazon.eg"),
        Marketplace("A21TJRUUN4KGV", "IN", "EU", "INR", 2, "Asia/Kolkata", "Amazon.in"),
        Marketplace("A1VC38T7YXB528", "JP", "FE", "JPY", 0, "Asia/Tokyo", "Amazon.co.jp"),
        Marketplace("A39IBJ37TRP1C6", "AU", "FE", "AUD", 2, "Australia/Sydney", "Amazon.com.au"),
        Marketplace("A19VAU5U5O7RUS", "SG", "FE", "SGD", 2, "Asia/Singapore", "Amazon.sg"),
    )
}
#: Marketplace id → SP-API region.
REGION_OF: dict[str, str] = {m.marketplace_id: m.region for m in MARKETPLACES.values()}
#: Marketplace id → IANA time zone of its calendar.
TIME_ZONE_OF: dict[str, str] = {m.marketplace_id: m.time_zone for m in MARKETPLACES.values()}
#: Marketplace id → storefront name.
NAME_OF: dict[str, str] = {m.marketplace_id: m.name for m in MARKETPLACES.values()}
#: Currency → decimals, for the marketplaces' currencies.
CURRENCY_DECIMALS: dict[str, int] = {m.currency: m.decimals for m in MARKETPLACES.values()}


def decimals_of(currency: str) -> int:
    """The currency's minor unit: 0 decimals for JPY, 2 for the others (and for a currency no
    marketplace sells in)."""
    return CURRENCY_DECIMALS.get(currency, 2)
