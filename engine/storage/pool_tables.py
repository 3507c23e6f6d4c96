"""The pool-event ledger (owned by engine/workflow/): one row per pool operation.

Claims, returns, assignments, recycles, moves, locks, unlocks and automatic
drops each append a row with who acted, the owners before and after, the
reason and the rule. Limits are answered by query on it: claims by a user
today, how often a record was returned, when a user last lost a record
(previous-owner cooldown), when a record entered its pool (new-record
protection). ``tp_pool_lock`` holds the records locked by their owner (a
locked record never drops); its rows are counted for the per-user lock cap.
``add_system_tables`` calls ``add_pool_tables`` so every ``MetaData`` has them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from engine.storage.system_tables import USER_TABLE, IdType, InstantType

POOL_EVENT_TABLE = "tp_pool_event"
POOL_LOCK_TABLE = "tp_pool_lock"

#: Every kind of ledger row.
POOL_EVENT_KINDS = ("claim", "return", "assign", "recycle", "move", "lock", "unlock", "drop")


def add_pool_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the ledger and lock tables on ``metadata`` and return them by name."""
    user_fk = f"{USER_TABLE}.id"
    ledger = Table(
        POOL_EVENT_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("pool", String(63)),  # the pool involved (source or target); NULL: none
        Column("kind", String(16), nullable=False),  # POOL_EVENT_KINDS
        Column("actor_id", BigInteger, ForeignKey(user_fk, ondelete="SET NULL")),
        Column("from_owner", BigInteger, ForeignKey(user_fk, ondelete="SET NULL")),
        Column("to_owner", BigInteger, ForeignKey(user_fk, ondelete="SET NULL")),
        Column("reason", Text),
        Column("rule", String(127)),  # "<pool>.<rule>" when a rule acted
        Column("at", InstantType, nullable=False),
        # Claims by a user (today, in a pool): the daily cap.
        Index("ix_tp_pool_event_to_owner", "to_owner", "kind", "at"),
        # What happened to a record: returned N times, when it entered its pool.
        Index("ix_tp_pool_event_record", "entity", "record_id", "kind", "at"),
        # When a user last lost a record: the previous-owner cooldown.
        Index("ix_tp_pool_event_from_owner", "from_owner", "entity", "record_id", "at"),
    )
    lock = Table(
        POOL_LOCK_TABLE, metadata,
        Column("entity", String(63), primary_key=True),
        Column("record_id", BigInteger, primary_key=True),
        Column("user_id", BigInteger, ForeignKey(user_fk, ondelete="CASCADE"), nullable=False),
        Column("pool", String(63)),  # the pool whose lock cap it counts against
        Column("at", InstantType, nullable=False),
        Index("ix_tp_pool_lock_user", "user_id", "entity"),
    )
    return {ledger.name: ledger, lock.name: lock}
