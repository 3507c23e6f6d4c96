"""The company's time zone: the one place that decides which day an instant falls on.

Periods (this week, this month), the period dimension's buckets and the
leaderboard's daily rollups all ask ``company_zone()``. The zone is the company
setting (Admin > Settings, ``engine.storage.settings.company_time_zone``): the
same one the screens show times in. Report entry points call
``sync_company_zone(conn)`` first, which reads the setting on their own
connection and makes it the process's answer, so a change made by another
process is seen at the next report. Rollups are keyed by day in this zone;
``engine.reports.freshness`` rebuilds them when it changes.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from engine.storage.settings import company_time_zone, server_time_zone

_lock = threading.Lock()
_current: list[str] = []   # the last zone name read from the setting (none yet: the server's)


@lru_cache(maxsize=32)
def zone_named(name: str) -> dt.tzinfo:
    """The zone of an IANA name (UTC for a name this Python does not know)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def company_zone() -> dt.tzinfo:
    """The company's time zone as last read by ``sync_company_zone`` (before any read:
    the server's zone, which is also the setting's default)."""
    with _lock:
        name = _current[0] if _current else server_time_zone()
    return zone_named(name)


def sync_company_zone(conn: Connection) -> dt.tzinfo:
    """Read the company zone setting on ``conn`` and make it ``company_zone()``'s answer."""
    return use_company_zone(company_time_zone(conn))


def use_company_zone(name: str) -> dt.tzinfo:
    """Make ``name`` (just read from the setting) ``company_zone()``'s answer."""
    with _lock:
        _current[:] = [name]
    return zone_named(name)


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
