"""Column mappings of imports, remembered per user, entity and header set.

People import the same spreadsheet export week after week; asking them to map the
same columns again is friction that leads to mistakes. A confirmed mapping is
kept here (it outlives the server process, unlike the upload itself) and offered
when a file with the same set of headers is uploaded again for the same entity:
first the user's own mapping, else the latest one anyone confirmed for that
header set (a team shares one export format). Only the mapping is kept, never
cells. ``add_system_tables`` calls ``add_import_tables``; ``migrate`` creates the
table on databases made before it existed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError

from engine.storage.matchkeys import text_key
from engine.storage.system_tables import USER_TABLE, IdType, InstantType, JsonType

IMPORT_MAPPING_TABLE = "tp_import_mapping"


def add_import_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the import-mapping table on ``metadata`` and return it by name."""
    mapping = Table(
        IMPORT_MAPPING_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("user_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
               nullable=False),
        Column("entity", String(63), nullable=False),
        # sha256 of the header set (headers as match keys, sorted): column order and
        # spelling (case, width, spaces) do not make a new set.
        Column("headers_key", String(64), nullable=False),
        Column("mapping", JsonType, nullable=False),   # {"header": "field", ...}
        Column("updated_at", InstantType, nullable=False),
        UniqueConstraint("user_id", "entity", "headers_key"),
        Index("ix_tp_import_mapping_shared", "entity", "headers_key", "updated_at"),
    )
    return {mapping.name: mapping}


def headers_key(headers: Sequence[str]) -> str:
    """The identity of a header set: order, case, width and spacing ignored."""
    keys = sorted({text_key(h) or "" for h in headers})
    return hashlib.sha256("\x1f".join(keys).encode("utf-8")).hexdigest()


def _table() -> Table:
    from engine.storage.applied import SYSTEM_TABLES  # applied builds the tables from this module
    return SYSTEM_TABLES[IMPORT_MAPPING_TABLE]


def recall(conn: Connection, *, user_id: int | None, entity: str,
           headers: Sequence[str]) -> dict[str, str] | None:
    """The mapping to offer for this header set: the user's own, else the newest anyone
    confirmed; None when there is none (or the table is not there yet)."""
    if not conn.dialect.has_table(conn, IMPORT_MAPPING_TABLE):
        return None
    table, key = _table(), headers_key(headers)
    base = select(table.c.mapping).where(table.c.entity == entity, table.c.headers_key == key)
    found = None
    if user_id is not None:
        found = conn.execute(base.where(table.c.user_id == user_id)).scalar()
    if found is None:
        found = conn.execute(base.order_by(table.c.updated_at.desc(), table.c.id.desc())
                             .limit(1)).scalar()
    if not isinstance(found, dict):
        return None
    return {str(h): str(f) for h, f in found.items()}


def remember(conn: Connection, *, user_id: int | None, entity: str, headers: Sequence[str],
             mapping: Mapping[str, str]) -> None:
    """Keep ``mapping`` (header -> field) as the user's for this entity and header set,
    in the caller's transaction. A system actor (no user) has nothing to remember."""
    if user_id is None:
        return
    table, key = _table(), headers_key(headers)
    now = dt.datetime.now(dt.UTC)
    where = (table.c.user_id == user_id, table.c.entity == entity, table.c.headers_key == key)
    done = conn.execute(table.update().where(*where)
                        .values(mapping=dict(mapping), updated_at=now)).rowcount
    if done:
        return
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(user_id=user_id, entity=entity,
                                               headers_key=key, mapping=dict(mapping),
                                               updated_at=now))
    except IntegrityError:  # the same user confirmed twice at once: the later one wins
        conn.execute(table.update().where(*where).values(mapping=dict(mapping),
                                                         updated_at=now))
