"""Moving every pointer at some records to another one, and putting them back exactly.

A merge re-points two kinds of pointers from the merged records to the survivor:

* reference fields of any entity whose target is the merged entity (found in the
  registry, so an entity added later is covered);
* rows of system tables that name a record as ``(entity, record_id)`` (shares,
  stage history, the activity feed, pool events, uploads, notifications, rule
  clocks: ``dependent_tables``), including tables added later.

What moved is written down as plain JSON (``Moves``) so the undo moves exactly
those rows back. A system row whose primary or unique key includes ``record_id``
(a pool lock, a rule clock) may collide with the survivor's own row: it is then
removed and kept whole in the snapshot instead, and put back by the undo.

Raw column values travel through ``encode``/``decode``, which keep datetimes,
dates and decimals apart from strings (JSON has none of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, UniqueConstraint, and_, delete, insert, select, update

from engine.metadata.model import FieldType
from engine.storage.record_ids import dependent_tables
from engine.storage.tables import StorageSchema

_CHUNK = 500


def encode(value: Any) -> list[Any]:
    """A raw column value as JSON that ``decode`` turns back into the same value."""
    if isinstance(value, datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, time):
        return ["t", value.isoformat()]
    if isinstance(value, Decimal):
        return ["n", str(value)]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    return ["j", value]


def decode(item: Sequence[Any]) -> Any:
    """The value ``encode`` wrote."""
    tag, value = item[0], item[1]
    if tag == "dt":
        return datetime.fromisoformat(value)
    if tag == "d":
        return date.fromisoformat(value)
    if tag == "t":
        return time.fromisoformat(value)
    if tag == "n":
        return Decimal(value)
    if tag == "b":
        return bytes.fromhex(value)
    return value


def encode_row(row: Mapping[str, Any]) -> dict[str, list[Any]]:
    # str(): SQLAlchemy names are a str subclass that JSON encoders refuse as keys.
    return {str(name): encode(value) for name, value in row.items()}


def decode_row(row: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    return {name: decode(value) for name, value in row.items()}


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


@dataclass
class Moves:
    """What a merge re-pointed, as JSON-ready lists (stored in the merge's snapshot).

    ``children``: ``[entity, field, [[child id, old target id], ...]]``;
    ``system``: ``[table, [[primary key values..., old record id], ...]]``;
    ``removed``: ``[table, encoded row]`` for system rows that would have collided.
    """

    children: list[list[Any]] = field(default_factory=list)
    system: list[list[Any]] = field(default_factory=list)
    removed: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"children": self.children, "system": self.system, "removed": self.removed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Moves:
        return cls(list(data.get("children", [])), list(data.get("system", [])),
                   list(data.get("removed", [])))

    @property
    def count(self) -> int:
        return sum(len(c[2]) for c in self.children) + sum(len(s[1]) for s in self.system) \
            + len(self.removed)


def referring_fields(schema: StorageSchema, entity: str) -> list[tuple[str, str]]:
    """(entity, field) of every reference field whose target is ``entity``."""
    return [(child.name, f.name) for child in schema.registry.entities.values()
            for f in child.fields if f.type is FieldType.REFERENCE and f.target == entity
            and child.name in schema.tables]


def _key_sets(table: Table) -> list[tuple[str, ...]]:
    """The primary and unique keys of a system table that include ``record_id``."""
    sets = [tuple(c.name for c in table.primary_key.columns)]
    sets += [tuple(c.name for c in con.columns) for con in table.constraints
             if isinstance(con, UniqueConstraint)]
    return [s for s in sets if "record_id" in s]


#: Child records whose references changed: entity -> id -> {field: value before}.
Touched = dict[str, dict[int, dict[str, int]]]


def repoint(conn: Connection, schema: StorageSchema, entity: str, merged: Sequence[int],
            survivor: int) -> tuple[Moves, Touched]:
    """Point everything that names ``merged`` records at ``survivor``.

    Returns the moves (for the undo) and, per child entity, the child ids whose
    reference changed (for their write events).
    """
    moves = Moves()
    touched: Touched = {}
    for child, name in referring_fields(schema, entity):
        table = schema.table(child)
        column = table.c[name]
        where = [column.in_(merged)]
        if child == entity:  # the merged tombstones keep their own references
            where.append(table.c.id.not_in(merged))
        pairs = [[int(r[0]), int(r[1])] for r in conn.execute(
            select(table.c.id, column).where(*where).order_by(table.c.id))]
        if not pairs:
            continue
        ids = [p[0] for p in pairs]
        for chunk in _chunks(ids):
            conn.execute(update(table).where(table.c.id.in_(chunk))
                         .values({name: survivor, "version": table.c.version + 1}))
        moves.children.append([child, name, pairs])
        for child_id, old in pairs:
            touched.setdefault(child, {}).setdefault(child_id, {})[name] = old
    for table in dependent_tables(schema.system):
        _move_system(conn, table, entity, merged, survivor, moves)
    return moves, touched


def _move_system(conn: Connection, table: Table, entity: str, merged: Sequence[int],
                 survivor: int, moves: Moves) -> None:
    pk = [c.name for c in table.primary_key.columns]
    rows = conn.execute(select(table).where(table.c.entity == entity,
                                            table.c.record_id.in_(merged))
                        .order_by(*table.primary_key.columns)).mappings().all()
    if not rows:
        return
    keys = _key_sets(table)
    moved: list[list[Any]] = []
    if not keys:  # nothing can collide: one UPDATE
        conn.execute(update(table).where(table.c.entity == entity,
                                         table.c.record_id.in_(merged))
                     .values(record_id=survivor))
        rows, moved = [], [[*(row[c] for c in pk), int(row["record_id"])] for row in rows]
    for row in rows:
        match = [and_(*(table.c[c] == (survivor if c == "record_id" else row[c])
                        for c in key)) for key in keys]
        here = and_(*(table.c[c] == row[c] for c in pk))
        if any(conn.execute(select(table.c[pk[0]]).where(m).limit(1)).first() is not None
               for m in match):
            moves.removed.append([table.name, encode_row(dict(row))])
            conn.execute(delete(table).where(here))
            continue
        conn.execute(update(table).where(here).values(record_id=survivor))
        # The row's key after the move (its record_id may be part of it).
        moved.append([*(survivor if c == "record_id" else row[c] for c in pk),
                      int(row["record_id"])])
    if moved:
        moves.system.append([table.name, [[encode(v) for v in m[:-1]] + [m[-1]]
                                          for m in moved]])


def put_back(conn: Connection, schema: StorageSchema, entity: str, moves: Moves,
             survivor: int) -> tuple[Touched, int]:
    """Undo ``repoint``: rows still pointing at ``survivor`` go back where they were.

    A child re-pointed elsewhere since the merge, or a system row changed or
    gone since, is left as it is now (a later change wins); the count of such
    rows is returned with the child ids that moved back.
    """
    touched: Touched = {}
    skipped = 0
    for child, name, pairs in moves.children:
        if child not in schema.tables or name not in schema.table(child).c:
            skipped += len(pairs)   # the entity or field was removed since the merge
            continue
        table = schema.table(child)
        column = table.c[name]
        by_target: dict[int, list[int]] = {}
        for child_id, old in pairs:
            by_target.setdefault(int(old), []).append(int(child_id))
        for old, ids in sorted(by_target.items()):
            for chunk in _chunks(ids):
                back = conn.execute(update(table).where(table.c.id.in_(chunk),
                                                        column == survivor)
                                    .values({name: old, "version": table.c.version + 1})
                                    .returning(table.c.id)).scalars().all()
                skipped += len(chunk) - len(back)
                for child_id in back:
                    touched.setdefault(child, {}).setdefault(int(child_id), {})[name] = \
                        survivor
    system = schema.system
    for name, entries in moves.system:
        found = system.get(name)
        if found is None:
            skipped += len(entries)
            continue
        pk = [c.name for c in found.primary_key.columns]
        table = found
        for entry in entries:
            values = [decode(v) for v in entry[:-1]]
            result = conn.execute(update(table).where(
                table.c.entity == entity, table.c.record_id == survivor,
                *(table.c[c] == v for c, v in zip(pk, values)))
                .values(record_id=int(entry[-1])))
            skipped += 1 - result.rowcount
    for name, encoded in moves.removed:
        gone = system.get(name)
        if gone is None:
            skipped += 1
            continue
        table = gone
        row = {k: v for k, v in decode_row(encoded).items() if k in table.c}
        pk_columns = list(table.primary_key.columns)
        taken = and_(*(c == row[c.name] for c in pk_columns))
        if conn.execute(select(pk_columns[0]).where(taken)).first() is not None:
            skipped += 1
            continue
        conn.execute(insert(table).values(row))
    return touched, skipped
