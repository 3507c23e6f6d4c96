"""What the database holds now: the metadata last applied, its history, its archives.

The applied metadata is the registry document stored in ``tp_metadata_version``
by the migration that produced it; one row per version, the newest last. It is
read back with ``registry_from_document``, so the planner diffs two registries
of the same shape whatever the package files say today.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, MetaData, Table, func, inspect, select

from engine.metadata.model import Registry
from engine.metadata.parse import registry_from_document
from engine.storage.migration_tables import ARCHIVE_TABLE
from engine.storage.system_tables import NAMING_CONVENTION, add_system_tables

METADATA_VERSION_TABLE = "tp_metadata_version"

# Read-only table objects for the engine's own tables (never changed after import).
SYSTEM_TABLES: Mapping[str, Table] = add_system_tables(MetaData(naming_convention=NAMING_CONVENTION))


@dataclass(frozen=True)
class MetadataVersion:
    """One applied metadata version: what, when, by whom, and the plan that got there."""

    id: int
    fingerprint: str
    applied_at: dt.datetime
    applied_by: str | None
    plan: Mapping[str, Any] | None


@dataclass(frozen=True)
class Archive:
    """Something a migration archived: a field's columns or a whole entity table."""

    id: int
    entity: str
    field: str | None
    table_name: str
    columns: tuple[tuple[str, str], ...]   # (original, archived)
    definition: Mapping[str, Any] | None


def _has(conn: Connection, table: str) -> bool:
    return inspect(conn).has_table(table)


def applied_registry(conn: Connection) -> Registry | None:
    """The registry last applied to this database, or None if none ever was."""
    if not _has(conn, METADATA_VERSION_TABLE):
        return None
    table = SYSTEM_TABLES[METADATA_VERSION_TABLE]
    document = conn.execute(
        select(table.c.document).order_by(table.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    if document is None:
        return None
    return registry_from_document(_plain(document))


def metadata_history(conn: Connection) -> list[MetadataVersion]:
    """Every applied version, oldest first (an empty list on a fresh database)."""
    if not _has(conn, METADATA_VERSION_TABLE):
        return []
    table = SYSTEM_TABLES[METADATA_VERSION_TABLE]
    rows = conn.execute(
        select(table.c.id, table.c.fingerprint, table.c.applied_at, table.c.applied_by,
               table.c.plan).order_by(table.c.id)
    )
    return [MetadataVersion(id=r.id, fingerprint=r.fingerprint, applied_at=r.applied_at,
                            applied_by=r.applied_by, plan=r.plan) for r in rows]


def record_version(conn: Connection, *, registry: Registry, plan: Mapping[str, Any],
                   actor: str) -> int:
    """Store ``registry`` as the applied metadata; returns the new version id."""
    table = SYSTEM_TABLES[METADATA_VERSION_TABLE]
    result = conn.execute(table.insert().values(
        fingerprint=registry.fingerprint,
        document=_plain(registry.document),
        plan=_plain(plan),
        applied_at=dt.datetime.now(dt.UTC),
        applied_by=actor,
    ))
    key = result.inserted_primary_key
    if key is None:  # every supported dialect returns it; say so if one does not
        raise RuntimeError("the database did not return the new version's id")
    return int(key[0])


def live_archives(conn: Connection) -> list[Archive]:
    """Archives neither purged nor restored, oldest first."""
    if not _has(conn, ARCHIVE_TABLE):
        return []
    table = SYSTEM_TABLES[ARCHIVE_TABLE]
    rows = conn.execute(
        select(table).where(table.c.purged_at.is_(None), table.c.restored_at.is_(None))
        .order_by(table.c.id)
    )
    return [Archive(id=r.id, entity=r.entity, field=r.field, table_name=r.table_name,
                    columns=tuple((a, b) for a, b in r.columns), definition=r.definition)
            for r in rows]


def _plain(value: Any) -> Any:
    """Mappings (including read-only proxies) and tuples as plain JSON values."""
    return json.loads(json.dumps(value, default=dict))


def applied_version(conn: Connection) -> int | None:
    """The id of the metadata version last applied (a cheap stamp to poll), or None."""
    if not _has(conn, METADATA_VERSION_TABLE):
        return None
    table = SYSTEM_TABLES[METADATA_VERSION_TABLE]
    return conn.execute(select(func.max(table.c.id))).scalar_one_or_none()
