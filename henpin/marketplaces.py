"""The Amazon marketplaces a cross-border seller sells in, and what Henpin needs to know of each.

Ids, countries and regions: Amazon's "Marketplace IDs" table and "SP-API Endpoints" page
(developer-docs.amazon.com/sp-api/docs/marketplace-ids, .../sp-api-endpoints). Each region has its
own SP-API endpoint and its own seller authorization (refresh token, merchant token).
Time zones: the storefront's local time, in which Henpin counts Amazon's business days (for
example the two business days to refund a return).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    """One Amazon storefront: its id, currency, language and where its seller pages live."""

    marketplace_id: str
    country: str
    name: str
    currency: str
    language: str
    region: str  # SP-API region: NA, EU or FE
    seller_central: str  # host of Seller Central for this storefront
    time_zone: str  # IANA zone the storefront's business days are counted in

    def order_page(self, order_id: str) -> str:
        """The order's page in Seller Central (Manage Orders → order details)."""
        return f"https://{self.seller_central}/orders-v3/order/{order_id}"

    def manage_returns_page(self, order_id: str) -> str:
        """Seller Central's Manage Returns page filtered to this order."""
        return f"https://{self.seller_central}/returns/list?searchType=orderId&keywordSearch={order_id}"

    # Buyer-Seller Messages: where the seller reads and answers buyers' messages without their
    # e-mail address (Seller Central help 200389080, G200383320: search by order id; reply in
    # the buyer's thread). The paths are Seller Central's own pages, as sellers link them.
    def buyer_messages_page(self) -> str:
        """Seller Central's Buyer-Seller Messages (search it by order id)."""
        return f"https://{self.seller_central}/messaging/inbox"

    def contact_buyer_page(self, order_id: str) -> str:
        """Seller Central's Contact Buyer form for this order."""
        return (
            f"https://{self.seller_central}/messaging/contact?orderID={order_id}"
            f"&marketplaceID={self.marketplace_id}"
        )


MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace(
            "ATVPDKIKX0DER",
            "US",
            "Amazon.com",
            "USD",
            "en",
            "NA",
            "sellercentral.amazon.com",
            "America/Los_Angeles",
        ),
        Marketplace(
            "A2EUQ1WTGCTBG2",
            "CA",
            "Amazon.ca",
            "CAD",
            "en",
            "NA",
            "sellercentral.amazon.ca",
            "America/Toronto",
        ),
        Marketplace(
            "A1AM78C64UM0Y8",
            "MX",
            "Amazon.com.mx",
            "MXN",
            "es",
            "NA",
            "sellercentral.amazon.com.mx",
            "America/Mexico_City",
        ),
        Marketplace(
            "A2Q3Y263D00KWC",
            "BR",
            "Amazon.com.br",
            "BRL",
            "pt",
            "NA",
            "sellercentral.amazon.com.br",
            "America/Sao_Paulo",
        ),
        Marketplace(
            "A28R8C7NBKEWEA",
            "IE",
            "Amazon.ie",
            "EUR",
            "en",
            "EU",
            "sellercentral.amazon.ie",
            "Europe/Dublin",
        ),
        Marketplace(
            "A1F83G8C2ARO7P",
            "UK",
            "Amazon.co.uk",
            "GBP",
            "en",
            "EU",
            "sellercentral.amazon.co.uk",
            "Europe/London",
        ),
        Marketplace(
            "A1PA6795UKMFR9",
            "DE",
            "Amazon.de",
            "EUR",
            "de",
            "EU",
            "sellercentral.amazon.de",
            "Europe/Berlin",
        ),
        Marketplace(
            "A13V1IB3VIYZZH",
            "FR",
            "Amazon.fr",
            "EUR",
            "fr",
            "EU",
            "sellercentral.amazon.fr",
            "Europe/Paris",
        ),
        Marketplace(
            "APJ6JRA9NG5V4",
            "IT",
            "Amazon.it",
            "EUR",
            "it",
            "EU",
            "sellercentral.amazon.it",
            "Europe/Rome",
        ),
        Marketplace(
            "A1RKKUPIHCS9HS",
            "ES",
            "Amazon.es",
            "EUR",
            "es",
            "EU",
            "sellercentral.amazon.es",
            "Europe/Madrid",
        ),
        Marketplace(
            "A1805IZSGTT6HS",
            "NL",
            "Amazon.nl",
            "EUR",
            "nl",
            "EU",
            "sellercentral.amazon.nl",
            "Europe/Amsterdam",
        ),
        Marketplace(
            "AMEN7PMS3EDWL",
            "BE",
            "Amazon.com.be",
            "EUR",
            "fr",
            "EU",
            "sellercentral.amazon.com.be",
            "Europe/Brussels",
        ),
        Marketplace(
            "A2NODRKZP88ZB9",
            "SE",
            "Amazon.se",
            "SEK",
            "sv",
            "EU",
            "sellercentral.amazon.se",
            "Europe/Stockholm",
        ),
        Marketplace(
            "A1C3SOZRARQ6R3",
            "PL",
            "Amazon.pl",
            "PLN",
            "pl",
            "EU",
            "sellercentral.amazon.pl",
            "Europe/Warsaw",
        ),
        Marketplace(
            "A33AVAJ2PDY3EV",
            "TR",
            "Amazon.com.tr",
            "TRY",
            "tr",
            "EU",
            "sellercentral.amazon.com.tr",
            "Europe/Istanbul",
        ),
        Marketplace(
            "AE08WJ6YKNBMC",
            "ZA",
            "Amazon.co.za",
            "ZAR",
            "en",
            "EU",
            "sellercentral.amazon.co.za",
            "Africa/Johannesburg",
        ),
        Marketplace(
            "A2VIGQ35RCS4UG",
            "AE",
            "Amazon.ae",
            "AED",
            "en",
            "EU",
            "sellercentral.amazon.ae",
            "Asia/Dubai",
        ),
        Marketplace(
            "A17E79C6D8DWNP",
            "SA",
            "Amazon.sa",
            "SAR",
            "ar",
            "EU",
            "sellercentral.amazon.sa",
            "Asia/Riyadh",
        ),
        Marketplace(
            "ARBP9OOSHTCHU",
            "EG",
            "Amazon.eg",
            "EGP",
            "ar",
            "EU",
            "sellercentral.amazon.eg",
            "Africa/Cairo",
        ),
        Marketplace(
            "A21TJRUUN4KGV",
            "IN",
            "Amazon.in",
            "INR",
            "en",
            "EU",
            "sellercentral.amazon.in",
            "Asia/Kolkata",
        ),
        Marketplace(
            "A1VC38T7YXB528",
            "JP",
            "Amazon.co.jp",
            "JPY",
            "ja",
            "FE",
            "sellercentral.amazon.co.jp",
            "Asia/Tokyo",
        ),
        Marketplace(
            "A39IBJ37TRP1C6",
            "AU",
            "Amazon.com.au",
            "AUD",
            "en",
            "FE",
            "sellercentral.amazon.com.au",
            "Australia/Sydney",
        ),
        Marketplace(
            "A19VAU5U5O7RUS",
            "SG",
            "Amazon.sg",
            "SGD",
            "en",
            "FE",
            "sellercentral.amazon.sg",
            "Asia/Singapore",
        ),
    )
}


def marketplace(marketplace_id: str) -> Marketplace:
    """Look a marketplace up by id; an unknown id is a configuration error worth naming."""
    try:
        return MARKETPLACES[marketplace_id]
    except KeyError:
        known = ", ".join(f"{m.country}={m.marketplace_id}" for m in MARKETPLACES.values())
        raise ValueError(f"unknown marketplace id {marketplace_id!r}; known: {known}") from None
