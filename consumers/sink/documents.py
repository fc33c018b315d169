"""Decoded Avro values as JSON text for jsonb columns: profiles and a title's co-owners (orjson)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def _plain(value: Any) -> str:
    # Decimals become strings so that no client reads money or a share through a binary float.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form in the sink")


def to_json(value: Any) -> str:
    """Compact JSON of a decoded Avro value: decimals as strings, dates and instants in ISO 8601 (with
    their UTC offset), text as UTF-8. Raises TypeError for anything else (bytes, say)."""
    try:
        return orjson.dumps(value, default=_plain).decode()
    except orjson.JSONEncodeError as exc:  # say which value, as _plain did, not orjson's wrapper
        raise TypeError(str(exc.__cause__ or exc)) from exc
