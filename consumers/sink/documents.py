"""Decoded Avro values as JSON text for jsonb columns: profiles and a title's co-owners."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any


def _plain(value: Any) -> str:
    # Decimals become strings so that no client reads money or a share through a binary float.
    if isinstance(value, Decimal):
        return str(value)
    # datetime is a date too; both give ISO 8601, instants with their UTC offset.
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form in the sink")


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_plain)


def to_json(value: Any) -> str:
    """Compact JSON of a decoded Avro value: decimals as strings, dates and instants in ISO 8601."""
    return _encoder.encode(value)
