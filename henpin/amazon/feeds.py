"""Feeds API 2021-06-30: a feed's processing status."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sp_api.api.feeds.feeds_2021_06_30 import FeedsV20210630
from sp_api.base import fill_query_params, sp_endpoint

from henpin.amazon.errors import AmazonPayloadError
from henpin.amazon.orders import _describe
from henpin.amazon.transport import _host_header

FEED_CONTENT_TYPE = "text/xml; charset=UTF-8"


class FeedProcessingStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    FATAL = "FATAL"
    CANCELLED = "CANCELLED"


class FeedStatus(BaseModel):
    """Where a feed stands at Amazon (getFeed / getFeeds)."""

    feed_id: str
    feed_type: str
    marketplace_ids: list[str] = Field(default_factory=list)
    processing_status: FeedProcessingStatus
    created_time: AwareDatetime
    processing_start_time: AwareDatetime | None = None
    processing_end_time: AwareDatetime | None = None
    result_feed_document_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.processing_status in (
            FeedProcessingStatus.DONE,
            FeedProcessingStatus.FATAL,
            FeedProcessingStatus.CANCELLED,
        )


def feed_status_from_amazon(payload: dict[str, Any]) -> FeedStatus:
    """Amazon's Feed (Feeds API 2021-06-30) as `FeedStatus`."""
    try:
        return FeedStatus(
            feed_id=payload["feedId"],
            feed_type=payload["feedType"],
            marketplace_ids=payload.get("marketplaceIds") or [],
            processing_status=payload["processingStatus"],
            created_time=payload["createdTime"],
            processing_start_time=payload.get("processingStartTime"),
            processing_end_time=payload.get("processingEndTime"),
            result_feed_document_id=payload.get("resultFeedDocumentId"),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        detail = _describe(exc) if isinstance(exc, ValidationError) else f"missing {exc}"
        raise AmazonPayloadError(
            f"Amazon's feed answer does not have the expected shape: {detail}", payload=payload
        ) from exc


class _Feeds(FeedsV20210630):
    @property
    def headers(self) -> dict[str, str]:
        return _host_header(self)

    @sp_endpoint("/feeds/2021-06-30/documents/{}", method="GET")
    def get_feed_document_info(self, feed_document_id: str, **kwargs: Any) -> Any:
        """getFeedDocument without the library's download, which hides HTTP errors."""
        return self._request(
            fill_query_params(kwargs.pop("path"), feed_document_id),
            params=kwargs,
            add_marketplace=False,
        )
