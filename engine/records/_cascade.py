"""What a hard delete takes with it: the rows that name the deleted records by id.

Shares, stage history and the activity feed point at a record as ``(entity,
record_id)``, which no foreign key can hold, so the database would leave them
behind. Left behind, a share keeps granting whatever record later carries that
id. ``remove_dependents`` deletes them in the delete's own transaction, for the
record and for every record the database is about to delete with it through a
reference field declared ``on_delete: cascade`` (found before the delete, since
afterwards they are gone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, select

from engine.metadata.model import FieldType, OnDelete
from engine.storage.record_ids import dependent_tables
from engine.storage.tables import StorageSchema

#: Ids per IN list: well below SQLite's bound-parameter limit.
_CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def cascade_closure(conn: Connection, schema: StorageSchema, entity: str,
                    record_ids: Sequence[int]) -> dict[str, set[int]]:
    """Every record a hard delete of ``record_ids`` removes, by entity (the records too)."""
    doomed: dict[str, set[int]] = {entity: set(record_ids)}
    todo: list[tuple[str, Sequence[int]]] = [(entity, list(record_ids))]
    while todo:
        target, ids = todo.pop()
        for child in schema.registry.entities.values():
            for field in child.fields:
                if (field.type is not FieldType.REFERENCE or field.target != target
                        or field.on_delete is not OnDelete.CASCADE):
                    continue
                table = schema.table(child.name)
                found: set[int] = set()
                for chunk in _chunks(ids):
                    found.update(int(i) for i in conn.execute(
                        select(table.c.id).where(table.c[field.name].in_(chunk))).scalars())
                new = sorted(found - doomed.setdefault(child.name, set()))
                if new:
                    doomed[child.name].update(new)
                    todo.append((child.name, new))
    return doomed


def remove_dependents(conn: Connection, schema: StorageSchema, entity: str,
                      record_ids: Sequence[int]) -> None:
    """Delete the shares, history and feed rows of records about to be hard-deleted."""
    dependents = dependent_tables(schema.system)
    for name, ids in cascade_closure(conn, schema, entity, record_ids).items():
        ordered = sorted(ids)
        for dependent in dependents:
            for chunk in _chunks(ordered):
                conn.execute(delete(dependent).where(dependent.c.entity == name,
                                                     dependent.c.record_id.in_(chunk)))
