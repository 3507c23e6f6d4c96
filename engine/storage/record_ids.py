"""Record ids that are never reused, and the rows that point at a record by id.

Shares, stage history and the activity feed name a record as ``(entity,
record_id)``: one table for every entity, so no foreign key can hold them to
their record. Two rules keep such a row from ever reaching another record:

* an id is never handed out twice for the same entity name: entity tables are
  ``AUTOINCREMENT`` on SQLite (a plain ``INTEGER PRIMARY KEY`` reuses the
  highest id after it is deleted) and identity sequences on PostgreSQL, and a
  table made again for a name that was archived starts above every id still
  referenced (``seed_ids``);
* a hard delete removes the rows that point at the deleted records in the
  same transaction (``engine/records/_cascade.py``).

Any engine table with an ``entity`` and a ``record_id`` column is such a
dependent (``dependent_tables``), so a table added later (pool events, the
workflow's) is covered without being listed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, Table, TableClause, delete, func, select, text, union_all

#: The columns that make a system table point at records of any entity.
POINTER_COLUMNS = ("entity", "record_id")


def dependent_tables(system: Mapping[str, Table]) -> tuple[Table, ...]:
    """The system tables whose rows point at a record by ``(entity, record_id)``."""
    return tuple(table for name, table in sorted(system.items())
                 if all(c in table.c for c in POINTER_COLUMNS))


def highest_referenced_id(conn: Connection, dependents: Iterable[Table], entity: str) -> int:
    """The highest record id of ``entity`` that any dependent row still names (0 if none)."""
    arms = [select(func.max(t.c.record_id).label("m")).where(t.c.entity == entity)
            for t in dependents]
    if not arms:
        return 0
    every = union_all(*arms).subquery()
    return int(conn.execute(select(func.max(every.c.m))).scalar_one_or_none() or 0)


def seed_ids(conn: Connection, table: str, *, above: int) -> None:
    """Make the next id of ``table`` greater than ``above`` (never lowers it).

    SQLite keeps an AUTOINCREMENT table's high-water mark in ``sqlite_sequence``;
    PostgreSQL in the sequence behind the ``id`` column.
    """
    if above <= 0:
        return
    if conn.dialect.name == "sqlite":
        if not uses_autoincrement(conn, table):
            return  # only AUTOINCREMENT tables keep a high-water mark
        current = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :t"),
                               {"t": table}).scalar_one_or_none()
        if current is None:
            conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :n)"),
                         {"t": table, "n": above})
        elif int(current) < above:
            conn.execute(text("UPDATE sqlite_sequence SET seq = :n WHERE name = :t"),
                         {"t": table, "n": above})
        return
    conn.execute(text("SELECT setval(s, GREATEST(:n, COALESCE(pg_sequence_last_value(s), 0))) "
                      "FROM (SELECT CAST(pg_get_serial_sequence(:t, 'id') AS regclass) AS s) q"),
                 {"t": table, "n": above})


def forget_records(conn: Connection, dependents: Iterable[Table], entity: str, *,
                   keep: TableClause | None = None) -> None:
    """Delete the rows naming records of ``entity``, except those of rows in ``keep``.

    For a purged archive: its records are gone for good, and so are the shares,
    history and feed that named them; ``keep`` is the entity's live table when
    one was made again under the same name.
    """
    for dependent in dependents:
        condition = dependent.c.entity == entity
        if keep is not None:
            condition = condition & dependent.c.record_id.not_in(select(keep.c.id))
        conn.execute(delete(dependent).where(condition))


def uses_autoincrement(conn: Connection, table: str) -> bool:
    """Whether an existing SQLite table never reuses ids (True on other databases)."""
    if conn.dialect.name != "sqlite":
        return True
    sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :t"),
                       {"t": table}).scalar_one_or_none()
    return sql is not None and "AUTOINCREMENT" in str(sql).upper()
