"""Per-owner-per-day rollups of the leaderboard measures, kept by write events.

A measure's value for (owner, day) is a pure function of the rows stored now:
the records of its entity that are live, match its filters, have an owner and
a date, counted (or their field summed) by owner and company-local day. So a
write changes it by ``contribution(after) - contribution(before)``, applied in
the write's own transaction by the in-transaction hook (``on_write``) -- a
rolled-back write leaves no trace -- and ``rebuild`` recomputes it from scratch.
``raw_totals`` is the same number straight from the base table, which the tests
and ``tidepool reports verify`` compare with the rollups.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.metadata.model import Registry
from engine.metadata.reports import BoardMeasure
from engine.records._plan import EntityPlan
from engine.records.events import BatchEvent
from engine.records.query import Filter, filter_clause
from engine.records.service import RecordService
from engine.reports.catalog import catalog_of
from engine.reports.dayexpr import local_day_sql
from engine.reports.zone import day_start, local_day, sync_company_zone
from engine.storage.pool_tables import POOL_EVENT_TABLE
from engine.storage.report_tables import ROLLUP_TABLE
from engine.storage.tables import StorageSchema

Key = tuple[str, dt.date, int]   # measure, day, owner
#: Shared values (a Decimal is immutable): one fewer object per event of a bulk create.
_ONE = Decimal(1)
_NOTHING = (0, Decimal(0))
#: Pool events that count for the record's previous owner (who gave it back).
_FROM_KINDS = frozenset({"return", "drop"})


class Change(Protocol):
    """What a rollup needs of a write event: stored column values before and after."""

    @property
    def entity(self) -> str: ...

    @property
    def before(self) -> Mapping[str, Any] | None: ...

    @property
    def after(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class Delta:
    count: int
    total: Decimal


def _event_owner(kind: str, before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None) -> Any:
    """Who a pool event counts for: the new owner, or the previous one for return/drop."""
    row = before if kind in _FROM_KINDS else after
    return None if row is None else row.get("owner_id")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _holds(op: str, stored: Any, wanted: Any) -> bool:
    """A condition on a stored value, as the list filter's SQL would answer it."""
    if op == "is_empty":
        return _empty(stored)
    if op == "not_empty":
        return not _empty(stored)
    if op == "eq":
        return stored is not None and stored == wanted
    if op == "ne":
        return stored is None or stored != wanted
    if op == "in":
        return stored is not None and stored in wanted
    raise ValueError(f"a rollup cannot evaluate {op!r}")   # refused at load


def _day_memo(zone: dt.tzinfo | None,
              days: dict[Any, dt.date] | None = None) -> Callable[[Any], dt.date]:
    """``local_day`` memoised for one batch: a bulk create's records share their
    instant, and rows moved together often do (records loaded together), so a batch
    converts each instant to the zone once, not once per row (``days``: the memo, for a
    caller that looks instants up itself)."""
    if days is None:
        days = {}

    def day_of(when: Any) -> dt.date:
        day = days.get(when)
        if day is None:
            day = days[when] = local_day(when, zone=zone)
        return day

    return day_of


def contribution(measure: BoardMeasure, row: Mapping[str, Any] | None,
                 amount_column: str | None, *,
                 zone: dt.tzinfo | None = None,
                 day_of: Callable[[Any], dt.date] | None = None
                 ) -> tuple[int, dt.date, Decimal] | None:
    """(owner, day, amount) a stored row adds to the measure, or None when it adds nothing.

    ``day_of``: as for ``_counted``."""
    if row is None:
        return None
    owner = row.get("owner_id")
    if owner is None:
        return None
    got = _counted(measure, row, amount_column, zone=zone, day_of=day_of)
    return None if got is None else (int(owner), got[0], got[1])


def _counted(measure: BoardMeasure, row: Mapping[str, Any], amount_column: str | None, *,
             zone: dt.tzinfo | None = None,
             day_of: Callable[[Any], dt.date] | None = None) -> tuple[dt.date, Decimal] | None:
    """(day, amount) a stored row counts for its owner, whoever that is (None: nothing).

    ``day_of``: the local day of an instant, e.g. memoised over a batch of rows."""
    if row.get("deleted_at") is not None:
        return None
    when = row.get(measure.date_field)
    if when is None:
        return None
    for cond in measure.filters:
        if not _holds(cond.op, row.get(cond.field), cond.value):
            return None
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when) if "T" in when or " " in when \
            else dt.date.fromisoformat(when)
    amount = _ONE
    if measure.kind == "sum":
        assert amount_column is not None
        value = row.get(amount_column)
        if isinstance(value, Mapping):   # a money value as the service hands it out
            value = value.get("amount")
        amount = Decimal(str(value)) if value is not None else Decimal(0)
    return (day_of(when) if day_of is not None else local_day(when, zone=zone)), amount


class RollupKeeper:
    """Keeps ``tp_rollup_daily`` for the leaderboard measures of one registry."""

    def __init__(self, schema: StorageSchema, registry: Registry) -> None:
        self.schema = schema
        self.table = schema.system[ROLLUP_TABLE]
        self.measures: dict[str, list[BoardMeasure]] = {}
        #: (entity, event kind) -> measures counting those pool events
        self.events: dict[tuple[str, str], list[BoardMeasure]] = {}
        for m in catalog_of(registry).board_measures():
            if m.entity not in schema.tables:
                continue
            if m.event is not None:
                self.events.setdefault((m.entity, m.event), []).append(m)
            else:
                self.measures.setdefault(m.entity, []).append(m)
        #: entity -> (measure, amount column, plain): a plain measure counts each live
        #: owned dated record once, whatever its other values (kind count, no filters)
        self._counting: dict[str, list[tuple[BoardMeasure, str | None, bool]]] = {
            entity: [(m, self.amount_column(m), m.kind == "count" and not m.filters)
                     for m in found] for entity, found in self.measures.items()}

    @property
    def active(self) -> bool:
        return bool(self.measures or self.events)

    def amount_column(self, m: BoardMeasure) -> str | None:
        # A money field's amount column carries the field's name (currency beside it).
        return m.field if m.kind == "sum" else None

    def deltas(self, changes: Iterable[Change], *,
               zone: dt.tzinfo | None = None) -> dict[Key, Delta]:
        """The rollup changes a batch of writes makes (zero deltas dropped), keyed by day
        in ``zone`` (default: the company's)."""
        out: dict[Key, tuple[int, Decimal]] = {}
        #: plain counts apart, as whole numbers: no Decimal sum per event (merged below)
        counts: dict[Key, int] = {}
        days: dict[Any, dt.date] = {}
        day_of = _day_memo(zone, days)
        for change in changes:
            if isinstance(change, BatchEvent):
                self._batch_deltas(change, out, zone=zone)
                continue
            kind = getattr(change, "kind", None)
            for m in self.events.get((change.entity, kind or ""), ()):
                owner = _event_owner(kind or "", change.before, change.after)
                at = getattr(change, "at", None)
                if owner is not None and at is not None:
                    key = (m.name, local_day(at, zone=zone), int(owner))
                    n, total = out.get(key, (0, Decimal(0)))
                    out[key] = (n + 1, total + 1)
            for m, col, plain in self._counting.get(change.entity, ()):
                for sign, row in ((-1, change.before), (1, change.after)):
                    # ``contribution`` inline: a bulk create's thousands of events pay
                    # no call for the absent before row nor for the unowned records.
                    if row is None:
                        continue
                    owner = row.get("owner_id")
                    if owner is None:
                        continue
                    if plain:
                        # ``_counted`` inline for a plain count: a day already seen in
                        # the batch is looked up, no call per event of a bulk create.
                        when = row.get(m.date_field)
                        if when is None or row.get("deleted_at") is not None:
                            continue
                        day = days.get(when)
                        if day is None:
                            got = _counted(m, row, col, zone=zone, day_of=day_of)
                            if got is None:
                                continue
                            day = days[when] = got[0]
                        key = (m.name, day, int(owner))
                        counts[key] = counts.get(key, 0) + sign
                        continue
                    got = _counted(m, row, col, zone=zone, day_of=day_of)
                    if got is None:
                        continue
                    day, amount = got
                    key = (m.name, day, int(owner))
                    n, total = out.get(key, _NOTHING)
                    out[key] = (n + sign, total + sign * amount)
        for key, c in counts.items():
            n, total = out.get(key, _NOTHING)
            out[key] = (n + c, total + c)
        return {k: Delta(n, t) for k, (n, t) in out.items() if n or t}

    def _batch_deltas(self, batch: BatchEvent, out: dict[Key, tuple[int, Decimal]], *,
                      zone: dt.tzinfo | None) -> None:
        """A batch's deltas into ``out``: its records change only the columns in
        ``batch.after`` (owner, pool, updated_at), so a measure that reads none of them but
        the owner moves each record's (day, amount) from the old owner to the new one."""
        def add(key: Key, sign: int, amount: Decimal) -> None:
            n, total = out.get(key, (0, Decimal(0)))
            out[key] = (n + sign, total + sign * amount)

        for m in self.events.get((batch.entity, batch.kind), ()):
            owner = _event_owner(batch.kind, batch.before, batch.after)
            if owner is not None:
                # an event counts each record once: n and total both grow by the count
                add((m.name, local_day(batch.at, zone=zone), int(owner)),
                    len(batch.record_ids), Decimal(1))
        old, new = batch.before.get("owner_id"), batch.after.get("owner_id")
        if not batch.rows:
            return
        day_of = _day_memo(zone)
        position = {name: i for i, name in enumerate(batch.rows[0]._fields)}
        for m in self.measures.get(batch.entity, ()):
            col = self.amount_column(m)
            read = {name for name in (m.date_field, "deleted_at", col,
                                      *(c.field for c in m.filters)) if name is not None}
            if read & (set(batch.after) - {"owner_id"}):  # a changed column counts: each row
                for row in batch.columns():
                    for sign, values in ((-1, row), (1, {**row, **batch.after})):
                        got = contribution(m, values, col, zone=zone)
                        if got is not None:
                            add((m.name, got[1], got[0]), sign, got[2])
                continue
            if old == new:
                continue
            # Only the columns the measure reads, by position (no mapping per row).
            wanted = [(name, position[name]) for name in sorted(read) if name in position]
            for raw in batch.rows:
                counted = _counted(m, {name: raw[i] for name, i in wanted}, col,
                                   day_of=day_of)
                if counted is None:
                    continue
                day, amount = counted
                if old is not None:
                    add((m.name, day, int(old)), -1, amount)
                if new is not None:
                    add((m.name, day, int(new)), 1, amount)

    def apply(self, conn: Connection, changes: Iterable[Change], *,
              zone: dt.tzinfo | None = None) -> int:
        """Add the deltas of ``changes`` to the rollups on ``conn``; returns rows touched."""
        deltas = self.deltas(changes, zone=zone)
        if not deltas:
            return 0
        rows = [{"measure": k[0], "day": k[1], "owner_id": k[2], "count": d.count,
                 "total": d.total} for k, d in sorted(deltas.items())]
        table = self.table
        dialect = conn.dialect.name
        if dialect == "postgresql":
            pg = postgresql.insert(table)
            stmt: Any = pg.on_conflict_do_update(
                index_elements=["measure", "day", "owner_id"],
                set_={"count": table.c.count + pg.excluded.count,
                      "total": table.c.total + pg.excluded.total})
        else:
            lite = sqlite.insert(table)
            stmt = lite.on_conflict_do_update(
                index_elements=["measure", "day", "owner_id"],
                set_={"count": table.c.count + lite.excluded.count,
                      "total": table.c.total + lite.excluded.total})
        conn.execute(stmt, rows)
        return len(rows)

    # --- from scratch -----------------------------------------------------------

    def _where(self, plan: EntityPlan, m: BoardMeasure) -> list[Any]:
        where = [filter_clause(plan, Filter(c.field, c.op, c.value), frozenset())
                 for c in m.filters]
        where.append(plan.table.c.owner_id.is_not(None))
        where.append(plan.table.c[m.date_field].is_not(None))
        if plan.soft_delete:
            where.append(plan.table.c.deleted_at.is_(None))
        return where

    def rebuild(self, conn: Connection, records: RecordService,
                measures: Sequence[str] | None = None, *,
                zone: dt.tzinfo | None = None) -> dict[str, int]:
        """Recompute the named measures (default all) from the base tables; rows written.

        Set-based: one ``INSERT ... SELECT ... GROUP BY`` (owner, local day) per measure,
        the local day computed by the database (``dayexpr``), so a rebuild at millions
        of rows takes seconds and never streams them through Python.
        """
        zone = zone or sync_company_zone(conn)
        written: dict[str, int] = {}
        for entity, found in self.measures.items():
            plan = records.plan(entity)
            for m in found:
                if measures is None or m.name in measures:
                    written[m.name] = self._rebuild_measure(conn, plan, m, zone)
        for (entity, kind), found_events in self.events.items():
            for m in found_events:
                if measures is None or m.name in measures:
                    written[m.name] = self._rebuild_events(conn, m, entity, kind, zone)
        return written

    def _fill(self, conn: Connection, m: BoardMeasure, rows: Any) -> int:
        """Replace ``m``'s rollups with ``rows`` (a subquery of day, owner, amount)."""
        t = self.table
        conn.execute(delete(t).where(t.c.measure == m.name))
        grouped = select(literal(m.name, t.c.measure.type), rows.c.day, rows.c.owner,
                         func.count(), func.coalesce(func.sum(rows.c.amount), 0)) \
            .group_by(rows.c.day, rows.c.owner)
        done = conn.execute(insert(t).from_select(
            ["measure", "day", "owner_id", "count", "total"], grouped))
        return int(done.rowcount or 0)

    def _rebuild_measure(self, conn: Connection, plan: EntityPlan, m: BoardMeasure,
                         zone: dt.tzinfo) -> int:
        where = self._where(plan, m)
        col = plan.table.c[m.date_field]
        date_type = plan.lookup(m.date_field)
        is_date = date_type is not None and date_type.type.value == "date"
        day = col if is_date else local_day_sql(conn, col, zone, where=where)
        amount = plan.table.c[m.field or ""] if m.kind == "sum" else literal(1)
        rows = select(day.label("day"), plan.table.c.owner_id.label("owner"),
                      amount.label("amount")).where(*where).subquery()
        return self._fill(conn, m, rows)

    def _ledger(self) -> Any:
        return self.schema.system[POOL_EVENT_TABLE]

    def _event_where(self, m: BoardMeasure, entity: str, kind: str) -> list[Any]:
        ledger = self._ledger()
        owner = ledger.c.from_owner if kind in _FROM_KINDS else ledger.c.to_owner
        return [ledger.c.entity == entity, ledger.c.kind == kind, owner.is_not(None)]

    def _rebuild_events(self, conn: Connection, m: BoardMeasure, entity: str,
                        kind: str, zone: dt.tzinfo) -> int:
        ledger = self._ledger()
        owner = ledger.c.from_owner if kind in _FROM_KINDS else ledger.c.to_owner
        where = self._event_where(m, entity, kind)
        day = local_day_sql(conn, ledger.c.at, zone, where=where)
        rows = select(day.label("day"), owner.label("owner"), literal(1).label("amount")) \
            .where(*where).subquery()
        return self._fill(conn, m, rows)

    def raw_totals(self, conn: Connection, records: RecordService, m: BoardMeasure, *,
                   first: dt.date, end: dt.date,
                   owners: Sequence[int] | None = None) -> dict[int, tuple[int, Decimal]]:
        """Per owner: count and total of ``m`` over days [first, end), from the base table."""
        sync_company_zone(conn)   # days as the company zone stored on this database says
        if m.event is not None:
            ledger = self._ledger()
            who = ledger.c.from_owner if m.event in _FROM_KINDS else ledger.c.to_owner
            where = [*self._event_where(m, m.entity, m.event),
                     ledger.c.at >= day_start(first), ledger.c.at < day_start(end)]
            if owners is not None:
                where.append(who.in_(list(owners)))
            rows = conn.execute(select(who, func.count()).where(*where).group_by(who))
            return {int(r[0]): (int(r[1]), Decimal(int(r[1]))) for r in rows}
        plan = records.plan(m.entity)
        col = plan.table.c[m.date_field]
        date_type = plan.lookup(m.date_field)
        is_date = date_type is not None and date_type.type.value == "date"
        low: Any = first if is_date else day_start(first)
        high: Any = end if is_date else day_start(end)
        where = [*self._where(plan, m), col >= low, col < high]
        if owners is not None:
            where.append(plan.table.c.owner_id.in_(list(owners)))
        value = func.sum(plan.table.c[m.field]) if m.kind == "sum" and m.field else \
            func.count()
        stmt = select(plan.table.c.owner_id, func.count(), value).where(and_(*where)) \
            .group_by(plan.table.c.owner_id)
        return {int(r[0]): (int(r[1]), Decimal(str(r[2] if r[2] is not None else 0)))
                for r in conn.execute(stmt)}

    def rollup_totals(self, conn: Connection, m: BoardMeasure, *, first: dt.date,
                      end: dt.date,
                      owners: Sequence[int] | None = None) -> dict[int, tuple[int, Decimal]]:
        """Per owner: count and total of ``m`` over days [first, end), from the rollups."""
        t = self.table
        where = [t.c.measure == m.name, t.c.day >= first, t.c.day < end]
        if owners is not None:
            where.append(t.c.owner_id.in_(list(owners)))
        stmt = select(t.c.owner_id, func.sum(t.c.count), func.sum(t.c.total)) \
            .where(*where).group_by(t.c.owner_id)
        out: dict[int, tuple[int, Decimal]] = {}
        for owner, n, total in conn.execute(stmt):
            if int(n or 0) or Decimal(str(total or 0)):
                out[int(owner)] = (int(n or 0), Decimal(str(total or 0)))
        return out


def rebuild_all(engine: Any, registry: Registry) -> dict[str, int]:
    """Rebuild every rollup of ``registry`` on ``engine`` (after bulk loads, in the demo)."""
    from engine.reports.freshness import rebuild_on
    from engine.storage.tables import build_schema

    records = RecordService(engine=engine, schema=build_schema(registry))
    return rebuild_on(engine, records, registry)
