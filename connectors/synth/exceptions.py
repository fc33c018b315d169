"""Errors of the synthetic departments."""

from __future__ import annotations

from exchange.exceptions import ExchangeError


class SynthError(ExchangeError):
    """Raised when `generate` is given arguments it cannot honour (no people, a bad-row rate outside 0–1)."""


class ExportFormatError(SynthError):
    """Raised when the reference reader meets a file it cannot read at all (not a bad row: a bad file)."""
