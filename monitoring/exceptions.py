"""The monitoring edge's errors."""

from __future__ import annotations

from exchange.exceptions import ExchangeError


class MetricsServerError(ExchangeError):
    """Raised when a process cannot serve /metrics on its port (taken, or not allowed)."""
