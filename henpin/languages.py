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
