"""Dates and local times of department records.

All department times are Asia/Shanghai wall-clock times with no zone written; they become UTC
instants through the zone database, not a fixed +08:00, because China observed daylight saving
time in 1986–1991 and records reach back that far.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar, cast

from connectors.mappings.fields import Field, invalid, shown
from exchange.local_time import LOCAL

SHANGHAI = LOCAL
T = TypeVar("T")


def _cached(shape: re.Pattern[str], parse: Callable[[str], T]) -> Callable[[str], T]:
    """A parser of text of exactly `shape`, raising `ValueError` otherwise; remembers what it parsed.

    Exports repeat their dates and times (birth dates, periods, batch update times), and parsing with
    a time-zone conversion is a large part of a record's cost. Failures are not remembered.
    """

    @lru_cache(maxsize=1 << 14)
    def parsed(value: str) -> T:
        if shape.fullmatch(value) is None:
            raise ValueError(value)
        return parse(value)

    return parsed


def _compact(value: str) -> dt.date:
    return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def utc_of_local(local: dt.datetime) -> dt.datetime:
    """The UTC instant of an Asia/Shanghai wall-clock time."""
    # Same as local.replace(tzinfo=SHANGHAI).astimezone(UTC); `replace` parses keywords and costs
    # microseconds, the constructor a fraction of that.
    utc = local - cast(dt.timedelta, SHANGHAI.utcoffset(local))  # never None for a ZoneInfo
    return dt.datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, dt.UTC
    )


_iso_date = _cached(re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"), dt.date.fromisoformat)
_compact_date = _cached(re.compile(r"[0-9]{8}"), _compact)
_month = _cached(re.compile(r"[0-9]{6}"), lambda value: _compact(value + "01"))
_local_time = _cached(
    re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"),
    lambda value: utc_of_local(dt.datetime.fromisoformat(value)),
)


def _parsed(
    fields: Mapping[str, Any], field: Field, parser: Callable[[str], T], reason: str, expected: str
) -> T:
    value = fields.get(field.name)
    if type(value) is str:
        try:
            return parser(value)
        except (ValueError, OverflowError):
            pass
    raise invalid(field, value, reason, expected)


def iso_date(fields: Mapping[str, Any], field: Field) -> dt.date:
    """A `YYYY-MM-DD` date."""
    return _parsed(fields, field, _iso_date, "bad_date", "a date YYYY-MM-DD")


def compact_date(fields: Mapping[str, Any], field: Field) -> dt.date:
    """A `YYYYMMDD` date."""
    return _parsed(fields, field, _compact_date, "bad_date", "a date YYYYMMDD")


def month(fields: Mapping[str, Any], field: Field) -> dt.date:
    """A `YYYYMM` month, as its first day."""
    return _parsed(fields, field, _month, "bad_month", "a month YYYYMM")


def local_time(fields: Mapping[str, Any], field: Field) -> dt.datetime:
    """A `YYYY-MM-DD HH:MM:SS` local time, as a UTC instant."""
    return _parsed(fields, field, _local_time, "bad_time", "a local time YYYY-MM-DD HH:MM:SS")


def local_timestamp(fields: Mapping[str, Any], field: Field) -> dt.datetime:
    """A PostgreSQL `timestamp` (naive, local) column, as a UTC instant."""
    value = fields.get(field.name)
    if value is None:
        raise field.rejected("missing_field", "is missing")
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        try:
            return utc_of_local(value)
        except OverflowError:
            pass
    raise field.rejected("bad_time", f"must be a local timestamp without time zone, got {shown(value)}")


def midnight_of(fields: Mapping[str, Any], field: Field, day: dt.date) -> dt.datetime:
    """The UTC instant of local midnight at the start of `day`, the date `field` holds."""
    try:
        return utc_midnight(day)
    except OverflowError:  # 0001-01-01: its local midnight is before the first instant Python has
        raise field.rejected("bad_date", f"is out of range, got {shown(fields.get(field.name))}") from None


@lru_cache(maxsize=4096)
def utc_midnight(day: dt.date) -> dt.datetime:
    """The UTC instant of local midnight at the start of `day` (cached: exports repeat their dates)."""
    return utc_of_local(dt.datetime(day.year, day.month, day.day))
