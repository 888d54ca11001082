"""SP-API regions: each region at its own base URL, with its own logins and its own data.

Amazon serves SP-API from three regional endpoints (sellingpartnerapi-na/-eu/-fe.amazon.com,
developer-docs.amazon.com/sp-api/docs/sp-api-endpoints). The emulator serves them as path
prefixes of one server: ``{url}/na``, ``{url}/eu``, ``{url}/fe`` (python-amazon-sp-api joins its
endpoint and the operation's path as strings, so an endpoint with a path works). At a regional
base URL:

- an access token minted from another region's refresh token (or the legacy region-less one) is
  answered 403 ``Unauthorized`` "Access to requested resource is denied." (SP-API docs "Response
  format": developer-docs.amazon.com/sp-api/docs/response-format);
- a ``marketplaceIds`` value of another region is answered as Amazon does: 403 ``Unauthorized``,
  details "The marketplaces you provided are not valid for region." (Amazon's answer to
  searchOrders 2026-01-01 with JP at the EU endpoint, amzn/selling-partner-api-models#5126);
- orders, feeds and reports of other regions' marketplaces are not there (404 / not listed);
- a feed's ``Header/MerchantIdentifier`` must be the seller's merchant token in that region,
  else nothing is applied and the processing report says "The MerchantIdentifier provided in the
  XML payload is not valid for your credentials." (Seller Central help 23071), result code 5005
  ("Merchant ID mismatch", as listed by godatafeed.com/disapproval/amazon-5005-merchant-mismatch:
  a third-party list, Amazon's own code list does not show it). Like an unreadable document,
  the feed ends FATAL.

The unprefixed SP-API paths (the emulator's old base URL) still work, as legacy: a call there
acts in the region of its token; with the legacy region-less token it sees every region.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.errors import ApiError
from emulator.feed_xml import FeedRejected
from emulator.marketplaces import REGION_OF
from emulator.state import AccessTokenGrant

#: Base-URL path prefix of each region.
PREFIXES = {"/na": "NA", "/eu": "EU", "/fe": "FE"}
#: Amazon's marketplace ids by region ("Marketplace IDs" and "SP-API Endpoints" pages).
MARKETPLACE_REGIONS = REGION_OF  # all 23 marketplaces (emulator/marketplaces.py)
_BASE_REGION = "henpin.baseRegion"  # scope keys
_REGION = "henpin.region"
#: Paths that stay global (LWA is one endpoint for every region) or are the emulator's own.
_GLOBAL = ("/auth/", "/_emulator", "/_uploads/", "/_documents/")
WRONG_REGION_TOKEN = "The access token you provided is revoked, malformed or invalid."
WRONG_REGION_MARKETPLACE = "The marketplaces you provided are not valid for region."


class RegionBaseUrls:
    """ASGI middleware: ``/na/...`` is served by the same routes as ``/...``, in region NA.

    The prefix goes into ``root_path`` (routes match the path after it; the call log keeps
    the full path) and the region into the scope.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for prefix, region in PREFIXES.items():
                rest = path[len(prefix) :]
                if path.startswith(prefix + "/") and not rest.startswith(_GLOBAL):
                    scope = dict(scope)
                    scope["root_path"] = scope.get("root_path", "") + prefix
                    scope[_BASE_REGION] = region
                    break
        await self.app(scope, receive, send)


def base_region(request: Request) -> str | None:
    """The region of the base URL the call came to; None at the legacy unprefixed one."""
    region: str | None = request.scope.get(_BASE_REGION)
    return region


def call_region(request: Request) -> str | None:
    """The region the call acts in (set by `check_region`); None: every region (legacy)."""
    region: str | None = request.scope.get(_REGION)
    return region


def region_of(marketplace_id: str | None) -> str | None:
    """The SP-API region of a marketplace id (None for an id Amazon does not have)."""
    return MARKETPLACE_REGIONS.get(marketplace_id or "")


def visible(request: Request, marketplace_ids: Iterable[str | None]) -> bool:
    """Is data of these marketplaces there at this call's region?"""
    region = call_region(request)
    return region is None or all(region_of(m) == region for m in marketplace_ids)


def _body_marketplaces(body: bytes) -> list[str]:
    try:
        data: Any = json.loads(body or b"{}")
    except ValueError:
        return []
    values = data.get("marketplaceIds") if isinstance(data, dict) else None
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def check_region(
    request: Request, grant: AccessTokenGrant, marketplace_ids: Iterable[str], body: bytes
) -> None:
    """Refuse a token of another region, or a marketplace of another region, as Amazon does;
    then remember the region the call acts in."""
    base = base_region(request)
    if base is not None and grant.region != base:
        raise ApiError(
            403, "Unauthorized", "Access to requested resource is denied.", WRONG_REGION_TOKEN
        )
    region = base or grant.region
    asked = [*marketplace_ids, *_body_marketplaces(body)]
    if region is not None and any(region_of(m) not in (None, region) for m in asked):
        raise ApiError(
            403, "Unauthorized", "Access to requested resource is denied.", WRONG_REGION_MARKETPLACE
        )
    request.scope[_REGION] = region


#: See the module docstring for both sources.
MERCHANT_MISMATCH = "5005"
MERCHANT_MISMATCH_DESCRIPTION = (
    "The MerchantIdentifier provided in the XML payload is not valid for your credentials."
)


def check_merchant(document: str, merchant_token: str | None) -> None:
    """Refuse a feed document whose header names another seller than the region's account.

    A document that is not XML is left to the envelope check (its own error)."""
    try:
        root = ET.fromstring(document.encode("utf-8"))
    except ET.ParseError:
        return
    found = ""
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.rsplit("}", 1)[-1] == "MerchantIdentifier":
            found = (element.text or "").strip()
            break
    if merchant_token is None or found != merchant_token:
        raise FeedRejected(MERCHANT_MISMATCH, MERCHANT_MISMATCH_DESCRIPTION)
