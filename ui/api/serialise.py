"""Records and feed entries as JSON: field values through ``coerce.to_json``.

Decimals (and money amounts) are strings, so no client float rounds them;
instants are ISO 8601 in UTC; references are ids. A record carries only the
fields its reader may see: the records service has already dropped hidden ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.metadata.model import Entity, Field
from engine.records.activity import ActivityEntry
from engine.records.coerce import to_json
from engine.records.record import Record


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class RecordWriter:
    """Turns one entity's records into JSON objects (built once per registry and entity)."""

    fields: dict[str, Field]

    @classmethod
    def of(cls, entity: Entity) -> RecordWriter:
        return cls({f.name: f for f in entity.fields})

    def record(self, record: Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = self.fields
        for name, value in record.items():
            field = fields.get(name)
            if field is not None:
                out[name] = to_json(field, value)
            elif isinstance(value, datetime):
                out[name] = _instant(value)  # created_at, updated_at, deleted_at
            else:
                out[name] = value  # id, version, owner_id, pool_id, stage...
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
    }
