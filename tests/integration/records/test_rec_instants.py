"""Instants come back aware and in UTC from both databases, whatever the input offset.

The list reader relies on this (it does no per-value conversion), so a change in
the column type or the PostgreSQL session time zone must fail here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from engine.actor import Actor
from engine.records import RecordService
from engine.records.query import Filter, ListQuery, Op
from engine.storage.database import make_engine

SHANGHAI = timezone(timedelta(hours=8))


def test_instants_read_back_aware_utc_in_get_and_list(service: RecordService,
                                                       system: Actor) -> None:
    given = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=SHANGHAI)
    record = service.create(system, "account", {"name": "Acme", "next_call": given})
    for values in (service.get(system, "account", record.id),
                   service.list(system, "account", ListQuery()).rows[0]):
        for name in ("next_call", "created_at", "updated_at"):
            value = values[name]
            assert value.utcoffset() == timedelta(0), (name, value)
        assert values["next_call"] == given
        assert values["next_call"].hour == 1  # 09:30 in Shanghai is 01:30 UTC


def test_range_filters_compare_instants_in_utc(service: RecordService, system: Actor) -> None:
    service.create(system, "account", {"name": "Early",
                                       "next_call": datetime(2026, 3, 1, 7, 0, tzinfo=SHANGHAI)})
    service.create(system, "account", {"name": "Late",
                                       "next_call": datetime(2026, 3, 1, 1, 0, tzinfo=UTC)})
    cutoff = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)  # Early is 23:00 UTC the day before
    page = service.list(system, "account", ListQuery(
        filters=(Filter("next_call", Op.GTE, cutoff),)))
    assert [r["name"] for r in page.rows] == ["Late"]


@pytest.mark.postgres
def test_postgresql_sessions_run_in_utc(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "UTC"
    engine.dispose()
