"""Tables of automatic rules, distribution and background jobs.

- ``tp_job``: leased rows for work that several processes may start at once
  (the rule scheduler today, imports and long migrations later). A process
  takes a row by a conditional UPDATE of its lease; only the holder works on
  it, and progress is written back so an admin can see it.
- ``tp_record_clock``: per pooled record, when it last got an owner and when it
  was last touched (kept by in-transaction write hooks, engine/workflow/clocks.py),
  the clocks rules measure. A side table keeps the entity tables free of
  workflow columns and is one indexed join for a rule's set-based statement.
- ``tp_rule_warning``: a warning sent to an owner before a rule drops a
  record, once per record, rule and clock start (so a run can repeat safely).
- ``tp_distribution_cursor``: the round-robin position per team.
- ``tp_unplaced``: why a record that distribution could not place stayed in
  its pool.

``add_system_tables`` calls ``add_rule_tables`` so every ``MetaData`` has them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engine.storage.system_tables import IdType, InstantType, JsonType

JOB_TABLE = "tp_job"
CLOCK_TABLE = "tp_record_clock"
WARNING_TABLE = "tp_rule_warning"
CURSOR_TABLE = "tp_distribution_cursor"
UNPLACED_TABLE = "tp_unplaced"


def add_rule_tables(metadata: MetaData) -> dict[str, Table]:
    """Define the job, clock, warning, cursor and unplaced tables on ``metadata``."""
    job = Table(
        JOB_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("kind", String(63), nullable=False),     # e.g. pool_rule, import
        Column("key", String(255), nullable=False),     # e.g. <pool>.<rule>
        # idle | running | done | failed
        Column("state", String(16), nullable=False, default="idle"),
        Column("lease_owner", String(100)),
        Column("lease_expires_at", InstantType),
        Column("progress", JsonType),                   # {"done": n, "total": n, ...}
        Column("runs", Integer, nullable=False, default=0),
        Column("error", Text),
        Column("created_at", InstantType, nullable=False),
        Column("started_at", InstantType),
        Column("finished_at", InstantType),
        UniqueConstraint("kind", "key"),
    )
    clock = Table(
        CLOCK_TABLE, metadata,
        Column("entity", String(63), primary_key=True),
        Column("record_id", BigInteger, primary_key=True),
        Column("owned_at", InstantType),
        Column("touched_at", InstantType),
        Column("pool", String(63)),   # the pool it last left (several pools per entity)
    )
    warning = Table(
        WARNING_TABLE, metadata,
        Column("id", IdType, primary_key=True, autoincrement=True),
        Column("entity", String(63), nullable=False),
        Column("record_id", BigInteger, nullable=False),
        Column("pool", String(63), nullable=False),
        Column("rule", String(63), nullable=False),
        Column("owner_id", BigInteger, nullable=False),
        Column("due_at", InstantType, nullable=False),
        Column("warned_at", InstantType, nullable=False),
        Column("read_at", InstantType),
        UniqueConstraint("entity", "record_id", "rule", "pool", "owner_id", "due_at"),
        Index("ix_tp_rule_warning_owner", "owner_id", "id"),
    )
    cursor = Table(
        CURSOR_TABLE, metadata,
        Column("scope", String(255), primary_key=True),  # pool:<name>:<target kind>:<key>
        Column("last_user_id", BigInteger, nullable=False),
    )
    unplaced = Table(
        UNPLACED_TABLE, metadata,
        Column("entity", String(63), primary_key=True),
        Column("record_id", BigInteger, primary_key=True),
        Column("pool", String(63), nullable=False),
        Column("reason", String(500), nullable=False),
        Column("at", InstantType, nullable=False),
    )
    return {t.name: t for t in (job, clock, warning, cursor, unplaced)}
