"""The Amazon marketplaces a cross-border seller sells in, and what Henpin needs to know of each."""

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

    def order_page(self, order_id: str) -> str:
        """The order's page in Seller Central (Manage Orders → order details)."""
        return f"https://{self.seller_central}/orders-v3/order/{order_id}"

    def manage_returns_page(self, order_id: str) -> str:
        """Seller Central's Manage Returns page filtered to this order."""
        return f"https://{self.seller_central}/returns/list?searchType=orderId&keywordSearch={order_id}"


MARKETPLACES: dict[str, Marketplace] = {
    m.marketplace_id: m
    for m in (
        Marketplace(
            "ATVPDKIKX0DER", "US", "Amazon.com", "USD", "en", "NA", "sellercentral.amazon.com"
        ),
        Marketplace(
            "A2EUQ1WTGCTBG2", "CA", "Amazon.ca", "CAD", "en", "NA", "sellercentral.amazon.ca"
        ),
        Marketplace(
            "A1AM78C64UM0Y8",
            "MX",
            "Amazon.com.mx",
            "MXN",
            "es",
            "NA",
            "sellercentral.amazon.com.mx",
        ),
        Marketplace(
            "A1F83G8C2ARO7P", "UK", "Amazon.co.uk", "GBP", "en", "EU", "sellercentral.amazon.co.uk"
        ),
        Marketplace(
            "A1PA6795UKMFR9", "DE", "Amazon.de", "EUR", "de", "EU", "sellercentral.amazon.de"
        ),
        Marketplace(
            "A13V1IB3VIYZZH", "FR", "Amazon.fr", "EUR", "fr", "EU", "sellercentral.amazon.fr"
        ),
        Marketplace(
            "APJ6JRA9NG5V4", "IT", "Amazon.it", "EUR", "it", "EU", "sellercentral.amazon.it"
        ),
        Marketplace(
            "A1RKKUPIHCS9HS", "ES", "Amazon.es", "EUR", "es", "EU", "sellercentral.amazon.es"
        ),
        Marketplace(
            "A1VC38T7YXB528", "JP", "Amazon.co.jp", "JPY", "ja", "FE", "sellercentral.amazon.co.jp"
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
