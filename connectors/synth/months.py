"""Months as integers (year × 12 + month − 1), so that "the last 12 months" is a plain range."""

from __future__ import annotations

import calendar
import datetime as dt
from functools import lru_cache


def month_of(day: dt.date) -> int:
    """The month index of a date."""
    return day.year * 12 + day.month - 1


def first_day(month: int) -> dt.date:
    """The first day of a month index."""
    year, zero_based = divmod(month, 12)
    return dt.date(year, zero_based + 1, 1)


def last_day(month: int) -> dt.date:
    """The last day of a month index."""
    year, zero_based = divmod(month, 12)
    return dt.date(year, zero_based + 1, calendar.monthrange(year, zero_based + 1)[1])


def yyyymm(month: int) -> str:
    """A month index as 人社's aae002, ``YYYYMM``."""
    year, zero_based = divmod(month, 12)
    return f"{year:04d}{zero_based + 1:02d}"


def month_of_yyyymm(text: str) -> int:
    """The month index of 人社's ``YYYYMM``."""
    return int(text[:4]) * 12 + int(text[4:6]) - 1


@lru_cache(maxsize=4096)
def period_texts(month: int) -> tuple[str, str]:
    """The first and the last day of a month index as ``YYYY-MM-DD`` (cached: vouchers repeat months)."""
    return iso_day(first_day(month)), iso_day(last_day(month))


def iso_day(day: dt.date) -> str:
    """``YYYY-MM-DD``."""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def stamp(day: dt.date, hour: int = 9, minute: int = 0, second: int = 0) -> str:
    """``YYYY-MM-DD HH:MM:SS`` local time, the departments' timestamp text."""
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d} {hour:02d}:{minute:02d}:{second:02d}"
