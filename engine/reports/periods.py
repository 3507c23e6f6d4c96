"""Time windows (this month, last 30 days...) and period buckets, in the company's zone.

A window is a half-open range of company-local days ``[first, end)``; the
compiler turns it into bound values for a date column (the days) or a
date-time column (the instants those days begin). Buckets split a window by
day, week (Monday first), month, quarter or year.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from engine.errors import QueryError
from engine.messages import M
from engine.metadata.model import LocalText

PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month",
           "this_quarter", "last_quarter", "this_year", "last_year", "last_7_days",
           "last_30_days", "last_90_days", "last_12_months", "all_time")
GRAINS = ("day", "week", "month", "quarter", "year")
#: A grain named in a message, in each language the UI speaks.
GRAIN_WORDS = {"day": LocalText.of({"en": "day", "zh-CN": "天"}),
               "week": LocalText.of({"en": "week", "zh-CN": "周"}),
               "month": LocalText.of({"en": "month", "zh-CN": "月"}),
               "quarter": LocalText.of({"en": "quarter", "zh-CN": "季度"}),
               "year": LocalText.of({"en": "year", "zh-CN": "年"})}
MAX_BUCKETS = 400
MAX_CUSTOM_DAYS = 3660


@dataclass(frozen=True)
class Window:
    """Company-local days ``[first, end)``; both None for all time."""

    name: str
    first: dt.date | None
    end: dt.date | None

    @property
    def bounded(self) -> bool:
        return self.first is not None and self.end is not None


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def window(name: str, *, today: dt.date) -> Window:
    """The window called ``name`` as seen on ``today`` (company-local)."""
    d = dt.timedelta
    week = today - d(days=today.weekday())
    month = _month_start(today)
    quarter = _quarter_start(today)
    spans: dict[str, tuple[dt.date | None, dt.date | None]] = {
        "today": (today, today + d(days=1)),
        "yesterday": (today - d(days=1), today),
        "this_week": (week, week + d(days=7)),
        "last_week": (week - d(days=7), week),
        "this_month": (month, _month_start(today, -1)),
        "last_month": (_month_start(today, 1), month),
        "this_quarter": (quarter, _month_start(quarter, -3)),
        "last_quarter": (_month_start(quarter, 3), quarter),
        "this_year": (dt.date(today.year, 1, 1), dt.date(today.year + 1, 1, 1)),
        "last_year": (dt.date(today.year - 1, 1, 1), dt.date(today.year, 1, 1)),
        "last_7_days": (today - d(days=6), today + d(days=1)),
        "last_30_days": (today - d(days=29), today + d(days=1)),
        "last_90_days": (today - d(days=89), today + d(days=1)),
        "last_12_months": (_month_start(today, 11), _month_start(today, -1)),
        "all_time": (None, None),
    }
    if name not in spans:
        raise QueryError("report", "period", M("unknown period %(name)s (one of %(value)s)",
                                               name=repr(name), value=', '.join(PERIODS)))
    first, end = spans[name]
    return Window(name, first, end)


def custom_window(first: dt.date, last: dt.date) -> Window:
    """The days ``first`` to ``last``, both included (a custom period)."""
    if last < first:
        raise QueryError("report", "period", M("the last day is before the first"))
    if (last - first).days > MAX_CUSTOM_DAYS:
        raise QueryError("report", "period", M("at most %(max_custom_days)s days",
                                               max_custom_days=MAX_CUSTOM_DAYS))
    return Window("custom", first, last + dt.timedelta(days=1))


def bucket_start(day: dt.date, grain: str) -> dt.date:
    """The first day of the bucket holding ``day``."""
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return _month_start(day)
    if grain == "quarter":
        return _quarter_start(day)
    return dt.date(day.year, 1, 1)


def next_bucket(start: dt.date, grain: str) -> dt.date:
    if grain == "day":
        return start + dt.timedelta(days=1)
    if grain == "week":
        return start + dt.timedelta(days=7)
    if grain == "month":
        return _month_start(start, -1)
    if grain == "quarter":
        return _month_start(start, -3)
    return dt.date(start.year + 1, 1, 1)


def buckets(first: dt.date, end: dt.date, grain: str) -> list[tuple[dt.date, dt.date]]:
    """The buckets ``[start, next)`` covering the days ``[first, end)``, clipped to it."""
    out: list[tuple[dt.date, dt.date]] = []
    start = bucket_start(first, grain)
    while start < end:
        following = next_bucket(start, grain)
        out.append((max(start, first), min(following, end)))
        if len(out) > MAX_BUCKETS:
            raise QueryError("report", "period", M("more than %(max_buckets)s periods of one %(grain)s; "
                                                   "pick a shorter period or a coarser grain",
                                                   max_buckets=MAX_BUCKETS,
                                                   grain=GRAIN_WORDS.get(grain, grain)))
        start = following
    return out


def bucket_label(start: dt.date, grain: str) -> str:
    """A short, locale-neutral label: 2026-11-30, 2026-W48, 2026-11, 2026-Q4, 2026."""
    if grain == "day":
        return start.isoformat()
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain == "month":
        return f"{start.year}-{start.month:02d}"
    if grain == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)
