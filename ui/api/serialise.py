"""Records and feed entries as JSON: field values through ``coerce.to_json``.

Decimals (and money amounts) are strings, so no client float rounds them;
instants are ISO 8601 in UTC; references are ids. A record carries only the
fields its reader may see: the records service has already dropped hidden ones.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.metadata.model import Entity, FieldType
from engine.records.activity import ActivityEntry
from engine.records.coerce import instant_json, json_writer
from engine.records.record import Record
from engine.records.uploads import public_value

#: Where ui/app.py mounts the API: file values link to their download route under it.
API_PATH = "/api/v1"


def _instant(value: datetime) -> str:
    return instant_json(value)


_ZERO = timedelta(0)
#: Marks a key that is not a field of the entity (a system value).
_SYSTEM = object()


#: Field types whose values orjson writes as ``to_json`` would: the object is encoded
#: and dropped, so the copies ``to_json`` makes for a caller who keeps it are not
#: needed, and orjson writes a date as ``isoformat`` does. Instants: see ``_system_value``.
_ENCODER_TAKES = frozenset({FieldType.DATE, FieldType.MULTI_SELECT, FieldType.GEO_POINT,
                            FieldType.ADDRESS, FieldType.FILE})
#: Writers built per entity definition (a registry swap brings new definitions).
_WRITERS: dict[int, tuple[Entity, RecordWriter]] = {}
_WRITERS_LOCK = threading.Lock()
_MAX_WRITERS = 256


def _system_value(value: datetime) -> Any:
    # Instants (created_at, updated_at, deleted_at, datetime fields): aware UTC ones
    # (what both databases return) go to the JSON encoder as they are: orjson writes
    # them as isoformat would, at a tenth the cost.
    if value.utcoffset() != _ZERO:
        return instant_json(value)
    return value


def _compile(keys: tuple[str, ...],
             writers: dict[str, Callable[[Any], Any] | None]) -> Callable[[Any], dict[str, Any]]:
    """One function returning a dict literal for records with exactly ``keys``.

    A page of 50 records has a thousand values: looking each one's writer up and
    testing it per value cost more than the SQL of the page (issue 13). The source
    holds only ``repr()`` of registry identifiers; writers are passed by name.
    """
    namespace: dict[str, Any] = {"_system": _system_value, "_datetime": datetime}
    parts = []
    for i, key in enumerate(keys):
        writer = writers.get(key, _SYSTEM)
        if writer is None:
            parts.append(f"{key!r}: v[{key!r}]")
        elif writer is _SYSTEM or writer is _system_value:  # only an instant needs a look
            parts.append(f"{key!r}: x if isinstance(x := v[{key!r}], _datetime) is False "
                         "else _system(x)")
        else:
            name = f"_w{i}"
            namespace[name] = writer
            parts.append(f"{key!r}: None if (x := v[{key!r}]) is None else {name}(x)")
    exec("def write(v):\n    return {" + ", ".join(parts) + "}\n", namespace)  # noqa: S102
    write: Callable[[Any], dict[str, Any]] = namespace["write"]
    return write


@dataclass(frozen=True)
class RecordWriter:
    """Turns one entity's records into JSON objects (built once per entity definition).

    ``writers`` holds each field's ``json_writer`` (None: the value is JSON-safe
    as it is), looked up once here rather than dispatched per value; the records
    of a page share their keys (the same fields hidden from the same reader), so
    each set of keys is compiled once into a function building the whole object.
    """

    writers: dict[str, Callable[[Any], Any] | None]
    #: File fields: shown as name, size, type and download URL, never the storage key.
    files: frozenset[str] = frozenset()
    entity: str = ""
    _compiled: dict[tuple[str, ...], Callable[[Any], dict[str, Any]]] = \
        dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, entity: Entity) -> RecordWriter:
        """The writer of ``entity``, built at its first use and kept with the definition."""
        found = _WRITERS.get(id(entity))
        if found is not None and found[0] is entity:
            return found[1]
        writer = cls({f.name: None if f.type in _ENCODER_TAKES
                      else _system_value if f.type is FieldType.DATETIME
                      else json_writer(f) for f in entity.fields},
                     frozenset(f.name for f in entity.fields if f.type is FieldType.FILE),
                     entity.name)
        with _WRITERS_LOCK:
            if len(_WRITERS) >= _MAX_WRITERS:
                _WRITERS.clear()
            _WRITERS[id(entity)] = (entity, writer)  # the entity kept alive: ids stay unique
        return writer

    def _writer_for(self, values: Mapping[str, Any]) -> Callable[[Any], dict[str, Any]]:
        keys = tuple(values)
        found = self._compiled.get(keys)
        if found is None:
            # Racing threads may both compile; either function is right.
            found = self._compiled[keys] = _compile(keys, self.writers)
        return found

    def record(self, record: Record) -> dict[str, Any]:
        return self._written(record.mapping())

    def _written(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = self._writer_for(values)(values)
        for name in self.files:
            value = out.get(name)
            if isinstance(value, dict):
                out[name] = {**public_value(value),
                             "url": f"{API_PATH}/{self.entity}/{values['id']}/files/{name}"}
        return out

    def values_page(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A ``RecordService.list_json`` page's rows for ``json_response``: what ``record``
        writes for each of the same records. The rows are already what orjson writes (their
        documents possibly ``orjson.Fragment`` s), so only file values are rewritten."""
        if self.files:
            return [self._written(values) for values in rows]
        return rows


def _shown(field: str, value: Any, files: frozenset[str]) -> Any:
    return public_value(value) if field in files and isinstance(value, dict) else value


def activity_entry(entry: ActivityEntry, *, files: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One feed line; ``changes`` values are already JSON-safe (stored through ``to_json``).

    ``files``: the entity's file fields, whose storage keys the feed never shows.
    """
    return {
        "id": entry.id,
        "kind": entry.kind,
        "actor_id": entry.actor_id,
        "at": _instant(entry.at),
        "changes": [{"field": c.field, "old": _shown(c.field, c.old, files),
                     "new": _shown(c.field, c.new, files)} for c in entry.changes],
        "body": entry.body,
        "via": entry.via,
    }
