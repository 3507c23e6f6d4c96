"""System tables of the migration machinery (beside ``tp_metadata_version``).

``tp_archive`` remembers what a migration archived instead of dropping: a removed
field's columns (renamed ``_archived_<field>_<n>``) or a removed entity's table
(renamed ``_archived_<entity>_<n>``). Purging and restoring read it, so the
planner never has to guess from column names what belonged to which field.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

from engine.storage.system_tables import IdType, JsonType

ARCHIVE_TABLE = "tp_archive"


def add_migration_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the migration tables on ``metadata`` and return them by name."""
    archive = Table(
        ARCHIVE_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("field", String(63)),                 # None when a whole table was archived
        Column("table_name", String(63), nullable=False),  # where the archived data lives now
        # [[original column, archived column], ...]; empty for a whole table
        Column("columns", JsonType, nullable=False),
        Column("definition", JsonType),              # the field or entity document it had
        Column("archived_at", DateTime(timezone=True), nullable=False),
        Column("archived_by", String(200)),
        Column("purged_at", DateTime(timezone=True)),
        Column("restored_at", DateTime(timezone=True)),
        Index("ix_tp_archive_entity", "entity", "field"),
    )
    return {archive.name: archive}
