"""The company's time zone: the one place that decides which day an instant falls on.

Periods (this week, this month), the period dimension's buckets and the
leaderboard's daily rollups all ask ``company_zone()``. There is no company
setting yet, so it reads ``TIDEPOOL_TIME_ZONE`` (an IANA name such as
``Asia/Shanghai``) and falls back to UTC; when a settings service lands, only
this function changes. Rollups are kept per day in this zone: changing it
needs ``tidepool reports rebuild``.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_VAR = "TIDEPOOL_TIME_ZONE"


@lru_cache(maxsize=8)
def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def company_zone() -> dt.tzinfo:
    """The company's time zone (UTC unless ``TIDEPOOL_TIME_ZONE`` names another)."""
    return _zone(os.environ.get(ENV_VAR, "UTC") or "UTC")


def zone_key(zone: dt.tzinfo) -> str:
    """The IANA name of a zone from ``company_zone`` (UTC for the fallback)."""
    return getattr(zone, "key", None) or "UTC"


def local_day(value: dt.datetime | dt.date, *, zone: dt.tzinfo | None = None) -> dt.date:
    """The company-local calendar day of an instant (a date is its own day)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(zone or company_zone()).date()
    return value


def day_start(day: dt.date, *, zone: dt.tzinfo | None = None) -> dt.datetime:
    """The instant (UTC) a company-local day begins."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=zone or company_zone())
    return local.astimezone(dt.UTC)
