"""The company-local day of a stored instant, as SQL (for set-based rollup rebuilds).

Rebuilding the rollups row by row in Python took minutes at a million rows; the
database can group by day itself if it can compute the local day. PostgreSQL
converts with ``timezone(zone, instant)``. SQLite has no zone database, so the
instants' range is split at the zone's offset changes (daylight saving) and each
segment is shifted by its fixed offset: ``CASE WHEN at < t1 THEN date(at, '+x
seconds') ...``. The offsets and boundaries come from Python's own zone data, the
same that ``local_day`` uses, so both agree to the second.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Date, case, cast, func, literal, select

from engine.reports.zone import zone_key

_DAY = dt.timedelta(days=1)


def _offset(zone: dt.tzinfo, at: dt.datetime) -> dt.timedelta:
    return at.astimezone(zone).utcoffset() or dt.timedelta(0)


def _transition(zone: dt.tzinfo, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    """The first instant in (low, high] whose offset differs from low's (bisection)."""
    before = _offset(zone, low)
    while high - low > dt.timedelta(seconds=1):
        mid = low + (high - low) / 2
        if _offset(zone, mid) == before:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


def offset_segments(zone: dt.tzinfo, first: dt.datetime,
                    last: dt.datetime) -> list[tuple[dt.datetime | None, dt.timedelta]]:
    """[(segment end or None for the last, offset)] covering [first, last] in UTC."""
    segments: list[tuple[dt.datetime | None, dt.timedelta]] = []
    at, current = first, _offset(zone, first)
    while at < last:
        step = min(at + _DAY, last)
        if _offset(zone, step) != current:
            change = _transition(zone, at, step)
            segments.append((change, current))
            at, current = change, _offset(zone, change)
        else:
            at = step
    segments.append((None, current))
    return segments


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, dt.datetime)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def local_day_sql(conn: Connection, column: Any, zone: dt.tzinfo, *,
                  where: list[Any] | None = None) -> Any:
    """An SQL expression for the company-local day of ``column`` (a UTC instant).

    On SQLite it reads the range of ``column`` (under ``where``) to find the offset
    changes inside it; a range with one offset is a single ``date(at, '+N seconds')``.
    """
    if conn.dialect.name == "postgresql":
        return cast(func.timezone(zone_key(zone), column), Date)
    lo, hi = conn.execute(select(func.min(column), func.max(column))
                          .where(*(where or []))).one()
    first, last = _aware(lo), _aware(hi)
    if first is None or last is None:
        return func.date(column)

    def shifted(offset: dt.timedelta) -> Any:
        return func.date(column, literal(f"{int(offset.total_seconds()):+d} seconds"))

    segments = offset_segments(zone, first, last)
    if len(segments) == 1:
        return shifted(segments[0][1])
    whens = [(column < end.replace(tzinfo=None), shifted(off))
             for end, off in segments if end is not None]
    return case(*whens, else_=shifted(segments[-1][1]))
