"""Time in UTC, and datetimes read back from SQLite made comparable again.

SQLite stores ``DateTime(timezone=True)`` without the offset, so values come
back naive; every value the engine writes is UTC, so naive means UTC.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` as an aware UTC datetime (``None`` stays ``None``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
