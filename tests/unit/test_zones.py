"""ui.zones: wall clocks, periods and formats in a zone, including DST days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from engine.storage.settings import is_time_zone, server_time_zone
from ui.zones import (
    day_start_utc,
    format_instant,
    from_input,
    input_text,
    period_bounds,
    today,
    viewing_in,
)

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("typed,zone,stored", [
    ("2026-11-30T09:00", SH, "2026-11-30T01:00:00+00:00"),
    ("2026-07-01T09:00", NY, "2026-07-01T13:00:00+00:00"),   # EDT
    ("2026-12-01T09:00", NY, "2026-12-01T14:00:00+00:00"),   # EST
    ("2026-03-08T02:30", NY, "2026-03-08T07:30:00+00:00"),   # skipped hour: first reading
    ("2026-11-01T01:30", NY, "2026-11-01T05:30:00+00:00"),   # repeated hour: first (EDT)
    ("2026-11-30T09:00+00:00", SH, "2026-11-30T09:00+00:00"),  # an offset is kept
    ("not a time", SH, "not a time"),                          # the engine names the error
    ("", SH, ""),
])
def test_from_input(typed: str, zone: dt.tzinfo, stored: str) -> None:
    with viewing_in(zone):
        assert from_input(typed) == stored


def test_input_text_round_trips_and_outside_a_request_is_utc() -> None:
    instant = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
    with viewing_in(NY):
        assert input_text(instant) == "2026-11-02T09:00"
        assert from_input(input_text(instant)) == instant.isoformat()
    assert input_text(instant) == "2026-11-02T14:00"


def test_formats_follow_the_locale() -> None:
    instant = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)
    with viewing_in(SH):
        assert format_instant(instant, "zh-CN") == "2026/11/30 09:00"
        assert format_instant(instant, "en").startswith("11/30/26")
        assert "Asia/Shanghai" in format_instant(instant, "en", with_zone=True)


def test_today_and_periods_are_the_viewers() -> None:
    late_utc = dt.datetime(2026, 11, 29, 20, 0, tzinfo=dt.UTC)  # 04:00 Monday in Shanghai
    assert today(SH, now=late_utc) == dt.date(2026, 11, 30)
    assert today(NY, now=late_utc) == dt.date(2026, 11, 29)
    assert period_bounds("week", zone=SH, now=late_utc) == (dt.date(2026, 11, 30),
                                                             dt.date(2026, 12, 6))
    assert period_bounds("week", zone=NY, now=late_utc) == (dt.date(2026, 11, 23),
                                                             dt.date(2026, 11, 29))
    assert period_bounds("month", zone=SH, now=late_utc) == (dt.date(2026, 11, 1),
                                                              dt.date(2026, 11, 30))
    with pytest.raises(ValueError):
        period_bounds("fortnight", zone=SH)


def test_a_dst_day_has_23_hours() -> None:
    start = day_start_utc(dt.date(2026, 3, 8), NY)
    end = day_start_utc(dt.date(2026, 3, 9), NY)
    assert end - start == dt.timedelta(hours=23)


@pytest.mark.parametrize("name,known", [("Asia/Shanghai", True), ("UTC", True),
                                        ("America/New_York", True), ("Mars/Olympus", False),
                                        ("../etc/passwd", False), ("", False)])
def test_zone_names_are_checked(name: str, known: bool) -> None:
    assert is_time_zone(name) is known
    assert is_time_zone(server_time_zone())
