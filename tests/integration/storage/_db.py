"""Row and schema helpers for the migration tests (reflection sees archived columns too)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, MetaData, Table, inspect, select

from engine.metadata.model import Registry
from engine.storage.tables import build_schema

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def insert(engine: Engine, registry: Registry, entity: str, rows: list[dict[str, Any]]) -> None:
    table = build_schema(registry).table(entity)
    system = {"created_at": NOW, "updated_at": NOW, "version": 1}
    with engine.begin() as conn:
        conn.execute(table.insert(), [{**system, **row} for row in rows])


def rows(engine: Engine, table: str, *columns: str) -> list[tuple[Any, ...]]:
    """The given columns of every row, by id (reflected, so any column in the database)."""
    with engine.connect() as conn:
        reflected = Table(table, MetaData(), autoload_with=conn)
        query = select(*(reflected.c[c] for c in columns)).order_by(reflected.c.id)
        return [tuple(r) for r in conn.execute(query)]


def columns(engine: Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in inspect(conn).get_columns(table)]


def tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def indexes(engine: Engine, table: str) -> dict[str, tuple[str, ...]]:
    with engine.connect() as conn:
        return {str(i["name"]): tuple(str(c) for c in i["column_names"])
                for i in inspect(conn).get_indexes(table)}


def uniques(engine: Engine, table: str) -> dict[str, tuple[str, ...]]:
    with engine.connect() as conn:
        return {str(u["name"]): tuple(u["column_names"])
                for u in inspect(conn).get_unique_constraints(table)}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's columns, indexes and rows: equal snapshots, untouched database."""
    result: dict[str, Any] = {}
    with engine.connect() as conn:
        inspector = inspect(conn)
        for name in sorted(inspector.get_table_names()):
            reflected = Table(name, MetaData(), autoload_with=conn)
            order = list(reflected.primary_key.columns)
            data = [tuple(r) for r in conn.execute(select(reflected).order_by(*order))]
            result[name] = (
                [(c["name"], str(c["type"])) for c in inspector.get_columns(name)],
                sorted(str(i["name"]) for i in inspector.get_indexes(name)),
                data,
            )
    return result
