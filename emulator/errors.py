"""SP-API error answers: the ``{"errors": [...]}`` body (the models' ``ErrorList``) and its status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An SP-API operation refused the request; becomes an ``ErrorList`` answer."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The ErrorList body Amazon sends with this status."""
        return error_list(self.code, self.message, self.details)


def error_list(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    """One error in Amazon's ErrorList shape."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"errors": [error]}


def invalid_input(message: str, details: str | None = None) -> ApiError:
    """400: the request's parameters or body are missing or invalid."""
    return ApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> ApiError:
    """404: the resource named in the path does not exist."""
    return ApiError(404, "NotFound", message)


def unauthorized(message: str) -> ApiError:
    """403: no valid, unexpired LWA access token."""
    return ApiError(403, "Unauthorized", "Access to requested resource is denied.", message)


def quota_exceeded() -> ApiError:
    """429: the operation's usage plan (token bucket) is empty for this application."""
    return ApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
