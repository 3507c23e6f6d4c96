"""In-app notifications (owned by engine/workflow/notifications.py).

One row per message to one user: a record assigned to them, a record they
returned claimed by someone else, a record taken back from them (rule drop or
recycle), a warning before a rule drops their record, a mention in a comment.
Rows point at a record and never copy its fields: what a user sees is read
through their permissions when the notification is shown. Many records moved
alike for one user by one batch (a rule run, a bulk recycle or assignment) make
one row, a digest: ``record_count`` records, ``record_id`` the first of them, ``pool``
the pool they went to (or came from, for an assignment).
``add_system_tables`` calls ``add_notification_tables`` so every ``MetaData`` has it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

from engine.storage.system_tables import USER_TABLE, IdType, InstantType

NOTIFICATION_TABLE = "tp_notification"


def add_notification_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the notification table on ``metadata`` and return it by name."""
    user_fk = f"{USER_TABLE}.id"
    table = Table(
        NOTIFICATION_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("user_id", BigInteger, ForeignKey(user_fk, ondelete="CASCADE"), nullable=False),
        Column("kind", String(16), nullable=False),  # engine.workflow.notifications.KINDS
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("actor_id", BigInteger, ForeignKey(user_fk, ondelete="SET NULL")),
        Column("rule", String(127)),     # "<pool>.<rule>" when a rule acted or warns
        Column("reason", Text),          # the reason given, or the mentioning comment
        Column("due_at", InstantType),   # warnings: when the rule drops the record
        Column("at", InstantType, nullable=False),
        Column("read_at", InstantType),
        # Digests of a batch (None or 1: the one record ``record_id``).
        Column("record_count", Integer),
        Column("pool", String(63)),
        # The bell and the page: a user's newest, unread first.
        Index("ix_tp_notification_user", "user_id", "read_at", "id"),
    )
    return {table.name: table}
