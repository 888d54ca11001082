"""Which language to write to a buyer in.

Amazon asks sellers to write to buyers in the buyer's language of preference, which the Messaging
API's GetAttributes gives as a locale ("de-DE", "ja-JP", "en-GB"). Without one Henpin uses the
marketplace's language. The texts themselves (policies.yaml) fall back to English for a language
they have no version of.
"""

from __future__ import annotations

from henpin.marketplaces import MARKETPLACES


def buyer_language(locale: str | None, marketplace_id: str) -> str:
    """The language code ("de", "ja", "en", ...) of the buyer's locale, else of the marketplace,
    else English."""
    code = (locale or "").replace("_", "-").split("-")[0].strip().lower()
    if code.isalpha() and 2 <= len(code) <= 3:
        return code
    m = MARKETPLACES.get(marketplace_id)
    return m.language if m else "en"


def marketplace_locale(marketplace_id: str | None, currency: str | None = None) -> str:
    """The locale ("ja_JP", "en_GB", "de_DE") money of a marketplace is written in: its
    language and country. Without a known marketplace, that of the first marketplace selling in
    `currency` (JPY: ja_JP), else en_US."""
    m = MARKETPLACES.get(marketplace_id or "")
    if m is None and currency:
        m = next((x for x in MARKETPLACES.values() if x.currency == currency), None)
    if m is None:
        return "en_US"
    country = "GB" if m.country == "UK" else m.country
    return f"{m.language}_{country}"


#: The time zone an operator reading the inbox in a language sees times in, unless the settings
#: name one (HENPIN_TIME_ZONE). Japanese operators work in Japan time.
TIME_ZONE_BY_LANGUAGE: dict[str, str] = {"ja": "Asia/Tokyo"}


def operator_time_zone(language: str, configured: str | None = None) -> str:
    """The IANA time zone the inbox shows an operator's times in."""
    return configured or TIME_ZONE_BY_LANGUAGE.get(language, "UTC")
