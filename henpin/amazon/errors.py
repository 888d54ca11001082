"""What the adapter raises: Amazon's answers and failures, in Henpin's words."""

from __future__ import annotations

import math
from typing import Any


class AmazonError(Exception):
    """Something about a call to Amazon, said in words an operator can act on."""

    def __init__(
        self, message: str, *, operation: str, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.code = code


class AmazonThrottled(AmazonError):
    """Amazon's quota for this operation is used up for now; try again after `retry_after_s`."""

    def __init__(self, operation: str, retry_after_s: float, *, status: int | None = None) -> None:
        super().__init__(
            f"Amazon's quota for {operation} is used up; Henpin will try again in about "
            f"{math.ceil(retry_after_s)} s. Nothing needs doing.",
            operation=operation,
            status=status,
            code="QuotaExceeded",
        )
        self.retry_after_s = retry_after_s


class AmazonUnavailable(AmazonError):
    """Amazon did not answer usably, even after retries. Transient: try again later.

    `may_have_applied` is True when a request that changes something (createFeed) may have
    reached Amazon: do not resend it blindly, look at Amazon's side first.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        may_have_applied: bool = False,
    ) -> None:
        super().__init__(message, operation=operation, status=status)
        self.may_have_applied = may_have_applied


class AmazonRequestRejected(AmazonError):
    """Amazon refused the request itself (a 4xx other than 429). Repeating it will not help."""

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, operation=operation, status=status, code=code)
        self.errors = errors or []


class AmazonAuthError(AmazonRequestRejected):
    """Login with Amazon refused Henpin's credentials, or Amazon denied access."""


class AmazonPayloadError(AmazonError):
    """Amazon's answer does not have the shape Henpin expects; `payload` keeps it as received."""

    def __init__(self, message: str, *, payload: Any, operation: str = "parse") -> None:
        super().__init__(message, operation=operation)
        self.payload = payload
