"""The API's errors: each maps to one HTTP status and carries a message the caller can act on."""

from __future__ import annotations

from exchange.exceptions import ExchangeError, StorageError


class ApiError(ExchangeError):
    """Root of the errors a request can end with; `status` is the HTTP status it maps to."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAuthenticatedError(ApiError):
    """Raised when a request carries no API key, or one no caller in callers.json has."""

    status = 401
    code = "not_authenticated"


class RefusedError(ApiError):
    """Raised when policy, consent or delegation does not allow the request; `reason` is its code."""

    status = 403
    code = "forbidden"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotFoundError(ApiError):
    """Raised when the proof, record or decision asked for does not exist."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """Raised when an application id is reused for a different application."""

    status = 409
    code = "conflict"


class InvalidRequestError(ApiError):
    """Raised when a request is well-formed JSON but not meaningful: a bad citizen ID, an inverted period."""

    status = 422
    code = "invalid_request"

    def __init__(self, message: str, location: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        # Where in the request, as FastAPI's validation errors say it: ("body", "subject").
        self.location = location


class StorageUnavailableError(StorageError):
    """Raised when PostgreSQL cannot be reached or the pool has no connection in time (HTTP 503)."""
