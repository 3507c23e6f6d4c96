"""Records and feed entries as JSON: field values through ``coerce.to_json``.

Decimals (and money amounts) are strings, so no client float rounds them;
instants are ISO 8601 in UTC; references are ids. A record carries only the
fields its reader may see: the records service has already dropped hidden ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.metadata.model import Entity
from engine.records.activity import ActivityEntry
from engine.records.coerce import instant_json, json_writer
from engine.records.record import Record


def _instant(value: datetime) -> str:
    return instant_json(value)


#: Marks a key that is not a field of the entity (a system value).
_SYSTEM = object()


@dataclass(frozen=True)
class RecordWriter:
    """Turns one entity's records into JSON objects (built once per registry and entity).

    ``writers`` holds each field's ``json_writer`` (None: the value is JSON-safe
    as it is), looked up once here rather than dispatched per value: a page of
    50 records has a thousand values.
    """

    writers: dict[str, Callable[[Any], Any] | None]

    @classmethod
    def of(cls, entity: Entity) -> RecordWriter:
        return cls({f.name: json_writer(f) for f in entity.fields})

    def record(self, record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        writers = self.writers
        for name, value in record.items():
            writer = writers.get(name, _SYSTEM)
            if value is None or writer is None:
                out[name] = value
            elif writer is _SYSTEM:
                # created_at, updated_at, deleted_at; id, version, owner_id, stage...
                out[name] = instant_json(value) if isinstance(value, datetime) else value
            else:
                out[name] = writer(value)  # type: ignore[operator]
        return out

    def records(self, records: Iterable[Record]) -> list[dict[str, Any]]:
        return [self.record(r) for r in records]


def activity_entry(entry: ActivityEntry) -> dict[str, Any]:
    """One feed line; ``changes`` values are already JSON-safe (stored through ``to_json``)."""
    return {
        "id": entry.id,
        "kind": entry.kind,
        "actor_id": entry.actor_id,
        "at": _instant(entry.at),
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in entry.changes],
        "body": entry.body,
        "via": entry.via,
    }
