"""Admin customisations stored in the database, as plain documents.

The admin UI writes them; the metadata loader reads them and applies them as
overlays on the app packages (registry = packages + customisations). Storage
only keeps the documents: it does not interpret them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from engine.errors import MetadataError, MetadataIssue
from engine.storage.applied import SYSTEM_TABLES

CUSTOMISATION_TABLE = "tp_customisation"
#: What a customisation may be; the loader knows how to apply each.
CUSTOMISATION_KINDS = ("entity", "overlay", "pipeline", "pool", "role", "report", "dashboard",
                       "leaderboard")


def load_customisations(conn: Connection) -> list[dict[str, Any]]:
    """Every stored customisation as ``{id, kind, name, document, updated_at, updated_by}``,
    in the order they were first saved."""
    table = SYSTEM_TABLES[CUSTOMISATION_TABLE]
    rows = conn.execute(select(table).order_by(table.c.id)).mappings()
    return [dict(row) for row in rows]


def save_customisation(conn: Connection, *, kind: str, name: str, document: Mapping[str, Any],
                       user_id: int | None) -> int:
    """Insert or replace the customisation ``(kind, name)``; returns its id.

    Runs on the caller's connection so it commits with the caller's transaction.
    """
    where = f"/{CUSTOMISATION_TABLE}/{kind}/{name}"
    if kind not in CUSTOMISATION_KINDS:
        raise MetadataError([MetadataIssue(
            "<customisation>", where,
            f"unknown kind {kind!r}; expected one of {', '.join(CUSTOMISATION_KINDS)}")])
    if not name or len(name) > 127:
        raise MetadataError([MetadataIssue("<customisation>", where,
                                           "name must be 1 to 127 characters")])
    try:
        plain = json.loads(json.dumps(document, default=dict))
    except (TypeError, ValueError) as exc:
        raise MetadataError([MetadataIssue("<customisation>", where,
                                           f"document is not JSON: {exc}")]) from None
    if not isinstance(plain, dict):
        raise MetadataError([MetadataIssue("<customisation>", where,
                                           "document must be a JSON object")])
    table = SYSTEM_TABLES[CUSTOMISATION_TABLE]
    values = {"document": plain, "updated_at": dt.datetime.now(dt.UTC), "updated_by": user_id}
    existing = conn.execute(
        select(table.c.id).where(table.c.kind == kind, table.c.name == name)
    ).scalar_one_or_none()
    if existing is not None:
        conn.execute(table.update().where(table.c.id == existing).values(**values))
        return int(existing)
    result = conn.execute(table.insert().values(kind=kind, name=name, **values))
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database did not return the new customisation's id")
    return int(key[0])
