"""Which zone the rollups are keyed in, and rebuilding them when the company zone changes.

A rollup row is a (measure, company-local day, owner) sum, so the same rows give
other days in another zone. The zone the rollups were built in is stored beside
the company zone as the setting ``reports.rollup_zone`` (the *stamp*):

- a company zone change (``change_company_zone``) writes the stamp, the zone and
  the rebuilt rollups in one transaction: readers see either the old zone with
  the old rollups or the new zone with the new ones, never a mix;
- the write hook keys its deltas by the stamp's zone (read ``FOR SHARE`` on
  PostgreSQL: a concurrent rebuild, which writes the stamp first, makes the write
  wait and then use the new zone; a write that got there first is seen by the
  rebuild's statements, which run after it commits);
- a reader (``ensure_fresh``) finding a stamp other than the company zone -- the
  zone was set some other way (the demo, a restored backup, an old database) --
  rebuilds before reading. The leaderboard therefore always equals the raw
  aggregate in the company's current zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.metadata.model import Registry
from engine.records.service import RecordService
from engine.reports.rollups import RollupKeeper
from engine.reports.zone import use_company_zone, zone_named
from engine.storage.database import write_transaction
from engine.storage.settings import (
    SETTING_TABLE,
    TIME_ZONE,
    check_time_zone,
    company_time_zone,
    is_time_zone,
    server_time_zone,
    set_company_time_zone,
    set_setting,
)

STAMP = "reports.rollup_zone"


def stamp(conn: Connection, records: RecordService, *, lock: bool = False) -> str | None:
    """The zone the rollups are keyed in (None: never stamped)."""
    t = records.schema.system[SETTING_TABLE]
    stmt = select(t.c.value).where(t.c.key == STAMP)
    if lock:
        stmt = stmt.with_for_update(read=True)   # FOR SHARE on PostgreSQL; SQLite serialises
    value = conn.execute(stmt).scalar()
    return None if value is None else str(value)


def rebuild(conn: Connection, records: RecordService, registry: Registry,
            measures: Sequence[str] | None = None) -> dict[str, int]:
    """Rebuild the rollups in the company's zone on ``conn`` (all of them when they were
    keyed in another zone), stamping the zone first so concurrent writes wait for us."""
    name = company_time_zone(conn)
    if stamp(conn, records) != name:
        measures = None
    set_setting(conn, STAMP, name)
    keeper = RollupKeeper(records.schema, registry)
    return keeper.rebuild(conn, records, measures, zone=zone_named(name))


def change_company_zone(conn: Connection, records: RecordService, registry: Registry,
                        name: str) -> dict[str, int]:
    """Set the company zone and rebuild the rollups in it, in the caller's transaction."""
    check_time_zone(name)
    set_setting(conn, STAMP, name)
    set_company_time_zone(conn, name)
    keeper = RollupKeeper(records.schema, registry)
    return keeper.rebuild(conn, records, zone=zone_named(name))


def _zone_and_stamp(conn: Connection, records: RecordService) -> tuple[str, str | None]:
    """The company zone and the stamp in one query (the leaderboard's every read)."""
    t = records.schema.system[SETTING_TABLE]
    found = {str(k): str(v) for k, v in conn.execute(
        select(t.c.key, t.c.value).where(t.c.key.in_([TIME_ZONE, STAMP])))}
    stored = found.get(TIME_ZONE)
    name = stored if stored and is_time_zone(stored) else server_time_zone()
    return name, found.get(STAMP)


def ensure_fresh(records: RecordService, registry: Registry) -> dt.tzinfo:
    """The company zone, after rebuilding the rollups if they are keyed in another."""
    with records.engine.connect() as conn:
        name, current = _zone_and_stamp(conn, records)
    zone = use_company_zone(name)
    if current != name and RollupKeeper(records.schema, registry).active:
        with write_transaction(records.engine) as conn:
            if stamp(conn, records) != company_time_zone(conn):   # another reader won
                rebuild(conn, records, registry)
    return zone


def writer_zone(conn: Connection, records: RecordService) -> dt.tzinfo | None:
    """The zone a write's deltas are keyed in; None when the rollups are stale (not
    stamped but not empty: the next reader rebuilds them, so deltas would be lost work)."""
    current = stamp(conn, records, lock=True)
    if current is not None:
        return zone_named(current)
    rollups = RollupKeeper(records.schema, records.schema.registry).table
    if conn.execute(select(rollups.c.measure).limit(1)).first() is not None:
        return None
    name = company_time_zone(conn)
    t = records.schema.system[SETTING_TABLE]
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(t).values(key=STAMP, value=name, updated_at=now)
                     .on_conflict_do_nothing(index_elements=["key"]))
    else:
        conn.execute(sqlite.insert(t).values(key=STAMP, value=name, updated_at=now)
                     .on_conflict_do_nothing(index_elements=["key"]))
    current = stamp(conn, records, lock=True)
    return zone_named(current) if current is not None else None


def rebuild_on(engine: Engine, records: RecordService, registry: Registry,
               measures: Sequence[str] | None = None) -> dict[str, int]:
    """``rebuild`` in a write transaction of its own (the CLI, the demo, the bench)."""
    with write_transaction(engine) as conn:
        return rebuild(conn, records, registry, measures)
