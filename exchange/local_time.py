"""The departments' time zone, Asia/Shanghai: where their times without a zone are, and what today is."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LOCAL = ZoneInfo("Asia/Shanghai")


def today() -> dt.date:
    """Today in the departments' time zone: the default reference date, and the latest birth date."""
    return dt.datetime.now(LOCAL).date()
