"""The ledger of uploaded files (owned by engine/records/uploads.py).

A file field's value keeps a *storage key* (where the bytes lie). Clients never
choose or see one: an upload is stored by the server, which records it here
with an opaque ``token`` handed to the uploader; a write names the token, and
the records service replaces it with the stored value and binds the upload to
that record and field (``record_id``, ``attached_at``) in the write's own
transaction. A token is good once, for its entity and field, and only in the
hands of who uploaded it. ``add_system_tables`` calls ``add_upload_tables``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, MetaData, String, Table

from engine.storage.system_tables import USER_TABLE, IdType, InstantType

UPLOAD_TABLE = "tp_upload"


def add_upload_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the upload ledger on ``metadata`` and return it by name."""
    upload = Table(
        UPLOAD_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("token", String(64), nullable=False, unique=True),
        Column("storage_key", String(255), nullable=False, unique=True),
        Column("entity", String(63), nullable=False),
        Column("field", String(63), nullable=False),
        Column("uploaded_by", BigInteger, ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL")),
        Column("name", String(255), nullable=False),
        Column("size", BigInteger, nullable=False),
        Column("content_type", String(255), nullable=False),
        Column("created_at", InstantType, nullable=False),
        # Set when a write takes the upload: from then on it belongs to that record.
        Column("record_id", BigInteger),
        Column("attached_at", InstantType),
        Index("ix_tp_upload_record", "entity", "record_id"),
    )
    return {upload.name: upload}
