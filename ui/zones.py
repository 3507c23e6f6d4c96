"""Time as the viewer reads and types it: their zone, their locale's formats.

Instants are stored in UTC; people live in a zone. Each request runs with the
viewer's zone (their own choice, else the company's; see
``engine/storage/settings.py``) in a context variable, set once by
``UIContext.endpoint`` before the handler runs, so every formatter and form
parser below uses the same zone without each screen passing it along.

``datetime-local`` inputs carry a wall-clock time without an offset; it is read
in the viewer's zone and sent to the engine with its offset, so a Shanghai rep
typing 09:00 stores 01:00 UTC, and one in New York gets the right offset on
either side of a DST change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.dates import get_timezone_gmt

from engine.metadata.model import Entity, FieldType
from engine.records.query import ListQuery
from ui.i18n import N_

_ZONE: ContextVar[dt.tzinfo] = ContextVar("tp_zone", default=dt.UTC)
#: What a datetime-local input shows and posts (minutes; seconds are not typed).
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
#: System columns holding instants (list columns and filters like date-time fields).
SYSTEM_INSTANTS = frozenset({"created_at", "updated_at", "deleted_at"})


def zone_named(name: str | None) -> dt.tzinfo:
    """The zone of an IANA name; UTC for None or a name this Python does not know."""
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def current_zone() -> dt.tzinfo:
    """The zone of the request being handled (UTC outside one)."""
    return _ZONE.get()


@contextmanager
def viewing_in(zone: dt.tzinfo) -> Iterator[dt.tzinfo]:
    """Run a block with ``zone`` as the viewer's zone (restored afterwards)."""
    token = _ZONE.set(zone)
    try:
        yield zone
    finally:
        _ZONE.reset(token)


def zone_name(zone: dt.tzinfo | None = None) -> str:
    """The IANA name of a zone (``Asia/Shanghai``), for labels next to times."""
    zone = zone or current_zone()
    return getattr(zone, "key", None) or str(zone)


def _babel_locale(locale: str) -> str:
    return locale.replace("-", "_")


def local(value: dt.datetime, zone: dt.tzinfo | None = None) -> dt.datetime:
    """An instant as the viewer's wall clock (naive values are UTC, as stored)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone or current_zone())


def format_instant(value: dt.datetime, locale: str, *, with_zone: bool = False) -> str:
    """An instant in the viewer's zone, in the locale's short date-time format
    (``2026/11/30 09:00`` in zh-CN, ``11/30/26, 9:00 AM`` in English)."""
    shown = local(value)
    text = _format_datetime(shown, "short", tzinfo=shown.tzinfo, locale=_babel_locale(locale))
    return f"{text} {zone_label(shown, locale)}" if with_zone else text


def zone_label(value: dt.datetime, locale: str) -> str:
    """``Asia/Shanghai (GMT+08:00)``: the zone a time is in, with its offset then."""
    gmt = get_timezone_gmt(value, locale=_babel_locale(locale))
    return f"({zone_name(value.tzinfo)}, {gmt})"


def format_day(value: dt.date, locale: str) -> str:
    """A calendar date in the locale's medium format (``2026年11月30日``, ``Nov 30, 2026``)."""
    return _format_date(value, "medium", locale=_babel_locale(locale))


def input_text(value: dt.datetime) -> str:
    """What a ``datetime-local`` input shows for an instant: the viewer's wall clock."""
    return local(value).strftime(INPUT_FORMAT)


def from_input(text: str) -> str:
    """A typed wall-clock time as ISO 8601 with the viewer's offset (what the engine reads).

    Text that does not parse, or already carries an offset, is passed on unchanged
    so the engine's own validation names the problem. A wall time that a DST change
    skips or repeats takes the first reading (``fold=0``), as clocks on the wall do.
    """
    raw = text.strip()
    if not raw:
        return raw
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("/", "-"))
    except ValueError:
        return raw
    if parsed.tzinfo is not None:
        return raw
    return parsed.replace(tzinfo=current_zone()).astimezone(dt.UTC).isoformat()


def today(zone: dt.tzinfo | None = None, *, now: dt.datetime | None = None) -> dt.date:
    """The viewer's calendar day."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(zone or current_zone()).date()


def period_bounds(period: str, *, zone: dt.tzinfo | None = None,
                  now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """First and last day of ``today``, ``week`` (Monday to Sunday, as in China and ISO)
    or ``month`` in the viewer's zone; ``ValueError`` for another name."""
    day = today(zone, now=now)
    if period == "today":
        return day, day
    if period == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if period == "month":
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return start, following - dt.timedelta(days=1)
    raise ValueError(f"unknown period {period!r}")


def day_start_utc(day: dt.date, zone: dt.tzinfo | None = None) -> dt.datetime:
    """The instant a calendar day begins in the zone (a DST day may be 23 or 25 hours)."""
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone or current_zone())
    return start.astimezone(dt.UTC)


def expiry_after(text: str) -> tuple[dt.datetime | None, str]:
    """An "expires on" date typed in the viewer's zone: the instant the day after it
    begins (the whole day counts), or an English message to translate ("": none typed,
    or fine). Shares and API tokens take their expiry this way."""
    if not text:
        return None, ""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None, N_("Choose a date.")
    if day < today():
        return None, N_("Choose today or a later date.")
    return day_start_utc(day + dt.timedelta(days=1), current_zone()), ""


def zoned_query(entity: Entity, query: ListQuery) -> ListQuery:
    """``query`` with the wall-clock times typed into datetime filters given the viewer's
    offset (a ``datetime-local`` filter input has none, and the engine reads naive as UTC)."""
    changed = []
    for flt in query.filters:
        if _is_instant(entity, flt.field):
            value = flt.value
            if isinstance(value, str):
                value = from_input(value)
            elif isinstance(value, (list, tuple)):
                value = [from_input(v) if isinstance(v, str) else v for v in value]
            flt = replace(flt, value=value)
        changed.append(flt)
    return replace(query, filters=tuple(changed))


def _is_instant(entity: Entity, name: str) -> bool:
    """Whether a filter's field holds instants (a date-time field or a system time)."""
    if entity.has_field(name):
        return entity.field(name).type is FieldType.DATETIME
    return name in SYSTEM_INSTANTS
