"""The activity feed: one ``tp_activity`` row per change, written in the change's transaction.

``changes`` holds ``[{"field", "old", "new"}]`` with JSON-safe values (``to_json``),
so the feed reads the same whatever the database; only fields that changed are
listed on an update. A create's entry, whose ``old`` values are all null, is
stored flat as ``[field, new, field, new, ...]`` (``created``): a bulk create
writes one per row, and the flat form is about half the bytes and no dict per
field. ``read`` turns both forms into the same ``Change`` lines; entries written
in the older form (a list of dicts for creates too) read as they always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from engine.records._plan import EntityPlan, utc
from engine.records.coerce import to_json

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
RESTORE = "restore"
COMMENT = "comment"
ASSIGN = "assign"
ACTIVITY_TABLE = "tp_activity"


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class ActivityEntry:
    """One line of a record's feed."""

    id: int
    entity: str
    record_id: int
    kind: str
    actor_id: int | None
    at: datetime
    changes: tuple[Change, ...]
    body: str | None = None
    via: str | None = None  # the rule or job behind a system write


def diff(plan: EntityPlan, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON-safe ``{field, old, new}`` for each field whose value differs."""
    changes = []
    for name, value in new.items():
        fp = plan.fields.get(name)
        if fp is None:
            continue
        before = old.get(name)
        json_new = to_json(fp.field, value)
        json_old = to_json(fp.field, before)
        if json_new != json_old:
            changes.append({"field": name, "old": json_old, "new": json_new})
    return changes


def created(plan: EntityPlan, values: Mapping[str, Any]) -> list[Any]:
    """The stored changes of a new record, flat: ``[field, new, ...]`` for every field
    given a value (compiled per entity; ``changes_of`` reads them back)."""
    return plan.created_changes(values)


def changes_of(stored: Sequence[Any] | None, hidden: frozenset[str]) -> tuple[Change, ...]:
    """The ``Change`` lines of a stored ``changes`` value, either form (module doc),
    without the fields in ``hidden``."""
    if not stored:
        return ()
    if stored[0].__class__ is str:  # a create's flat pairs: the other form holds dicts
        pairs = iter(stored)
        return tuple(Change(name, None, new) for name, new in zip(pairs, pairs)
                     if name not in hidden)
    return tuple(Change(c["field"], c.get("old"), c.get("new"))
                 for c in stored if c.get("field") not in hidden)


def row(plan: EntityPlan, *, record_id: int, kind: str, actor_id: int | None, at: datetime,
        changes: Sequence[Mapping[str, Any]] | None, via: str | None = None) -> dict[str, Any]:
    """The ``tp_activity`` row for one change."""
    return {"entity": plan.name, "record_id": record_id, "kind": kind, "actor_id": actor_id,
            "at": at, "changes": list(changes) if changes is not None else None, "body": None,
            "via": via}


def read(conn: Connection, table: Table, *, entity: str, record_id: int, limit: int,
         before_id: int | None, since: datetime | None,
         hidden: frozenset[str]) -> list[ActivityEntry]:
    """The newest ``limit`` entries of a record's feed (older than ``before_id`` if given)."""
    stmt = select(table).where(table.c.entity == entity, table.c.record_id == record_id)
    if since is not None:
        stmt = stmt.where(table.c.at >= since)
    if before_id is not None:
        stmt = stmt.where(table.c.id < before_id)
    stmt = stmt.order_by(table.c.id.desc()).limit(limit)
    entries = []
    for r in conn.execute(stmt).mappings():
        entries.append(ActivityEntry(
            id=r["id"], entity=r["entity"], record_id=r["record_id"], kind=r["kind"],
            actor_id=r["actor_id"], at=utc(r["at"]) or r["at"],
            changes=changes_of(r["changes"], hidden),
            body=r["body"], via=r["via"]))
    return entries
