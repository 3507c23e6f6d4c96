"""Saved list views (owned by engine/records/saved_views.py).

A saved view is a named list state of one entity -- filters, search, sort and
columns as the list screen serialises them -- kept for its owner, or shared with
everyone. It stores a query, never rows: whoever opens a shared view still sees
only the records their own permissions allow. ``add_system_tables`` calls
``add_view_tables`` so every ``MetaData`` has the table.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

from engine.storage.system_tables import USER_TABLE, IdType, JsonType

SAVED_VIEW_TABLE = "tp_saved_view"


def add_view_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the saved-view table on ``metadata`` and return it by name."""
    view = Table(
        SAVED_VIEW_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("owner_id", IdType, ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
               nullable=False),
        Column("entity", String(63), nullable=False),
        Column("name", String(100), nullable=False),
        Column("shared", Boolean, nullable=False, default=False),
        # {"param": ["value", ...]}: the list screen's query parameters
        Column("state", JsonType, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("owner_id", "entity", "name"),
        Index("ix_tp_saved_view_shared", "entity", "shared"),
    )
    return {view.name: view}
