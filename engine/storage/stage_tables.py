"""The stage history of pipelined records (owned by engine/records/stages.py).

One row per visit of a record to a stage: when it entered, when it left (NULL
while it is still there) and who moved it in. Time in stage is computed from
these rows, so they are written in the same transaction as the stage change.
``add_system_tables`` calls ``add_stage_tables`` so every ``MetaData`` has it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, MetaData, String, Table

from engine.storage.system_tables import USER_TABLE, IdType

STAGE_HISTORY_TABLE = "tp_stage_history"


def add_stage_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the stage history table on ``metadata`` and return it by name."""
    history = Table(
        STAGE_HISTORY_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("stage", String(63), nullable=False),
        Column("entered_at", DateTime(timezone=True), nullable=False),
        Column("left_at", DateTime(timezone=True)),
        Column("entered_by", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        # A record's visits in order, and its open visit (closed on the next move).
        Index("ix_tp_stage_history_record", "entity", "record_id", "id"),
    )
    return {history.name: history}
