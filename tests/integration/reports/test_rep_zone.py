"""Reports read the company time zone from the setting, and the day-keyed rollups follow
it: after a zone change (from the admin screen's function, or set behind the reports'
back) the leaderboard equals the raw aggregate in the new zone, on SQLite and PostgreSQL;
writes after the change land on the new zone's days; the set-based rebuild places
instants around midnight and daylight-saving changes on the same days Python does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, create_engine

from engine.actor import Actor
from engine.errors import ValidationError
from engine.permissions.identity import create_user
from engine.permissions.org import create_department
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of
from engine.reports.freshness import STAMP, change_company_zone, stamp
from engine.reports.leaderboard import board
from engine.reports.periods import custom_window
from engine.reports.rollups import RollupKeeper
from engine.reports.zone import company_zone, local_day, sync_company_zone, zone_key
from engine.runtime import install_hooks
from engine.storage.database import write_transaction
from engine.storage.settings import get_setting, set_company_time_zone
from engine.storage.tables import build_schema
from tests.integration.permissions._crm_org import crm_registry
from tests.integration.permissions.conftest import module_db_url  # noqa: F401 (fixture)

ROOT = Actor.system("test")
FIRST, END = dt.date(2026, 3, 1), dt.date(2026, 4, 10)
# around midnight UTC, Shanghai (+8), Kolkata (+5:30) and New York's DST start (8 March)
INSTANTS = ["2026-03-07T23:30:00+00:00", "2026-03-08T06:59:59+00:00",
            "2026-03-08T07:00:00+00:00", "2026-03-08T16:10:00+00:00",
            "2026-03-08T18:45:00+00:00", "2026-03-31T15:59:59+00:00",
            "2026-03-31T16:00:00+00:00", "2026-04-01T04:00:00+00:00"]


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[tuple[RecordService, list[int]]]:  # noqa: F811
    engine: Engine = create_engine(module_db_url)
    registry = crm_registry()
    schema = build_schema(registry)
    schema.metadata.create_all(engine)
    with write_transaction(engine) as conn:
        team = create_department(conn, code="t", name="T").id
        users = [create_user(conn, login=f"z{i}", display_name=f"Z{i}",
                             department_id=team).id for i in range(2)]
        set_company_time_zone(conn, "UTC")
    records = install_hooks(RecordService(engine=engine, schema=schema))
    customer = records.create(ROOT, "customer", {"name": "Anchor", "owner_id": users[0]}).id
    for i, at in enumerate(INSTANTS):
        records.create(ROOT, "follow_up", {"kind": "visit", "owner_id": users[i % 2],
                                           "customer": customer, "content": "met",
                                           "happened_at": at})
    yield records, users
    with records.engine.connect() as conn:
        sync_company_zone(conn)
    with write_transaction(engine) as conn:   # leave the process on the default zone
        set_company_time_zone(conn, "UTC")
        sync_company_zone(conn)
    engine.dispose()


def daily(records: RecordService, measure: str) -> dict[dt.date, int]:
    """The rollup's count per day (both owners) against ..."""
    keeper = RollupKeeper(records.schema, records.schema.registry)
    m = catalog_of(records.schema.registry).board_measure(measure)
    assert m is not None
    out = {}
    day = FIRST
    with records.engine.connect() as conn:
        while day < END:
            got = keeper.rollup_totals(conn, m, first=day, end=day + dt.timedelta(days=1))
            if got:
                out[day] = sum(n for n, _ in got.values())
            day += dt.timedelta(days=1)
    return out


def expected(zone: str) -> dict[dt.date, int]:
    """... the same count placed by Python's zone database."""
    from zoneinfo import ZoneInfo

    out: dict[dt.date, int] = {}
    for at in INSTANTS:
        day = dt.datetime.fromisoformat(at).astimezone(ZoneInfo(zone)).date()
        out[day] = out.get(day, 0) + 1
    return out


def ranked(records: RecordService, users: list[int]) -> dict[int, Decimal]:
    window = custom_window(FIRST, END - dt.timedelta(days=1))
    got = board(records, records.schema.registry, Actor(user_id=users[0], login="z0"),
                measure="visits", window=window, scope="team")
    return {s.user_id: s.value for s in got.standings}


def raw(records: RecordService) -> dict[int, Decimal]:
    keeper = RollupKeeper(records.schema, records.schema.registry)
    m = catalog_of(records.schema.registry).board_measure("visits")
    assert m is not None
    with records.engine.connect() as conn:
        return {o: Decimal(n) for o, (n, _) in
                keeper.raw_totals(conn, records, m, first=FIRST, end=END).items()}


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Asia/Kolkata"])
def test_a_zone_change_rebuilds_the_rollups_in_the_new_zone(
        world: tuple[RecordService, list[int]], zone: str) -> None:
    records, users = world
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, zone)
        assert stamp(conn, records) == zone
    assert daily(records, "visits") == expected(zone)
    counted = raw(records)
    assert ranked(records, users) == {u: counted.get(u, Decimal(0)) for u in users}
    assert zone_key(company_zone()) == zone


def test_writes_after_a_change_land_on_the_new_zones_days(
        world: tuple[RecordService, list[int]]) -> None:
    records, users = world
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "Asia/Shanghai")
    customer = records.create(ROOT, "customer", {"name": "Late", "owner_id": users[1]}).id
    at = "2026-03-20T17:00:00+00:00"   # 21 March in Shanghai
    fu = records.create(ROOT, "follow_up", {"kind": "visit", "owner_id": users[1],
                                            "customer": customer, "content": "late",
                                            "happened_at": at})
    try:
        assert daily(records, "visits").get(dt.date(2026, 3, 21)) == \
            expected("Asia/Shanghai").get(dt.date(2026, 3, 21), 0) + 1
    finally:
        records.delete(ROOT, "follow_up", fu.id, version=fu.version)
        records.delete(ROOT, "customer", customer, version=1)


def test_a_zone_set_behind_the_reports_back_is_rebuilt_on_the_next_read(
        world: tuple[RecordService, list[int]]) -> None:
    records, users = world
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "UTC")
        set_company_time_zone(conn, "Asia/Shanghai")   # as the demo or a restore would
    # stale: the next write does not key deltas by a zone the rollups are not in ...
    with records.engine.connect() as conn:
        assert get_setting(conn, STAMP) == "UTC"
    before = ranked(records, users)   # ... and the next read rebuilds first
    with records.engine.connect() as conn:
        assert get_setting(conn, STAMP) == "Asia/Shanghai"
    assert daily(records, "visits") == expected("Asia/Shanghai")
    assert before == {u: raw(records).get(u, Decimal(0)) for u in users}


def test_an_unknown_zone_is_refused_and_changes_nothing(
        world: tuple[RecordService, list[int]]) -> None:
    records, _ = world
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "UTC")
    with pytest.raises(ValidationError), write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "Mars/Olympus")
    with records.engine.connect() as conn:
        assert get_setting(conn, STAMP) == "UTC"
        assert get_setting(conn, "time_zone") == "UTC"
    assert daily(records, "visits") == expected("UTC")


def test_local_day_follows_the_stored_setting(world: tuple[RecordService, list[int]]) -> None:
    records, _ = world
    instant = dt.datetime(2026, 1, 1, 17, 0, tzinfo=dt.UTC)
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "Asia/Shanghai")
        sync_company_zone(conn)
    assert local_day(instant) == dt.date(2026, 1, 2)
    with write_transaction(records.engine) as conn:
        change_company_zone(conn, records, records.schema.registry, "UTC")
        sync_company_zone(conn)
    assert local_day(instant) == dt.date(2026, 1, 1)
