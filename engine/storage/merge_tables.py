"""The merge ledger (owned by engine/records/merge.py).

``tp_merge`` keeps one row per merge: the survivor, the merged ids and a JSON
snapshot of everything the merge changed (the merged rows, the survivor's prior
values, every reference it re-pointed), which is what its undo restores.
``tp_merged`` maps each merged id to its survivor while the merge stands, so a
request for a merged record can be sent on to the record it became.

Neither table has a ``record_id`` column on purpose: they are not dependents
(engine/storage/record_ids.py) that a later merge or hard delete would move.
``add_system_tables`` calls ``add_merge_tables``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, MetaData, String, Table

from engine.storage.system_tables import USER_TABLE, IdType, InstantType, JsonType

MERGE_TABLE = "tp_merge"
MERGED_TABLE = "tp_merged"


def add_merge_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the merge ledger on ``metadata`` and return its tables by name."""
    merge = Table(
        MERGE_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("survivor_id", BigInteger, nullable=False),
        Column("merged_ids", JsonType, nullable=False),
        Column("snapshot", JsonType, nullable=False),
        Column("actor_id", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Column("at", InstantType, nullable=False),
        Column("undone_at", InstantType),
        Column("undone_by", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Index("ix_tp_merge_survivor", "entity", "survivor_id"),
    )
    merged = Table(
        MERGED_TABLE, metadata,
        Column("entity", String(63), primary_key=True),
        Column("merged_id", BigInteger, primary_key=True),
        Column("merge_id", BigInteger, ForeignKey(f"{MERGE_TABLE}.id", ondelete="CASCADE"),
               nullable=False),
        Column("survivor_id", BigInteger, nullable=False),
        # The merged record's creation: its feed entries, now the survivor's, are as old.
        Column("created_at", InstantType, nullable=False),
        Index("ix_tp_merged_survivor", "entity", "survivor_id"),
    )
    return {merge.name: merge, merged.name: merged}
