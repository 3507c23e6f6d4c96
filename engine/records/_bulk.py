"""Inserting new rows: a lean executemany for SQLite, Core with RETURNING elsewhere.

SQLAlchemy Core spends more time building per-row parameter dicts for an
executemany than SQLite spends inserting them. For the bulk path we compile the
INSERT once, apply the columns' own bind processors (so values are stored
exactly as Core would store them, except that an empty JSON value is SQL NULL)
and hand plain tuples to the driver. Values shared by every row (timestamps,
the actor) are processed once.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, func, insert, null, select, text
from sqlalchemy.sql import sqltypes

from engine.records import activity as feed
from engine.records._plan import EntityPlan
from engine.records._prepare import column_sources, compiled_rows
from engine.records.coerce import InputSource
from engine.storage.record_ids import uses_autoincrement


class DriverInsert:
    """INSERT rows of ``varying`` columns (tuples) plus ``constant`` columns (same each row)."""

    def __init__(self, table: Table, *, varying: Sequence[str], constant: Sequence[str],
                 dialect: Dialect, statement: Insert | None = None,
                 sources: Sequence[str] | None = None,
                 namespace: Mapping[str, Any] | None = None,
                 nulls: Sequence[str] = ()) -> None:
        """``statement``: an INSERT of ``table`` to run instead of the plain one (an upsert).

        ``nulls``: columns NULL in every row, written as ``NULL`` in the statement: the
        SQLite driver binds a None parameter more slowly than any other value.

        ``sources``: per varying column, an expression of ``i``, ``v`` and ``d`` (a
        record's id, field values and derived values, ``_prepare.column_sources``)
        that computes it, with ``namespace`` holding the functions it names; then
        ``execute_records`` builds each row's parameters in one step, from the
        record itself (no list of column values per row in between).
        """
        columns = [*varying, *constant]
        stmt = statement if statement is not None else insert(table)
        if nulls:
            stmt = stmt.values({name: null() for name in nulls})
        compiled = stmt.compile(dialect=dialect, column_keys=columns)
        if compiled.positiontup is None:
            raise ValueError("DriverInsert needs a positional paramstyle")
        # Positions in the compiled statement may differ from ours: map them.
        self.sql = str(compiled)
        order = list(compiled.positiontup)
        self.varying = tuple(varying)
        self.constant = tuple(constant)
        self._reorder = tuple(columns.index(key) for key in order)
        processors = [_bind_processor(table, name, dialect) for name in varying]
        self._constant_processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in constant]
        self._build = _compile_parameters(self._reorder, len(varying), processors)
        self._fused: Callable[..., tuple[Any, ...]] | None = None
        if sources is not None:
            if len(sources) != len(varying):
                raise ValueError("DriverInsert needs one source per varying column")
            self._fused = _compile_parameters(self._reorder, len(varying), processors,
                                              sources=sources, namespace=namespace)

    def execute(self, conn: Connection, rows: Iterable[Sequence[Any]],
                constants: Mapping[str, Any]) -> None:
        fixed = self._processed(constants)
        build = self._build
        conn.exec_driver_sql(self.sql, [build(row, fixed) for row in rows])

    def execute_records(self, conn: Connection, ids: Iterable[int],
                        records: Iterable[Mapping[str, Any]], derived: Iterable[Any],
                        constants: Mapping[str, Any]) -> None:
        """INSERT one row per (id, field values, derived values) through ``sources``."""
        if self._fused is None:
            raise TypeError("this DriverInsert was built without sources")
        conn.exec_driver_sql(self.sql, list(map(self._fused, ids, records, derived,
                                                repeat(self._processed(constants)))))

    def _processed(self, constants: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if proc is None or value is None else proc(value)
            for proc, value in zip(self._constant_processors,
                                   (constants[name] for name in self.constant)))


def _bind_processor(table: Table, name: str, dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column's bind processor; for JSON, its serializer itself when that is all the
    processor does to a value (it otherwise maps SQLAlchemy's NULL markers, which no
    record value is): a Python call less per document (addresses, tags, activity)."""
    impl = table.c[name].type.dialect_impl(dialect)
    processor = impl.bind_processor(dialect)
    if processor is not None and isinstance(impl, sqltypes.JSON) \
            and type(impl).bind_processor is sqltypes.JSON.bind_processor \
            and impl._str_impl.bind_processor(dialect) is None:
        serializer: Callable[[Any], Any] = getattr(dialect, "_json_serializer", None) \
            or json.dumps
        return serializer
    return processor


def _compile_parameters(order: Sequence[int], varying: int,
                        processors: Sequence[Callable[[Any], Any] | None], *,
                        sources: Sequence[str] | None = None,
                        namespace: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """(row of varying values, processed constants) -> the driver's parameter tuple, in
    the compiled statement's order, each value through its column's bind processor;
    with ``sources``, (id, field values, derived values, processed constants) -> the
    same tuple, each varying value computed by its source expression.

    One generated expression per statement: per value a loop step, an index and a
    list copy cost more than the insert of a 5,000-row batch's narrow rows. The
    source holds only integer positions, ``repr()`` of registry identifiers (the
    sources) and names; processors and the sources' functions are passed by name.
    """
    scope: dict[str, Any] = dict(namespace or {})
    parts = []
    for position in order:
        if position >= varying:
            parts.append(f"f[{position - varying}]")
            continue
        value = f"r[{position}]" if sources is None else sources[position]
        if processors[position] is None:
            parts.append(value)
        else:
            scope[f"_p{position}"] = processors[position]
            parts.append(f"(None if (_x{position} := {value}) is None "
                         f"else _p{position}(_x{position}))")
    arguments = "r, f" if sources is None else "i, v, d, f"
    source = f"def build({arguments}):\n    return ({', '.join(parts)},)\n"
    exec(source, scope)  # noqa: S102 -- positions, names and repr() of identifiers only
    build: Callable[..., Any] = scope["build"]
    return build


#: ``n`` fresh ids from a table's id sequence (serial or identity column).
_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                 "FROM generate_series(1, :n)")


#: The highest id an AUTOINCREMENT table ever handed out (SQLite).
_HIGH_WATER = text("SELECT seq FROM sqlite_sequence WHERE name = :table")


class RowInserter:
    """Insert prepared rows of any entity, with their activity rows, and return their ids."""

    def __init__(self, activity: Table) -> None:
        self.activity = activity
        self._fused: weakref.WeakKeyDictionary[
            EntityPlan, dict[tuple[bool | None, tuple[str, ...], tuple[str, ...], str],
                             DriverInsert]] = \
            weakref.WeakKeyDictionary()
        self._sequenced: dict[str, bool] = {}   # table -> AUTOINCREMENT (SQLite)

    def insert(self, conn: Connection, plan: EntityPlan, rows: list[dict[str, Any]], *,
               actor_id: int | None, now: datetime, via: str | None = None,
               derived: Sequence[tuple[Any, ...]] | None = None) -> list[int]:
        """``derived``: each row's match-key and stem values (``CompiledRows.derived``),
        when the caller has them; computed here otherwise."""
        system: dict[str, Any] = {"created_at": now, "updated_at": now, "created_by": actor_id,
                                  "version": 1}
        if plan.initial_stage is not None:
            system["stage"] = plan.initial_stage
        table = plan.table
        # A before_insert hook may have put rows in their pool (engine/records/hooks.py).
        pooled = "pool_id" in table.c and any("pool_id" in row for row in rows)
        logged = {"entity": plan.name, "kind": feed.CREATE, "actor_id": actor_id, "at": now,
                  "body": None, "via": via}
        if conn.dialect.name == "sqlite":
            # SQLite cannot return the ids of a multi-row insert in order (SQLAlchemy then
            # inserts row by row). The write transaction holds the database's write lock,
            # so ids above the current maximum are ours to assign -- and above the
            # highest ever handed out: a deleted record's id is never reused.
            start = self._sqlite_high_water(conn, table)
            ids = list(range(start + 1, start + 1 + len(rows)))
            if derived is None:  # the layout is source-free
                derived = compiled_rows(plan, InputSource.JSON).derived(rows)
            self._records_driver(plan, pooled, _valued(system), conn).execute_records(
                conn, ids, rows, derived, system)
            if plan.activity:
                self._records_driver(plan, None, _valued(logged), conn).execute_records(
                    conn, ids, rows, repeat(None), logged)
            return ids
        to_columns = plan.to_columns
        if pooled:  # every row names the column (an executemany binds the same keys)
            system["pool_id"] = None
        if conn.dialect.name == "postgresql":
            # Take the ids from the table's sequence first, then a plain executemany
            # (psycopg pipelines it). A multi-row INSERT ... RETURNING in parameter
            # order was 7x slower than the same insert without it (bench_records).
            ids = sorted(conn.execute(_NEXT_IDS, {"table": table.name, "n": len(rows)})
                         .scalars())
            params = [to_columns(row, {**system, "id": new_id})
                      for new_id, row in zip(ids, rows)]
            conn.execute(insert(table), params)
        else:
            params = [to_columns(row, dict(system)) for row in rows]
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids = list(conn.execute(stmt, params).scalars())
        if plan.activity:
            conn.execute(insert(self.activity), [
                {**logged, "record_id": new_id, "changes": feed.created(plan, row)}
                for new_id, row in zip(ids, rows)])
        return ids

    def _sqlite_high_water(self, conn: Connection, table: Table) -> int:
        largest = int(conn.execute(select(func.max(table.c.id))).scalar_one() or 0)
        sequenced = self._sequenced.get(table.name)
        if sequenced is None:
            sequenced = self._sequenced[table.name] = uses_autoincrement(conn, table.name)
        if not sequenced:
            return largest
        seq = conn.execute(_HIGH_WATER, {"table": table.name}).scalar_one_or_none()
        return max(largest, int(seq or 0))

    def _records_driver(self, plan: EntityPlan, pooled: bool | None,
                        constants: tuple[tuple[str, ...], tuple[str, ...]],
                        conn: Connection) -> DriverInsert:
        """The INSERT of ``plan``'s new rows (``pooled``: with their ``pool_id``) or, with
        ``pooled`` None, of their activity entries, each row's parameters built straight
        from its field values (kept per plan: the sources follow its layout);
        ``constants``: the columns equal in every row, bound and NULL (``_valued``)."""
        drivers = self._fused.get(plan)
        if drivers is None:
            drivers = self._fused.setdefault(plan, {})
        constant, nulls = constants
        key = (pooled, constant, nulls, conn.dialect.name)
        found = drivers.get(key)
        if found is not None:
            return found
        names: tuple[str, ...]
        if pooled is None:  # the entry of a create lists every field given a value
            table, names = self.activity, ("record_id", "changes")
            sources, namespace = ["i", "_created(v)"], {"_created": plan.created_changes}
        else:
            table = plan.table
            columns = column_sources(plan)
            if pooled:  # put in its pool by a before_insert hook, or None
                columns.append(("pool_id", "v.get('pool_id')"))
            names = tuple(name for name, _ in columns)
            sources, namespace = [source for _, source in columns], {}
        found = drivers[key] = DriverInsert(table, varying=names, constant=constant,
                                            dialect=conn.dialect, sources=sources,
                                            namespace=namespace, nulls=nulls)
        return found


def _valued(constants: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of ``constants`` with a value, and of those None (NULL in the statement:
    a create entry's body and usually its ``via``, and the system actor's id)."""
    return (tuple(k for k, v in constants.items() if v is not None),
            tuple(k for k, v in constants.items() if v is None))
