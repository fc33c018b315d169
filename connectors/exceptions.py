"""The connectors' errors: a whole file that cannot be read, and one record that cannot be accepted."""

from __future__ import annotations

from connectors.records import Rejection
from exchange.exceptions import ExchangeError


class ConnectorError(ExchangeError):
    """Raised when a connector cannot go on with a source at all (as opposed to rejecting one record)."""


class SourceFileError(ConnectorError):
    """Raised when an export file cannot be opened or read."""


class HeaderError(ConnectorError):
    """Raised when a CSV export's header is missing, undecodable, or not exactly the expected columns."""


class ResumeError(ConnectorError):
    """Raised when a resume offset is not the start of a record of the file (the file was replaced or cut)."""


class RecordRejected(ConnectorError):
    """Raised by a mapping when a record breaks a rule of its department's format; it is dead-lettered."""

    def __init__(self, reason: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.message = message

    @property
    def rejection(self) -> Rejection:
        """The same facts as a value, for the dead-letter record."""
        return Rejection(self.reason, self.field, self.message)
