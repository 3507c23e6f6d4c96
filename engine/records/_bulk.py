"""A lean executemany for SQLite bulk inserts.

SQLAlchemy Core spends more time building per-row parameter dicts for an
executemany than SQLite spends inserting them. For the bulk path we compile the
INSERT once, apply the columns' own bind processors (so values are stored
exactly as Core would store them, except that an empty JSON value is SQL NULL)
and hand plain tuples to the driver. Values shared by every row (timestamps,
the actor) are processed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert


class DriverInsert:
    """INSERT rows of ``varying`` columns (tuples) plus ``constant`` columns (same each row)."""

    def __init__(self, table: Table, *, varying: Sequence[str], constant: Sequence[str],
                 dialect: Dialect) -> None:
        columns = [*varying, *constant]
        compiled = insert(table).compile(dialect=dialect, column_keys=columns)
        if compiled.positiontup is None:
            raise ValueError("DriverInsert needs a positional paramstyle")
        # Positions in the compiled statement may differ from ours: map them.
        self.sql = str(compiled)
        order = list(compiled.positiontup)
        self.varying = tuple(varying)
        self.constant = tuple(constant)
        self._reorder = tuple(columns.index(key) for key in order)
        self._identity = self._reorder == tuple(range(len(columns)))
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in varying]
        self._processors: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, proc) for i, proc in enumerate(processors) if proc is not None)
        self._constant_processors = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in constant]

    def execute(self, conn: Connection, rows: Iterable[Sequence[Any]],
                constants: Mapping[str, Any]) -> None:
        fixed = tuple(
            value if proc is None or value is None else proc(value)
            for proc, value in zip(self._constant_processors,
                                   (constants[name] for name in self.constant)))
        processors = self._processors
        out = []
        for raw in rows:
            row = raw if raw.__class__ is list else list(raw)
            for i, proc in processors:
                value = row[i]
                if value is not None:
                    row[i] = proc(value)
            row.extend(fixed)
            out.append(tuple(row) if self._identity
                       else tuple(row[j] for j in self._reorder))
        conn.exec_driver_sql(self.sql, out)
